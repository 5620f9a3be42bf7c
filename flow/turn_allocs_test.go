package flow

import (
	"context"
	"net/netip"
	"testing"

	"github.com/reflow-go/reflow/internal/leak"
)

// The relay's send path allocates nothing per packet: ChannelData on a bound
// channel and Send indications before it, over UDP.
func TestRelayWriteZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	leak.Check(t)
	sink := listen(t, loop4) // stands for the server; never read
	defer sink.Close()
	server := sink.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
	f := newFlow(t, loop4, Config{})
	ts := &turnState{f: f, server: server, tr: UDP, setupDone: make(chan struct{})}
	ts.ctx, ts.cancel = context.WithCancel(context.Background())
	defer ts.cancel()
	ts.initPeers()
	ts.stopPeers() // no background binding: the test binds by hand
	ts.allocated.Store(true)
	f.turn.Store(ts)
	dst := netip.MustParseAddrPort("192.0.2.9:5004")
	bound := &peer{addr: dst, ch: channelFirst}
	bound.used.Store(true)
	peers := map[netip.AddrPort]*peer{dst: bound}
	ts.peers.Store(&peers)
	pkt := rtpPacket(1, 182)
	for _, channel := range []bool{false, true} {
		bound.ready.Store(true)
		if !channel {
			bound.ch = 0 // no channel number: Send indications
		} else {
			bound.ch = channelFirst
		}
		for range 100 { // warm the pool
			if _, err := f.relayWrite(pkt, dst); err != nil {
				t.Fatal(err)
			}
		}
		if n := testing.AllocsPerRun(2000, func() { _, _ = f.relayWrite(pkt, dst) }); n != 0 {
			t.Errorf("channel=%v: %.2f allocations per relayed packet", channel, n)
		}
	}
	f.turn.Store(nil)
}
