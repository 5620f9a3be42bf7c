package flow

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/reflow-go/reflow/internal/leak"
)

// The relay's receive path allocates nothing per packet: a ChannelData
// message from the server is unwrapped in place (RFC 8656 §12.4) and the
// media inside reaches the receive queue with the peer as its source.
func TestRelayReceiveZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	leak.Check(t)
	f := newFlow(t, loop4, Config{})
	server := netip.MustParseAddrPort("192.0.2.1:3478")
	ts := &turnState{f: f, server: server, tr: UDP, setupDone: make(chan struct{})}
	ts.ctx, ts.cancel = context.WithCancel(context.Background())
	defer ts.cancel()
	ts.initPeers()
	ts.stopPeers() // no background binding: the test binds by hand
	ts.allocated.Store(true)
	f.turn.Store(ts)
	defer f.turn.Store(nil)
	peer := netip.MustParseAddrPort("192.0.2.9:5004")
	chans := map[uint16]netip.AddrPort{channelFirst: peer}
	ts.chans.Store(&chans)
	f.SetActiveDestination(peer)

	media := rtpPacket(1, 172)
	frame := make([]byte, 4+len(media))
	binary.BigEndian.PutUint16(frame, channelFirst)
	binary.BigEndian.PutUint16(frame[2:], uint16(len(media)))
	copy(frame[4:], media)
	var seq uint16
	relay := func() {
		seq++
		binary.BigEndian.PutUint16(frame[4+2:], seq)
		pkt := getPacket()
		pkt.n = copy(pkt.buf[:], frame)
		pkt.from, pkt.relayed = server, true
		if !f.turnInbound(pkt) {
			t.Fatalf("ChannelData not delivered (drops %+v)", f.Stats().Dropped)
		}
		got := <-f.recvQueue()
		if got.from != peer || got.n != len(media) || got.buf[0] != 0x80 {
			t.Fatalf("delivered %d bytes from %v, want %d from %v", got.n, got.from, len(media), peer)
		}
		putPacket(got)
	}
	for range 100 { // warm the pool
		relay()
	}
	if n := testing.AllocsPerRun(2000, relay); n != 0 {
		t.Errorf("%.2f allocations per relayed packet received", n)
	}
}
