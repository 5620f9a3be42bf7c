package mediastream_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/memnet"
	"github.com/reflow-go/reflow/mediastream"
)

// memStream is a stream on an in-memory network (for synctest) whose ICE
// selections and errors are kept.
type memStream struct {
	*mediastream.Stream
	h    iceHandler
	errs chan error
}

func newMemStream(t *testing.T, n *memnet.Network) *memStream {
	t.Helper()
	errs := make(chan error, 8)
	h := iceHandler{
		HandlerFuncs: mediastream.HandlerFuncs{Error: func(_ *mediastream.Stream, err error) { errs <- err }},
		selected:     make(chan flow.Candidate, 8),
	}
	s, err := mediastream.New(context.Background(), mediastream.Config{LocalAddr: loop4}, h, mediastream.Env{
		Listen: func(network string, laddr netip.AddrPort) (flow.PacketConn, error) { return n.Listen(network, laddr) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &memStream{Stream: s, h: h, errs: errs}
}

// connectICE runs full ICE between a (controlling) and b with fresh
// credentials on both; on a stream that already ran ICE this is its ICE
// restart.
func connectICE(t *testing.T, a, b *memStream) {
	t.Helper()
	var cfg [2]flow.ICEConfig
	for i := range cfg {
		u, p, err := flow.NewICECredentials()
		if err != nil {
			t.Fatal(err)
		}
		cfg[i] = flow.ICEConfig{LocalUfrag: u, LocalPwd: p, Controlling: i == 0}
	}
	cfg[0].RemoteUfrag, cfg[0].RemotePwd = cfg[1].LocalUfrag, cfg[1].LocalPwd
	cfg[1].RemoteUfrag, cfg[1].RemotePwd = cfg[0].LocalUfrag, cfg[0].LocalPwd
	s := [2]*memStream{a, b}
	for i := range s {
		if err := s[i].StartICE(cfg[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range s {
		for _, c := range s[1-i].LocalCandidates() {
			if err := s[i].AddRemoteCandidate(c); err != nil {
				t.Fatal(err)
			}
		}
		if err := s[i].EndOfRemoteCandidates(); err != nil {
			t.Fatal(err)
		}
	}
}

// selectedWithin waits (fake time) for s's next selected pair.
func (s *memStream) selectedWithin(t *testing.T, d time.Duration) flow.Candidate {
	t.Helper()
	select {
	case r := <-s.h.selected:
		return r
	case err := <-s.errs:
		t.Fatalf("error instead of a selected pair: %v", err)
	case <-time.After(d):
		t.Fatalf("no pair selected in %v", d)
	}
	return flow.Candidate{}
}

// A peer that vanishes makes the stream report ErrConsentLost once, and
// Err() holds it; an ICE restart towards a new peer that selects a pair
// ends the failure: Err() is nil again, OnICESelected names the new peer,
// media flows to it, and no further error is reported.
func TestICESelectionClearsConsentLost(t *testing.T) {
	leak.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		a, b, c := newMemStream(t, n), newMemStream(t, n), newMemStream(t, n)
		connectICE(t, a, b)
		if r := a.selectedWithin(t, 10*time.Second); r.Addr != b.RTP().LocalTuple().Addr {
			t.Fatalf("selected %v, want b at %v", r.Addr, b.RTP().LocalTuple().Addr)
		}
		b.Close()
		died := time.Now()
		select {
		case err := <-a.errs:
			if !errors.Is(err, flow.ErrConsentLost) {
				t.Fatalf("error %v, want consent lost", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("a vanished peer was not noticed in a minute")
		}
		t.Logf("consent lost %v after the peer vanished", time.Since(died))
		if err := a.Err(); !errors.Is(err, flow.ErrConsentLost) {
			t.Fatalf("Err() = %v after consent lost", err)
		}

		connectICE(t, a, c) // ICE restart on a, towards c
		if r := a.selectedWithin(t, 10*time.Second); r.Addr != c.RTP().LocalTuple().Addr {
			t.Fatalf("after the restart selected %v, want c at %v", r.Addr, c.RTP().LocalTuple().Addr)
		}
		synctest.Wait()
		if err := a.Err(); err != nil {
			t.Fatalf("Err() = %v after a new pair was selected", err)
		}
		if a.RTP().ActiveDestination() != c.RTP().LocalTuple().Addr {
			t.Fatalf("media goes to %v, want c", a.RTP().ActiveDestination())
		}
		pkt := []byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7, 'h', 'i'}
		if _, err := a.RTP().Write(pkt); err != nil {
			t.Fatalf("write after recovery: %v", err)
		}
		buf := make([]byte, 1500)
		if err := c.RTP().SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if k, _, err := c.RTP().ReadFromAddrPort(buf); err != nil || string(buf[12:k]) != "hi" {
			t.Fatalf("c read %q, %v", buf[:max(k, 0)], err)
		}
		select {
		case err := <-a.errs:
			t.Fatalf("a further error after recovery: %v", err)
		case <-time.After(2 * time.Minute): // consent kept with c
		}
	})
}
