package flow

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/internal/leak"
)

// budgetPair starts a DTLS-SRTP association between a new client flow and a
// new server flow configured by cfg, and returns them with the channels of
// their events (nothing is waited for).
func budgetPair(t *testing.T, cfg Config, ca, cb dtlssrtp.Config) (a, b *Flow, aEv, bEv chan Event) {
	t.Helper()
	aEv, bEv = make(chan Event, 64), make(chan Event, 64)
	ac, bc := cfg, cfg
	ac.Secure, bc.Secure = true, true
	ac.OnEvent, bc.OnEvent = nonReady(aEv), nonReady(bEv)
	a = newFlow(t, loop4, ac)
	b = newFlow(t, loop4, bc)
	a.SetActiveDestination(b.LocalTuple().Addr)
	b.SetActiveDestination(a.LocalTuple().Addr)
	fa, _ := dtlssrtp.CertificateFingerprint(ca.Certificate, dtlssrtp.SHA256)
	fb, _ := dtlssrtp.CertificateFingerprint(cb.Certificate, dtlssrtp.SHA256)
	if err := a.SetRemoteFingerprint(fb); err != nil {
		t.Fatal(err)
	}
	if err := b.SetRemoteFingerprint(fa); err != nil {
		t.Fatal(err)
	}
	if err := b.StartDTLS(dtlssrtp.Server, cb); err != nil {
		t.Fatal(err)
	}
	if err := a.StartDTLS(dtlssrtp.Client, ca); err != nil {
		t.Fatal(err)
	}
	return a, b, aEv, bEv
}

func budgetCerts(t *testing.T) (ca, cb dtlssrtp.Config) {
	t.Helper()
	c1, err := dtlssrtp.GenerateCertificate("a@example.org")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := dtlssrtp.GenerateCertificate("b@example.org")
	if err != nil {
		t.Fatal(err)
	}
	return dtlssrtp.Config{Certificate: c1}, dtlssrtp.Config{Certificate: c2}
}

func waitKeyed(t *testing.T, chs ...chan Event) {
	t.Helper()
	for _, ch := range chs {
		select {
		case ev := <-ch:
			if ev.Kind != EventKeyed || !ev.Keyed.DTLS {
				t.Fatalf("event %+v, want keyed", ev)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("not keyed")
		}
	}
}

// waitReleased waits (bounded) until f's association has dropped its DTLS
// state; the release runs on a timer goroutine right after keying.
func waitReleased(t *testing.T, f *Flow) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for a := f.dtls.Load(); a == nil || !a.gone.Load(); a = f.dtls.Load() {
		if time.Now().After(deadline) {
			t.Fatal("DTLS state not released")
		}
		time.Sleep(time.Millisecond)
	}
}

// Only the budget's lingering count of keyed associations keep their DTLS
// state; the others release it as soon as they are keyed, and a closed
// association gives its grant back.
func TestDTLSBudgetLingering(t *testing.T) {
	leak.Check(t)
	budget := NewDTLSBudget(0, 1)
	ca, cb := budgetCerts(t)
	a, b, aEv, bEv := budgetPair(t, Config{DTLSBudget: budget}, ca, cb)
	waitKeyed(t, aEv, bEv)
	// One of the two took the only grant; the other released its state.
	released := 0
	deadline := time.Now().Add(10 * time.Second)
	for released != 1 {
		released = 0
		for _, f := range []*Flow{a, b} {
			if f.dtls.Load().gone.Load() {
				released++
			}
		}
		if released > 1 || time.Now().After(deadline) {
			t.Fatalf("%d of 2 associations released, want 1", released)
		}
		time.Sleep(time.Millisecond)
	}
	if n := budget.Lingering(); n != 1 {
		t.Fatalf("lingering %d, want 1", n)
	}
	// Media flows both ways on the released association too.
	if _, err := a.Write(rtpPacket(1, 172)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write(rtpPacket(1, 172)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for _, f := range []*Flow{a, b} {
		_ = f.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := f.ReadFrom(buf); err != nil {
			t.Fatalf("media after release: %v", err)
		}
	}
	a.Close()
	b.Close()
	if n := budget.Lingering(); n != 0 {
		t.Fatalf("lingering %d after close, want 0", n)
	}
}

// A server whose DTLS state was released answers a retransmission of the
// client's final flight with a copy of its own final flight (ChangeCipherSpec
// and the epoch-1 Finished), and nothing else; a client answers nothing.
func TestDTLSReleasedAnswersFinalFlight(t *testing.T) {
	leak.Check(t)
	ca, cb := budgetCerts(t)
	a, b, aEv, bEv := budgetPair(t, Config{DTLSLinger: time.Nanosecond}, ca, cb)
	waitKeyed(t, aEv, bEv)
	waitReleased(t, a)
	waitReleased(t, b)

	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	pa := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	buf := make([]byte, 2048)
	for _, tc := range []struct {
		f      *Flow
		answer bool
	}{{b, true}, {a, false}} {
		tc.f.SetActiveDestination(pa) // the peer's address
		to := net.UDPAddrFromAddrPort(tc.f.LocalTuple().Addr)
		// Not a handshake record: no answer. Then a retransmitted flight.
		if _, err := peer.WriteToUDP(record(21, 0, "\x01\x00"), to); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.WriteToUDP(append(record(22, 0, "\x10\x00\x00\x01"), record(20, 0, "\x01")...), to); err != nil {
			t.Fatal(err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := peer.ReadFromUDPAddrPort(buf)
		if !tc.answer {
			if err == nil {
				t.Fatalf("client role answered %d bytes", n)
			}
			continue
		}
		// The flight: a ChangeCipherSpec and an epoch-1 Finished, in one
		// datagram or more.
		var ccs, finished bool
		for i := 0; ; i++ {
			if err != nil {
				t.Fatalf("server role: final flight incomplete (ccs %v, finished %v): %v", ccs, finished, err)
			}
			for r := buf[:n]; len(r) >= 13; {
				size := 13 + (int(r[11])<<8 | int(r[12]))
				if size > len(r) {
					t.Fatalf("truncated record in % x", buf[:n])
				}
				ccs = ccs || r[0] == 20
				finished = finished || (r[0] == 22 && r[3] == 0 && r[4] == 1)
				r = r[size:]
			}
			if ccs && finished {
				break
			}
			if i == 10 {
				t.Fatal("no final flight in 10 datagrams")
			}
			n, _, err = peer.ReadFromUDPAddrPort(buf)
		}
	}
}

// With one handshake slot, client handshakes run one at a time and all
// complete; a flow waiting for a slot closes at once without leaking.
func TestDTLSBudgetHandshakeSlots(t *testing.T) {
	leak.Check(t)
	budget := NewDTLSBudget(1, -1)
	ca, cb := budgetCerts(t)
	var evs []chan Event
	for range 4 {
		_, _, aEv, bEv := budgetPair(t, Config{DTLSBudget: budget}, ca, cb)
		evs = append(evs, aEv, bEv)
	}
	waitKeyed(t, evs...)

	// Hold the only slot; a new client waits for it and is closed meanwhile.
	if !budget.acquire(nil) {
		t.Fatal("no slot")
	}
	a, _, _, _ := budgetPair(t, Config{DTLSBudget: budget}, ca, cb)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.Close() }()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close of a flow waiting for a handshake slot blocked")
	}
	budget.release()
}

// A server makes its DTLS state only when the client's first flight arrives;
// a client that never comes still ends it with ErrHandshakeTimeout, counted
// from StartDTLS.
func TestDTLSServerWaitsForClient(t *testing.T) {
	leak.Check(t)
	_, cb := budgetCerts(t)
	ev := make(chan Event, 8)
	b := newFlow(t, loop4, Config{Secure: true, OnEvent: nonReady(ev)})
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	b.SetActiveDestination(silent.LocalAddr().(*net.UDPAddr).AddrPort())
	cb.HandshakeTimeout = 200 * time.Millisecond
	start := time.Now()
	if err := b.StartDTLS(dtlssrtp.Server, cb); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-ev:
		if e.Kind != EventError || !errors.Is(e.Err, dtlssrtp.ErrHandshakeTimeout) {
			t.Fatalf("event %+v, want ErrHandshakeTimeout", e)
		}
		if d := time.Since(start); d < cb.HandshakeTimeout {
			t.Fatalf("timed out after %v, before %v", d, cb.HandshakeTimeout)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no handshake timeout")
	}
}

// A ClientHello that arrives before the server's StartDTLS (the client
// answered and started first, the signalling is still on its way) is kept
// and handed to the handshake, which then needs no retransmission (pion's
// first one comes after 1 s).
func TestDTLSEarlyClientHello(t *testing.T) {
	leak.Check(t)
	ca, cb := budgetCerts(t)
	aEv, bEv := make(chan Event, 8), make(chan Event, 8)
	a := newFlow(t, loop4, Config{Secure: true, OnEvent: nonReady(aEv)})
	b := newFlow(t, loop4, Config{Secure: true, OnEvent: nonReady(bEv)})
	fa, _ := dtlssrtp.CertificateFingerprint(ca.Certificate, dtlssrtp.SHA256)
	fb, _ := dtlssrtp.CertificateFingerprint(cb.Certificate, dtlssrtp.SHA256)
	a.SetRemoteFingerprint(fb)
	b.SetRemoteFingerprint(fa)
	a.SetActiveDestination(b.LocalTuple().Addr)
	if err := a.StartDTLS(dtlssrtp.Client, ca); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.earlyHello.Load() == nil { // the reader keeps it
		if time.Now().After(deadline) {
			t.Fatalf("ClientHello not kept (drops %v)", b.Stats().Dropped)
		}
		time.Sleep(time.Millisecond)
	}
	b.SetActiveDestination(a.LocalTuple().Addr)
	start := time.Now()
	if err := b.StartDTLS(dtlssrtp.Server, cb); err != nil {
		t.Fatal(err)
	}
	waitKeyed(t, aEv, bEv)
	if d := time.Since(start); d >= 900*time.Millisecond {
		t.Fatalf("keyed after %v: the early ClientHello was not used", d)
	}
	if n := b.Stats().Dropped[DropUnexpected]; n != 0 {
		t.Fatalf("%d DTLS datagrams dropped", n)
	}
}

// An early ClientHello from an address other than the active destination
// set before StartDTLS is dropped, not handed to the handshake.
func TestDTLSEarlyClientHelloOtherSource(t *testing.T) {
	leak.Check(t)
	b := newFlow(t, loop4, Config{Secure: true})
	stranger := listen(t, loop4)
	defer stranger.Close()
	hello := record(22, 0, "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	if _, err := stranger.WriteToUDPAddrPort(hello, b.LocalTuple().Addr); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.earlyHello.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("ClientHello not kept")
		}
		time.Sleep(time.Millisecond)
	}
	b.SetActiveDestination(netip.MustParseAddrPort("127.0.0.1:9"))
	if pkt := b.takeEarlyHello(b.ActiveDestination()); pkt != nil {
		t.Fatal("a ClientHello from another source was handed over")
	}
	if n := b.Stats().Dropped[DropSource]; n != 1 {
		t.Fatalf("DropSource %d, want 1", n)
	}
}
