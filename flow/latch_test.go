package flow

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
)

// A latched source cannot be hijacked by a stranger's packet ("RTP Bleed",
// CVE-2017-14099): after the peer's media came from the signalled address, one
// plain RTP packet from elsewhere moved the destination on the old code.
func TestLatchNotHijacked(t *testing.T) {
	leak.Check(t)
	events := make(chan Event, 16)
	b := newFlow(t, loop4, Config{Latch: true, OnEvent: nonReady(events)})
	peer, stranger := listen(t, loop4), listen(t, loop4)
	defer peer.Close()
	defer stranger.Close()
	peerAP := netip.MustParseAddrPort(peer.LocalAddr().String())
	b.SetActiveDestination(peerAP)
	to := b.LocalTuple().Addr
	peer.WriteToUDPAddrPort(rtpPacket(1, 60), to)
	readOne(t, b)
	for i := range 20 { // many packets, but the peer is alive
		stranger.WriteToUDPAddrPort(rtpPacket(uint16(100+i), 60), to)
	}
	peer.WriteToUDPAddrPort(rtpPacket(2, 60), to)
	got, from := readOne(t, b)
	if seq := binary.BigEndian.Uint16(got[2:]); seq != 2 || from != peerAP {
		t.Fatalf("got seq %d from %v: the stranger's media was delivered", seq, from)
	}
	if b.ActiveDestination() != peerAP {
		t.Fatalf("destination moved to %v", b.ActiveDestination())
	}
	if d := b.Stats().Dropped[DropSource]; d != 20 {
		t.Fatalf("DropSource = %d, want 20", d)
	}
	select {
	case ev := <-events:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
}

// A peer that really moved (NAT rebinding): once the learned source has been
// silent for LatchSilence, LatchPackets consecutive packets from the new one
// take over, and the switch is reported.
func TestLatchMoves(t *testing.T) {
	leak.Check(t)
	events := make(chan Event, 16)
	const silence = 100 * time.Millisecond
	b := newFlow(t, loop4, Config{Latch: true, LatchSilence: silence, LatchPackets: 3,
		OnEvent: nonReady(events)})
	old, moved := listen(t, loop4), listen(t, loop4)
	defer old.Close()
	defer moved.Close()
	oldAP := netip.MustParseAddrPort(old.LocalAddr().String())
	movedAP := netip.MustParseAddrPort(moved.LocalAddr().String())
	to := b.LocalTuple().Addr
	old.WriteToUDPAddrPort(rtpPacket(1, 60), to) // first source: latched at once
	readOne(t, b)
	if ev := <-events; ev.Kind != EventSourceChanged || ev.To != oldAP || ev.From.IsValid() {
		t.Fatalf("first latch event %+v", ev)
	}
	time.Sleep(2 * silence) // the behaviour under test: the learned source goes silent
	for i := range 3 {
		moved.WriteToUDPAddrPort(rtpPacket(uint16(10+i), 60), to)
	}
	got, from := readOne(t, b)
	if seq := binary.BigEndian.Uint16(got[2:]); seq != 12 || from != movedAP {
		t.Fatalf("got seq %d from %v, want 12 from %v (the third packet takes over)", seq, from, movedAP)
	}
	if ev := <-events; ev.Kind != EventSourceChanged || ev.From != oldAP || ev.To != movedAP {
		t.Fatalf("switch event %+v", ev)
	}
	if b.ActiveDestination() != movedAP {
		t.Fatalf("destination %v", b.ActiveDestination())
	}
	if d := b.Stats().Dropped[DropSource]; d != 2 {
		t.Fatalf("DropSource = %d, want 2 (the probation packets)", d)
	}
}

// nonReady passes every event but EventReady to ch.
func nonReady(ch chan Event) func(Event) {
	return func(ev Event) {
		if ev.Kind != EventReady {
			ch <- ev
		}
	}
}
