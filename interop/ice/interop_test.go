package iceinterop

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/leak"
)

func TestMain(m *testing.M) { leak.Main(m) }

var loop4 = netip.MustParseAddr("127.0.0.1")

// pionAgent is a pion/ice/v4 agent with host candidates on 127.0.0.1 only.
func pionAgent(t *testing.T) *ice.Agent {
	t.Helper()
	a, err := ice.NewAgentWithOptions(
		ice.WithNetworkTypes([]ice.NetworkType{ice.NetworkTypeUDP4}),
		ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeHost}),
		ice.WithIncludeLoopback(),
		ice.WithIPFilter(func(ip net.IP) bool { return ip.IsLoopback() }),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// gather returns the agent's candidates once gathering is complete.
func gather(t *testing.T, a *ice.Agent) []ice.Candidate {
	t.Helper()
	ch := make(chan ice.Candidate, 16)
	done := make(chan struct{})
	if err := a.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			close(done)
			return
		}
		ch <- c
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.GatherCandidates(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("pion gathering did not complete")
	}
	close(ch)
	var out []ice.Candidate
	for c := range ch {
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("pion gathered no candidate")
	}
	return out
}

// reflowFlow is a flow of this library with its events.
type reflowFlow struct {
	*flow.Flow
	ev chan flow.Event
}

func newFlow(t *testing.T) reflowFlow {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loop4, 0)))
	if err != nil {
		t.Fatal(err)
	}
	ev := make(chan flow.Event, 32)
	var logger *slog.Logger
	if os.Getenv("ICE_DEBUG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	f, err := flow.New(context.Background(), c, flow.Config{Logger: logger, OnEvent: func(e flow.Event) {
		select {
		case ev <- e:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return reflowFlow{f, ev}
}

func (r reflowFlow) waitSelected(t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e := <-r.ev:
			if e.Kind == flow.EventICESelected {
				return
			}
			if e.Kind == flow.EventError {
				t.Fatalf("flow error: %v", e.Err)
			}
		case <-timer.C:
			t.Fatalf("no pair selected within %v", d)
		}
	}
}

func rtp(seq byte) []byte {
	p := make([]byte, 60)
	p[0], p[3] = 0x80, seq
	return p
}

// media sends one RTP packet each way between the flow and pion's conn.
func media(t *testing.T, f reflowFlow, conn *ice.Conn, pionAddr netip.AddrPort) {
	t.Helper()
	if _, err := f.Write(rtp(1)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(buf); err != nil || n != 60 || buf[3] != 1 {
		t.Fatalf("pion read %d %v", n, err)
	}
	if _, err := conn.Write(rtp(2)); err != nil {
		t.Fatal(err)
	}
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := f.ReadFromAddrPort(buf)
	if err != nil || n != 60 || buf[3] != 2 || from != pionAddr {
		t.Fatalf("flow read %d from %v: %v", n, from, err)
	}
}

// connect runs ICE between a pion agent and a flow; reflowControlling says
// which side is the controlling agent. It returns the time from the start
// of checks until both sides selected a pair.
func connect(t *testing.T, reflowControlling bool) time.Duration {
	pa := pionAgent(t)
	cands := gather(t, pa)
	pu, pp, err := pa.GetLocalUserCredentials()
	if err != nil {
		t.Fatal(err)
	}
	f := newFlow(t)
	u, p, err := flow.NewICECredentials()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := f.StartICE(flow.ICEConfig{LocalUfrag: u, LocalPwd: p, RemoteUfrag: pu, RemotePwd: pp, Controlling: reflowControlling}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cands {
		fc, err := flow.ParseCandidate(c.Marshal())
		if err != nil {
			t.Fatalf("pion candidate %q: %v", c.Marshal(), err)
		}
		if err := f.AddRemoteCandidate(fc); err != nil {
			t.Fatal(err)
		}
	}
	f.EndOfRemoteCandidates()
	for _, c := range f.LocalCandidates() {
		pc, err := ice.UnmarshalCandidate(c.String())
		if err != nil {
			t.Fatalf("our candidate %q: %v", c.String(), err)
		}
		if err := pa.AddRemoteCandidate(pc); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var conn *ice.Conn
	if reflowControlling {
		conn, err = pa.Accept(ctx, u, p)
	} else {
		conn, err = pa.Dial(ctx, u, p)
	}
	if err != nil {
		t.Fatal(err)
	}
	f.waitSelected(t, 15*time.Second)
	took := time.Since(start)
	if f.ICEControlling() != reflowControlling {
		t.Fatalf("flow controlling=%v", f.ICEControlling())
	}
	pair, err := pa.GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("pion selected pair %v %v", pair, err)
	}
	pionAddr := netip.AddrPortFrom(loop4, uint16(pair.Local.Port()))
	if _, r, ok := f.SelectedPair(); !ok || r.Addr != pionAddr {
		t.Fatalf("flow selected %v, pion uses %v", r.Addr, pionAddr)
	}
	media(t, f, conn, pionAddr)
	return took
}

func TestPionControlling(t *testing.T) {
	leak.Check(t)
	t.Logf("pion controlling, reflow controlled: nominated after %v", connect(t, false))
}

func TestReflowControlling(t *testing.T) {
	leak.Check(t)
	t.Logf("reflow controlling, pion controlled: nominated after %v", connect(t, true))
}

// Time to a nominated pair on loopback (host candidates), this library and
// pion/ice/v4 each against itself and against each other, in the same run.
func TestNominationTimes(t *testing.T) {
	leak.Check(t)
	const runs = 5
	var rr, pr, rp, pp time.Duration
	for range runs {
		rp += connect(t, true)
		pr += connect(t, false)
		rr += reflowPair(t)
		pp += pionPair(t)
	}
	t.Logf("mean time to a nominated pair over %d runs (host, 127.0.0.1): reflow-reflow %v, reflow(controlling)-pion %v, pion(controlling)-reflow %v, pion-pion %v",
		runs, rr/runs, rp/runs, pr/runs, pp/runs)
}

func reflowPair(t *testing.T) time.Duration {
	return reflowICEPair(t, newFlow(t), newFlow(t), (*flow.Flow).LocalCandidates, 10*time.Second)
}

func pionPair(t *testing.T) time.Duration {
	return pionICEPair(t, pionAgent(t), pionAgent(t), 15*time.Second)
}

// reflowICEPair runs ICE between two of our flows (a controlling), each
// given the candidates of the other that cands returns, and returns the
// time until both selected a pair (each bounded by d).
func reflowICEPair(t *testing.T, a, b reflowFlow, cands func(*flow.Flow) []flow.Candidate, d time.Duration) time.Duration {
	t.Helper()
	ua, pa, _ := flow.NewICECredentials()
	ub, pb, _ := flow.NewICECredentials()
	start := time.Now()
	if err := a.StartICE(flow.ICEConfig{LocalUfrag: ua, LocalPwd: pa, RemoteUfrag: ub, RemotePwd: pb, Controlling: true}); err != nil {
		t.Fatal(err)
	}
	if err := b.StartICE(flow.ICEConfig{LocalUfrag: ub, LocalPwd: pb, RemoteUfrag: ua, RemotePwd: pa}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cands(a.Flow) {
		b.AddRemoteCandidate(c)
	}
	for _, c := range cands(b.Flow) {
		a.AddRemoteCandidate(c)
	}
	a.waitSelected(t, d)
	b.waitSelected(t, d)
	return time.Since(start)
}

// pionICEPair connects two pion agents (a dials, controlling) after
// gathering and returns the time from exchanging candidates until both
// are connected (bounded by d).
func pionICEPair(t *testing.T, a, b *ice.Agent, d time.Duration) time.Duration {
	t.Helper()
	ca, cb := gather(t, a), gather(t, b)
	ua, pa, _ := a.GetLocalUserCredentials()
	ub, pb, _ := b.GetLocalUserCredentials()
	start := time.Now()
	for _, c := range ca {
		b.AddRemoteCandidate(c)
	}
	for _, c := range cb {
		a.AddRemoteCandidate(c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := b.Accept(ctx, ua, pa)
		errc <- err
	}()
	if _, err := a.Dial(ctx, ub, pb); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}
