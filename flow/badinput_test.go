package flow

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v2"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/memnet"
	"github.com/reflow-go/reflow/natmode"
)

// zeroXORMapped is a Binding success response for txid whose XOR-MAPPED-ADDRESS
// has length 0: pion/stun/v2 panics parsing it (GHSA-34rh-wp3j-6cxc).
func zeroXORMapped(txid [12]byte) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint16(b[0:], 0x0101) // Binding success
	binary.BigEndian.PutUint16(b[2:], 4)      // one empty attribute
	binary.BigEndian.PutUint32(b[4:], 0x2112A442)
	copy(b[8:], txid[:])
	binary.BigEndian.PutUint16(b[20:], 0x0020) // XOR-MAPPED-ADDRESS, length 0
	return b
}

// A hostile STUN "server" answers with malformed responses before a good one;
// hostile peers send garbage. The flow drops and counts them, never panics,
// finishes discovery and keeps delivering valid media.
func TestBadInputFromServerAndPeers(t *testing.T) {
	leak.Check(t)
	srv := listen(t, loop4)
	defer srv.Close()
	srvAddr := netip.MustParseAddrPort(srv.LocalAddr().String())
	ready := make(chan Event, 4)
	f := newFlow(t, loop4, Config{
		NAT:     natmode.Config{Mode: natmode.STUNBinding, Server: srvAddr, Keepalive: -1},
		OnEvent: func(ev Event) { ready <- ev },
	})
	buf := make([]byte, 1500)
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := srv.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	var req stun.Message
	req.Raw = append([]byte(nil), buf[:n]...)
	if err := req.Decode(); err != nil {
		t.Fatal(err)
	}
	good, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())}, stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	hostile := [][]byte{
		zeroXORMapped(req.TransactionID),
		good.Raw[:len(good.Raw)-3],      // truncated
		good.Raw[:10],                   // truncated header
		{0x00, 0x01, 0x00},              // tiny
		bytes.Repeat([]byte{0xff}, 300), // not STUN at all
		make([]byte, bufSize+100),       // oversize
	}
	for _, h := range hostile {
		srv.WriteToUDPAddrPort(h, from)
	}
	srv.WriteToUDPAddrPort(good.Raw, from)
	select {
	case ev := <-ready:
		if ev.Kind != EventReady {
			t.Fatalf("event %v %v", ev.Kind, ev.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	if f.ReflexiveTuple().Addr != from {
		t.Fatalf("reflexive %v, want %v", f.ReflexiveTuple(), from)
	}
	s := f.Stats()
	if s.Dropped[DropMalformed]+s.Dropped[DropPanic] < 3 || s.Dropped[DropOversize] != 1 || s.Dropped[DropUnexpected] < 1 {
		t.Fatalf("drops %+v", s.Dropped)
	}

	// A peer: garbage, short RTP, oversize, then media, all from the active destination.
	peer := listen(t, loop4)
	defer peer.Close()
	peerAddr := netip.MustParseAddrPort(peer.LocalAddr().String())
	f.SetActiveDestination(peerAddr)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		b := make([]byte, rng.IntN(300))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if len(b) > 0 && b[0] >= 128 && b[0] <= 191 && len(b) >= 8 {
			b[0] = 0x50 // keep the garbage out of the RTP range so every datagram must be dropped
		}
		peer.WriteToUDPAddrPort(b, f.LocalTuple().Addr)
	}
	peer.WriteToUDPAddrPort([]byte{0x80, 0, 1}, f.LocalTuple().Addr) // short RTP
	peer.WriteToUDPAddrPort(make([]byte, 5000), f.LocalTuple().Addr) // oversize
	want := rtpPacket(7, 172)
	peer.WriteToUDPAddrPort(want, f.LocalTuple().Addr)
	got, gotFrom := readOne(t, f)
	if !bytes.Equal(got, want) || gotFrom != peerAddr {
		t.Fatal("valid media after garbage not delivered intact")
	}
	s = f.Stats()
	if s.PacketsIn != 1 || s.Dropped[DropOversize] != 2 || s.Dropped[DropMalformed] < 4 {
		t.Fatalf("stats after garbage: %+v", s)
	}
}

// FuzzReceive feeds arbitrary datagrams to the receive path, as if from the STUN
// server and from the active peer: nothing may panic, and every datagram is
// either delivered or counted as dropped.
func FuzzReceive(f *testing.F) {
	var txid [12]byte
	f.Add([]byte{}, true)
	f.Add(zeroXORMapped(txid), true)
	f.Add(rtpPacket(1, 172), false)
	f.Add([]byte{0x80, 200, 0, 1, 0, 0, 0, 1}, false)
	f.Add([]byte{0x16, 0xfe, 0xfd, 0, 0}, false)
	f.Add([]byte{0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4}, true)
	if chk, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername("fuzzufrag:x"),
		stun.NewShortTermIntegrity("fuzzpasswordfuzzpassword"), stun.Fingerprint); err == nil {
		f.Add(chk.Raw, false) // an ICE connectivity check
	}
	n := memnet.New()
	conn, err := n.Listen("udp4", netip.MustParseAddrPort("10.0.0.1:0"))
	if err != nil {
		f.Fatal(err)
	}
	server := netip.MustParseAddrPort("192.0.2.1:3478")
	peer := netip.MustParseAddrPort("192.0.2.2:5000")
	fl, err := New(context.Background(), conn, Config{NAT: natmode.Config{Mode: natmode.STUNBinding, Server: server, Timeout: time.Hour}})
	if err != nil {
		f.Fatal(err)
	}
	defer fl.Close()
	fl.SetActiveDestination(peer)
	if err := fl.SetICECredentials("fuzzufrag", "fuzzpasswordfuzzpassword", ""); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, fromServer bool) {
		before := fl.Stats()
		pkt := getPacket()
		pkt.n = copy(pkt.buf[:], data)
		if len(data) > bufSize {
			pkt.n = bufSize
		}
		pkt.from = peer
		if fromServer {
			pkt.from = server
		}
		if !fl.receive(pkt) {
			putPacket(pkt)
		}
		after := fl.Stats()
		if after.PacketsIn+after.TotalDropped()+after.ICEChecks != before.PacketsIn+before.TotalDropped()+before.ICEChecks+1 {
			t.Fatalf("datagram neither delivered nor counted: %+v -> %+v", before, after)
		}
		for { // drain
			select {
			case p := <-fl.recvQueue():
				putPacket(p)
				continue
			default:
			}
			break
		}
	})
}
