package flow

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/memnet"
)

// memFlow is a flow on an in-memory socket, for tests under synctest.
func memFlow(t *testing.T, n *memnet.Network) iceFlow {
	t.Helper()
	c, err := n.Listen("udp", netip.AddrPortFrom(loop4, 0))
	if err != nil {
		t.Fatal(err)
	}
	ev := make(events, 64)
	f, err := New(context.Background(), c, Config{OnEvent: ev.on})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return iceFlow{f, ev}
}

// flowGoroutines counts the goroutines running code of this package, other
// than tests.
func flowGoroutines() int {
	buf := make([]byte, 1<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "reflow/flow.(*") && !strings.Contains(g, "flow.Test") {
			n++
		}
	}
	return n
}

// noEvent fails if an event of kind k arrives within d.
func (e events) none(t *testing.T, k EventKind, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev := <-e:
			if ev.Kind == k {
				t.Fatalf("unexpected event %d: %v", k, ev.Err)
			}
		case <-timer.C:
			return
		}
	}
}

// Consent checks keep a live pair for minutes; they go every 4-6 s; a flow
// with ICE has no more goroutines at rest than one without.
func TestICEConsentKept(t *testing.T) {
	leak.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		a, b := memFlow(t, n), memFlow(t, n)
		ca, cb := configs(t, true, false)
		startPair(t, a.Flow, b.Flow, ca, cb)
		a.ev.wait(t, EventICESelected, 10*time.Second)
		b.ev.wait(t, EventICESelected, 10*time.Second)
		synctest.Wait()
		perFlow := float64(flowGoroutines()) / 2
		t.Logf("goroutines per flow at rest with full ICE: %.1f (a plain flow has 1, its reader)", perFlow)
		if perFlow > 1 {
			buf := make([]byte, 1<<20)
			t.Fatalf("%.1f goroutines per flow with ICE:\n%s", perFlow, buf[:runtime.Stack(buf, true)])
		}
		checks := b.Stats().ICEChecks
		a.ev.none(t, EventError, 2*time.Minute)
		b.ev.none(t, EventError, time.Millisecond)
		got := b.Stats().ICEChecks - checks
		if got < 120/6 || got > 120/4+1 {
			t.Fatalf("%d consent checks in 2 minutes, want 20-31", got)
		}
		media(t, a.Flow, b.Flow, 9)
	})
}

// A peer that dies is noticed within 30 s: sending stops and the flow
// reports ErrConsentLost once.
func TestICEConsentLost(t *testing.T) {
	leak.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		a, b := memFlow(t, n), memFlow(t, n)
		ca, cb := configs(t, true, false)
		startPair(t, a.Flow, b.Flow, ca, cb)
		a.ev.wait(t, EventICESelected, 10*time.Second)
		b.ev.wait(t, EventICESelected, 10*time.Second)
		a.ev.none(t, EventError, 17*time.Second) // a few consent rounds
		b.Close()
		died := time.Now()
		ev := a.ev.wait(t, EventError, time.Minute)
		took := time.Since(died)
		t.Logf("consent lost %v after the peer died", took)
		if !errors.Is(ev.Err, ErrConsentLost) || took > ConsentTimeout || took < ConsentTimeout-7*time.Second {
			t.Fatalf("after %v: %v", took, ev.Err)
		}
		if _, err := a.Write(rtpPacket(1, 60)); !errors.Is(err, ErrConsentLost) {
			t.Fatalf("write after consent lost: %v", err)
		}
		a.ev.none(t, EventError, 2*time.Minute) // told once
	})
}

// Every pair failed after end-of-candidates: ErrICEFailed.
func TestICEFailed(t *testing.T) {
	leak.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		a := memFlow(t, n)
		ca, _ := configs(t, true, false)
		if err := a.StartICE(ca); err != nil {
			t.Fatal(err)
		}
		if err := a.AddRemoteCandidate(Candidate{Foundation: "x", Component: 1, Priority: 1, Type: CandidateHost,
			Addr: netip.MustParseAddrPort("127.0.0.1:9")}); err != nil {
			t.Fatal(err)
		}
		a.ev.none(t, EventError, 20*time.Second) // no end-of-candidates: more may come
		if err := a.EndOfRemoteCandidates(); err != nil {
			t.Fatal(err)
		}
		ev := a.ev.wait(t, EventError, time.Second)
		if !errors.Is(ev.Err, ErrICEFailed) {
			t.Fatal(ev.Err)
		}
	})
}
