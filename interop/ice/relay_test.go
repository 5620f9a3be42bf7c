package iceinterop

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/coturn"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/natmode"
)

// relayServer is the TURN server both agents allocate on.
type relayServer struct {
	UDP        netip.AddrPort
	user, pass string
}

// pionRelayAgent is a pion/ice/v4 agent with relayed candidates only, from srv.
func pionRelayAgent(t *testing.T, srv relayServer) *ice.Agent {
	t.Helper()
	u, err := stun.ParseURI("turn:" + srv.UDP.String() + "?transport=udp")
	if err != nil {
		t.Fatal(err)
	}
	u.Username, u.Password = srv.user, srv.pass
	a, err := ice.NewAgentWithOptions(
		ice.WithNetworkTypes([]ice.NetworkType{ice.NetworkTypeUDP4}),
		ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeRelay}),
		ice.WithUrls([]*stun.URI{u}),
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

// relayFlow is a flow with a TURN/UDP allocation on srv, ready.
func relayFlow(t *testing.T, srv relayServer) reflowFlow {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loop4, 0)))
	if err != nil {
		t.Fatal(err)
	}
	ev := make(chan flow.Event, 32)
	f, err := flow.New(context.Background(), c, flow.Config{OnEvent: func(e flow.Event) {
		select {
		case ev <- e:
		default:
		}
	}, NAT: natmode.Config{Mode: natmode.TURNUDP, Server: srv.UDP, Username: srv.user, Password: srv.pass}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r := reflowFlow{f, ev}
	for {
		select {
		case e := <-ev:
			if e.Kind == flow.EventReady {
				return r
			}
			if e.Kind == flow.EventError {
				t.Fatal(e.Err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("TURN allocation not ready")
		}
	}
}

// relayCandidates returns the flow's relayed candidates only.
func relayCandidates(f *flow.Flow) []flow.Candidate {
	var out []flow.Candidate
	for _, c := range f.LocalCandidates() {
		if c.Type == flow.CandidateRelay {
			out = append(out, c)
		}
	}
	return out
}

// Relayed candidates only, on both sides: this library against pion/ice/v4
// (both roles) and each against itself, through one TURN server, in one run.
func TestRelayNominationTimes(t *testing.T) {
	leak.Check(t)
	ts, err := testserver.StartTURN(testserver.TURNConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	srv := relayServer{ts.UDP, testserver.DefaultUsername, testserver.DefaultPassword}
	const runs = 3
	var rr, rp, pr, pp time.Duration
	for range runs {
		rp += relayWithPion(t, srv, true)
		pr += relayWithPion(t, srv, false)
		rr += relayReflowPair(t, srv)
		pp += relayPionPair(t, srv)
	}
	t.Logf("mean time to a nominated pair over %d runs (relayed candidates only, TURN/UDP on 127.0.0.1): reflow-reflow %v, reflow(controlling)-pion %v, pion(controlling)-reflow %v, pion-pion %v",
		runs, rr/runs, rp/runs, pr/runs, pp/runs)
}

func relayWithPion(t *testing.T, srv relayServer, reflowControlling bool) time.Duration {
	pa := pionRelayAgent(t, srv)
	cands := gather(t, pa)
	pu, ppw, err := pa.GetLocalUserCredentials()
	if err != nil {
		t.Fatal(err)
	}
	f := relayFlow(t, srv)
	u, p, _ := flow.NewICECredentials()
	start := time.Now()
	if err := f.StartICE(flow.ICEConfig{LocalUfrag: u, LocalPwd: p, RemoteUfrag: pu, RemotePwd: ppw, Controlling: reflowControlling}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cands {
		fc, err := flow.ParseCandidate(c.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		if err := f.AddRemoteCandidate(fc); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range relayCandidates(f.Flow) {
		pc, err := ice.UnmarshalCandidate(c.String())
		if err != nil {
			t.Fatal(err)
		}
		if err := pa.AddRemoteCandidate(pc); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
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
	f.waitSelected(t, 20*time.Second)
	took := time.Since(start)
	l, r, _ := f.SelectedPair()
	if l.Type != flow.CandidateRelay && r.Type != flow.CandidateRelay {
		t.Fatalf("selected %v -> %v: no relay", l, r)
	}
	// Media both ways over the relayed pair.
	if _, err := f.Write(rtp(1)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(buf); err != nil || n != 60 {
		t.Fatalf("pion read %d %v", n, err)
	}
	if _, err := conn.Write(rtp(2)); err != nil {
		t.Fatal(err)
	}
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := f.ReadFromAddrPort(buf); err != nil || n != 60 {
		t.Fatalf("flow read %d %v", n, err)
	}
	return took
}

func relayReflowPair(t *testing.T, srv relayServer) time.Duration {
	return reflowICEPair(t, relayFlow(t, srv), relayFlow(t, srv), relayCandidates, 20*time.Second)
}

func relayPionPair(t *testing.T, srv relayServer) time.Duration {
	return pionICEPair(t, pionRelayAgent(t, srv), pionRelayAgent(t, srv), 20*time.Second)
}

// The same through coturn, a third-party server: pion/ice/v4 and this
// library, relayed candidates only, in both roles.
func TestRelayCoturn(t *testing.T) {
	leak.Check(t)
	cs := coturn.ForTest(t, coturn.Config{})
	srv := relayServer{cs.UDP, cs.Username, cs.Password}
	rp := relayWithPion(t, srv, true)
	pr := relayWithPion(t, srv, false)
	t.Logf("through coturn, relayed candidates only: reflow(controlling)-pion %v, pion(controlling)-reflow %v", rp, pr)
}
