package flowmanager_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/stun/v2"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/memnet"
	"github.com/reflow-go/reflow/natmode"
)

// A server that never answers ChannelBind: the permission failure reaches
// the handler after the timeout as ErrPermissionFailed (not Denied) naming
// the peer; writes to that peer then fail with it, while the allocation
// itself stays up.
func TestTURNPermissionTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		srv, tap := startMemTURN(t, n, 0)
		defer srv.Close()
		tap.mu.Lock()
		tap.drop = func(m *stun.Message) bool { return m.Type.Method == stun.MethodChannelBind }
		tap.mu.Unlock()
		m := memnetManager(t, n)
		s, r := memStream(t, m, memNAT(0))
		defer s.Close()
		peer := netip.MustParseAddrPort("192.0.2.99:4000")
		start := time.Now()
		if err := s.RTP().SetActiveDestination(peer); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RTP().Write(rtpPacket(1, 100)); err != nil {
			t.Fatalf("write while the permission is pending: %v", err)
		}
		err := <-r.errs
		var fe *flow.Error
		if !errors.As(err, &fe) || !errors.Is(err, flow.ErrPermissionFailed) || errors.Is(err, flow.ErrPermissionDenied) ||
			!strings.Contains(err.Error(), peer.String()) || time.Since(start) != natmode.DefaultTimeout {
			t.Fatalf("after %v: %v; want ErrPermissionFailed naming %v after %v", time.Since(start), err, peer, natmode.DefaultTimeout)
		}
		if _, err := s.RTP().Write(rtpPacket(2, 100)); !errors.As(err, &fe) || !errors.Is(err, flow.ErrPermissionFailed) {
			t.Fatalf("write after the failure: %v", err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if al, ok := s.RTP().Allocation(); !ok || al.Lost {
			t.Fatalf("allocation %+v lost over a permission", al)
		}
	})
}

// Packets written before the permission exists are kept and sent once it
// does, in order (a DTLS ClientHello or the first RTP packets are not lost
// at the server, which drops what it has no permission for).
func TestTURNWritesBeforePermissionDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		srv, _ := startMemTURN(t, n, 0)
		defer srv.Close()
		m := memnetManager(t, n)
		a, _ := memStream(t, m, memNAT(0))
		defer a.Close()
		b, _ := memStream(t, m, memNAT(0))
		defer b.Close()
		ra, rb := a.RTP().RelayTuple().Addr, b.RTP().RelayTuple().Addr
		if err := b.RTP().SetActiveDestination(ra); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // b's permission for a is in place
		if err := a.RTP().SetActiveDestination(rb); err != nil {
			t.Fatal(err)
		}
		var sent [][]byte
		for i := range 3 { // at once: a's ChannelBind is still in flight
			p := rtpPacket(uint16(i), 100+i)
			sent = append(sent, p)
			if _, err := a.RTP().Write(p); err != nil {
				t.Fatal(err)
			}
		}
		buf := make([]byte, 2048)
		for i, want := range sent {
			b.RTP().SetReadDeadline(time.Now().Add(time.Second))
			n, from, err := b.RTP().ReadFromAddrPort(buf)
			if err != nil || from != ra || string(buf[:n]) != string(want) {
				t.Fatalf("packet %d: %d bytes from %v, %v", i, n, from, err)
			}
		}
	})
}
