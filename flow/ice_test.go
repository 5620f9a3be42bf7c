package flow

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v2"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/natmode"
	"github.com/reflow-go/reflow/srtp"
)

// check builds a connectivity check as a full ICE agent sends it (RFC 8445 §7.2.2).
func check(t *testing.T, user, pwd string, extra ...stun.Setter) *stun.Message {
	t.Helper()
	prio := make([]byte, 4)
	binary.BigEndian.PutUint32(prio, 1853824767)
	tie := make([]byte, 8)
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(user),
		iceAttr{stun.AttrPriority, prio}, iceAttr{stun.AttrICEControlling, tie}}
	setters = append(setters, extra...)
	if pwd != "" {
		setters = append(setters, stun.NewShortTermIntegrity(pwd))
	}
	setters = append(setters, stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// roundTrip sends m from c to dst and returns the response, or nil when none
// came within wait.
func roundTrip(t *testing.T, c *net.UDPConn, dst netip.AddrPort, m *stun.Message, wait time.Duration) *stun.Message {
	t.Helper()
	c.WriteToUDPAddrPort(m.Raw, dst)
	buf := make([]byte, 1500)
	c.SetReadDeadline(time.Now().Add(wait))
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil
		}
		res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if res.Decode() == nil && res.TransactionID == m.TransactionID {
			return res
		}
	}
}

// events collects a flow's events for a test.
type events chan Event

func (e events) on(ev Event) {
	select {
	case e <- ev:
	default:
		panic("test event channel full")
	}
}

// wait returns the next event of kind k within d, skipping others.
func (e events) wait(t testing.TB, k EventKind, d time.Duration) Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev := <-e:
			if ev.Kind == k {
				return ev
			}
			if ev.Kind == EventError && k != EventError {
				t.Fatalf("flow error while waiting for event %d: %v", k, ev.Err)
			}
		case <-timer.C:
			t.Fatalf("no event %d within %v", k, d)
			return Event{}
		}
	}
}

func TestICELiteResponder(t *testing.T) {
	leak.Check(t)
	ev := make(events, 16)
	f := newFlow(t, loop4, Config{OnEvent: ev.on})
	ufrag, pwd, err := NewICECredentials()
	if err != nil {
		t.Fatal(err)
	}
	if len(ufrag) < 4 || len(pwd) < 22 || !validICE(ufrag, 4) || !validICE(pwd, 22) {
		t.Fatalf("credentials %q %q", ufrag, pwd)
	}
	agent := listen(t, loop4)
	defer agent.Close()
	me := netip.MustParseAddrPort(agent.LocalAddr().String())
	to := f.LocalTuple().Addr

	// Without credentials a check is dropped unanswered.
	if res := roundTrip(t, agent, to, check(t, ufrag+":peer", pwd), 300*time.Millisecond); res != nil {
		t.Fatalf("answered without ICE credentials: %v", res)
	}
	if err := f.SetICECredentials(ufrag, pwd, "peer"); err != nil {
		t.Fatal(err)
	}
	if err := f.SetICECredentials("ab", pwd, ""); err == nil {
		t.Fatal("a 2-char ufrag was accepted")
	}

	errCode := func(res *stun.Message) int {
		var ec stun.ErrorCodeAttribute
		if res == nil || ec.GetFrom(res) != nil {
			return 0
		}
		return int(ec.Code)
	}
	cases := []struct {
		name string
		m    *stun.Message
		want int
	}{
		{"wrong password", check(t, ufrag+":peer", "not-the-password-at-all-x"), 401},
		{"wrong ufrag", check(t, "nope:peer", pwd), 401},
		{"wrong remote ufrag", check(t, ufrag+":other", pwd), 401},
		{"no integrity", check(t, ufrag+":peer", ""), 400},
		{"role conflict", check(t, ufrag+":peer", pwd, iceAttr{stun.AttrICEControlled, make([]byte, 8)}), 487},
	}
	for _, c := range cases {
		res := roundTrip(t, agent, to, c.m, 5*time.Second)
		if got := errCode(res); got != c.want || res.Type.Class != stun.ClassErrorResponse {
			t.Errorf("%s: response %v code %d, want %d", c.name, res, got, c.want)
		}
	}
	// No FINGERPRINT: silently discarded.
	nofp, _ := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(ufrag+":peer"), stun.NewShortTermIntegrity(pwd))
	if res := roundTrip(t, agent, to, nofp, 300*time.Millisecond); res != nil {
		t.Errorf("a check without FINGERPRINT was answered: %v", res)
	}
	if f.ActiveDestination().IsValid() {
		t.Fatal("a failed check changed the destination")
	}

	// A good check: success with our address, integrity and fingerprint.
	res := roundTrip(t, agent, to, check(t, ufrag+":peer", pwd), 5*time.Second)
	if res == nil || res.Type != stun.BindingSuccess {
		t.Fatalf("good check: %v", res)
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(res); err != nil || xor.Port != int(me.Port()) || !xor.IP.Equal(me.Addr().AsSlice()) {
		t.Fatalf("XOR-MAPPED-ADDRESS %v, want %v (%v)", xor, me, err)
	}
	if err := stun.NewShortTermIntegrity(pwd).Check(res); err != nil {
		t.Fatalf("response integrity: %v", err)
	}
	if err := stun.Fingerprint.Check(res); err != nil {
		t.Fatalf("response fingerprint: %v", err)
	}
	if f.ActiveDestination().IsValid() {
		t.Fatal("a check without USE-CANDIDATE nominated")
	}
	// USE-CANDIDATE nominates (before the response is sent): media goes to
	// the agent and is accepted from it.
	if res := roundTrip(t, agent, to, check(t, ufrag+":peer", pwd, iceAttr{stun.AttrUseCandidate, nil}), 5*time.Second); res == nil || res.Type != stun.BindingSuccess {
		t.Fatalf("nominating check: %v", res)
	}
	ev.wait(t, EventICESelected, 5*time.Second)
	if f.ActiveDestination() != me {
		t.Fatalf("destination %v after nomination, want %v", f.ActiveDestination(), me)
	}
	if _, r, ok := f.SelectedPair(); !ok || r.Addr != me || r.Type != CandidatePeerReflexive {
		t.Fatalf("selected pair %v %v", r, ok)
	}
	f.Write(rtpPacket(5, 100))
	buf := make([]byte, 1500)
	agent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := agent.ReadFromUDPAddrPort(buf); err != nil || n != 100 {
		t.Fatalf("agent read %d %v", n, err)
	}
	agent.WriteToUDPAddrPort(rtpPacket(6, 100), to)
	if _, from := readOne(t, f); from != me {
		t.Fatalf("media from %v", from)
	}
	if s := f.Stats(); s.ICEChecks != 2 || s.Dropped[DropAuth] != 5 || s.Dropped[DropMalformed] != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// iceFlow is a flow with its events.
type iceFlow struct {
	*Flow
	ev events
}

func newICEFlow(t testing.TB, cfg Config) iceFlow {
	t.Helper()
	ev := make(events, 64)
	cfg.OnEvent = ev.on
	return iceFlow{newFlow(t, loop4, cfg), ev}
}

type creds struct{ ufrag, pwd string }

func newCreds(t testing.TB) creds {
	u, p, err := NewICECredentials()
	if err != nil {
		t.Fatal(err)
	}
	return creds{u, p}
}

// startPair starts ICE on a (with ca) and b (with cb) as configured and
// exchanges their candidates.
func startPair(t testing.TB, a, b *Flow, ca, cb ICEConfig) {
	t.Helper()
	if err := a.StartICE(ca); err != nil {
		t.Fatal(err)
	}
	if err := b.StartICE(cb); err != nil {
		t.Fatal(err)
	}
	exchange(t, a, b)
}

// exchange trickles each flow's candidates to the other, with end-of-candidates.
func exchange(t testing.TB, a, b *Flow) {
	t.Helper()
	for _, x := range [][2]*Flow{{a, b}, {b, a}} {
		for _, c := range x[0].LocalCandidates() {
			if err := x[1].AddRemoteCandidate(c); err != nil {
				t.Fatal(err)
			}
		}
		if err := x[1].EndOfRemoteCandidates(); err != nil {
			t.Fatal(err)
		}
	}
}

func configs(t testing.TB, aControlling, bControlling bool) (ICEConfig, ICEConfig) {
	ca, cb := newCreds(t), newCreds(t)
	return ICEConfig{LocalUfrag: ca.ufrag, LocalPwd: ca.pwd, RemoteUfrag: cb.ufrag, RemotePwd: cb.pwd, Controlling: aControlling},
		ICEConfig{LocalUfrag: cb.ufrag, LocalPwd: cb.pwd, RemoteUfrag: ca.ufrag, RemotePwd: ca.pwd, Controlling: bControlling}
}

// media checks that a packet goes each way between a and b.
func media(t testing.TB, a, b *Flow, seq uint16) {
	t.Helper()
	for _, x := range [][2]*Flow{{a, b}, {b, a}} {
		if _, err := x[0].Write(rtpPacket(seq, 80)); err != nil {
			t.Fatalf("write: %v", err)
		}
		p, from := readOne(t, x[1])
		if from != x[0].LocalTuple().Addr || binary.BigEndian.Uint16(p[2:]) != seq {
			t.Fatalf("media from %v seq %d", from, binary.BigEndian.Uint16(p[2:]))
		}
	}
}

func TestICEFullHost(t *testing.T) {
	leak.Check(t)
	for _, tc := range []struct {
		name   string
		ac, bc bool
	}{{"controlling-controlled", true, false}, {"both-controlling", true, true}, {"both-controlled", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newICEFlow(t, Config{}), newICEFlow(t, Config{})
			ca, cb := configs(t, tc.ac, tc.bc)
			start := time.Now()
			startPair(t, a.Flow, b.Flow, ca, cb)
			a.ev.wait(t, EventICESelected, 10*time.Second)
			b.ev.wait(t, EventICESelected, 10*time.Second)
			t.Logf("nominated after %v", time.Since(start))
			if a.ICEControlling() == b.ICEControlling() {
				t.Fatalf("roles not resolved: both controlling=%v", a.ICEControlling())
			}
			la, ra, ok := a.SelectedPair()
			if !ok || la.Addr != a.LocalTuple().Addr || ra.Addr != b.LocalTuple().Addr || la.Type != CandidateHost {
				t.Fatalf("a selected %v -> %v (%v)", la, ra, ok)
			}
			if a.ActiveDestination() != b.LocalTuple().Addr || b.ActiveDestination() != a.LocalTuple().Addr {
				t.Fatal("destinations not set by nomination")
			}
			media(t, a.Flow, b.Flow, 1)
			if a.Stats().ICEChecks == 0 || b.Stats().ICEChecks == 0 {
				t.Fatalf("checks answered: %d %d", a.Stats().ICEChecks, b.Stats().ICEChecks)
			}
		})
	}
}

// A full agent is controlling against a lite peer and nominates.
func TestICEAgainstLite(t *testing.T) {
	leak.Check(t)
	a, b := newICEFlow(t, Config{}), newICEFlow(t, Config{})
	ca, cb := configs(t, false, false)
	ca.RemoteLite, cb.Lite = true, true
	startPair(t, a.Flow, b.Flow, ca, cb)
	a.ev.wait(t, EventICESelected, 10*time.Second)
	b.ev.wait(t, EventICESelected, 10*time.Second)
	if !a.ICEControlling() || b.ICEControlling() {
		t.Fatalf("roles %v %v", a.ICEControlling(), b.ICEControlling())
	}
	media(t, a.Flow, b.Flow, 1)
}

// Candidates trickled after the start, a peer-reflexive one learnt from a
// check, and end-of-candidates.
func TestICETrickle(t *testing.T) {
	leak.Check(t)
	a, b := newICEFlow(t, Config{}), newICEFlow(t, Config{})
	ca, cb := configs(t, true, false)
	cb.RemoteUfrag, cb.RemotePwd = "", "" // b learns a's credentials later (the answer)
	if err := a.StartICE(ca); err != nil {
		t.Fatal(err)
	}
	if err := b.StartICE(cb); err != nil {
		t.Fatal(err)
	}
	// Only a learns b's candidate: b must learn a's as peer-reflexive.
	for _, c := range b.LocalCandidates() {
		if err := a.AddRemoteCandidate(c); err != nil {
			t.Fatal(err)
		}
	}
	// a nominates; b, without a's password, cannot check the pair yet.
	a.ev.wait(t, EventICESelected, 10*time.Second)
	if _, _, ok := b.SelectedPair(); ok {
		t.Fatal("b selected a pair it could not check")
	}
	if err := b.SetRemoteICECredentials(ca.LocalUfrag, ca.LocalPwd); err != nil {
		t.Fatal(err)
	}
	b.ev.wait(t, EventICESelected, 10*time.Second)
	if _, r, _ := b.SelectedPair(); r.Type != CandidatePeerReflexive || r.Addr != a.LocalTuple().Addr {
		t.Fatalf("b selected remote %v", r)
	}
	if err := b.EndOfRemoteCandidates(); err != nil {
		t.Fatal(err)
	}
	media(t, a.Flow, b.Flow, 7)
	if err := a.AddRemoteCandidate(Candidate{Component: 2, Addr: b.LocalTuple().Addr}); !errors.Is(err, ErrInvalidCandidate) {
		t.Fatalf("candidate of another component: %v", err)
	}
	var fresh Flow
	if err := fresh.AddRemoteCandidate(Candidate{}); !errors.Is(err, ErrNoICE) {
		t.Fatalf("without ICE: %v", err)
	}
}

// An ICE restart selects a pair again with new credentials; media and SRTP
// keep working through it.
func TestICERestart(t *testing.T) {
	leak.Check(t)
	a, b := newICEFlow(t, Config{}), newICEFlow(t, Config{})
	ka, kb := sdesKeys(t), sdesKeys(t)
	for _, x := range []struct {
		f       *Flow
		out, in srtp.Keys
	}{{a.Flow, ka, kb}, {b.Flow, kb, ka}} {
		if err := x.f.SetOutboundSRTP(x.out); err != nil {
			t.Fatal(err)
		}
		if err := x.f.SetInboundSRTP(x.in, 0); err != nil {
			t.Fatal(err)
		}
	}
	ca, cb := configs(t, true, false)
	startPair(t, a.Flow, b.Flow, ca, cb)
	a.ev.wait(t, EventICESelected, 10*time.Second)
	b.ev.wait(t, EventICESelected, 10*time.Second)
	media(t, a.Flow, b.Flow, 1)

	na, nb := configs(t, true, false)
	start := time.Now()
	if err := a.StartICE(na); err != nil {
		t.Fatal(err)
	}
	media(t, a.Flow, b.Flow, 2) // the old pair carries media during the restart
	if err := b.StartICE(nb); err != nil {
		t.Fatal(err)
	}
	exchange(t, a.Flow, b.Flow)
	a.ev.wait(t, EventICESelected, 10*time.Second)
	b.ev.wait(t, EventICESelected, 10*time.Second)
	t.Logf("restart nominated after %v", time.Since(start))
	media(t, a.Flow, b.Flow, 3)
	if s := b.Stats(); s.Dropped[DropAuth] > 0 && s.PacketsIn < 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestParseCandidate(t *testing.T) {
	leak.Check(t)
	for _, s := range []string{
		"candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host",
		"a=candidate:842163049 1 UDP 1677729535 198.51.100.7 61665 typ srflx raddr 10.0.0.2 rport 61665 generation 0 network-cost 999",
		"3 2 udp 16777215 2001:db8::1 3478 typ relay raddr 198.51.100.7 rport 61665",
	} {
		c, err := ParseCandidate(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		back, err := ParseCandidate(c.String())
		if err != nil || back != c {
			t.Fatalf("%q: round trip %v -> %q -> %v %v", s, c, c.String(), back, err)
		}
	}
	for _, s := range []string{"", "1 1 tcp 1 192.0.2.1 9 typ host", "1 1 udp 1 x.local 9 typ host", "1 1 udp 1 192.0.2.1 9 typ bogus", "1 0 udp 1 192.0.2.1 9 typ host"} {
		if _, err := ParseCandidate(s); !errors.Is(err, ErrInvalidCandidate) {
			t.Errorf("%q: %v", s, err)
		}
	}
	// RFC 8445 §5.1.2.1 and §6.1.2.3.
	if p := candidatePriority(CandidateHost, 65535, 1); p != 2130706431 {
		t.Fatalf("host priority %d", p)
	}
	if pairPriority(2, 1) != 1<<32|2<<1|1 || pairPriority(1, 2) != 1<<32|2<<1 {
		t.Fatal("pair priority")
	}
}

func sdesKeys(t testing.TB) srtp.Keys {
	k, err := srtp.GenerateKeys(srtp.AEADAES128GCM)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var _ = context.Background

// ICE through a TURN allocation over TCP and TLS (no host candidate: the
// flow has no UDP socket): checks and answers travel in Send indications on
// the connection to the server, answers handed from the reader to the worker.
func TestICERelayStream(t *testing.T) {
	leak.Check(t)
	srv, err := testserver.StartTURN(testserver.TURNConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, mode := range []natmode.Mode{natmode.TURNTCP, natmode.TURNTLS} {
		t.Run(mode.String(), func(t *testing.T) {
			server := srv.TCP
			if mode == natmode.TURNTLS {
				server = srv.TLS
			}
			a := newICEFlow(t, Config{})
			b := newICEFlow(t, Config{NAT: natmode.Config{Mode: mode, Server: server, Username: testserver.DefaultUsername,
				Password: testserver.DefaultPassword, RootCAs: srv.RootCAs, ServerName: srv.ServerName}})
			b.ev.wait(t, EventReady, 10*time.Second)
			cands := b.LocalCandidates()
			if len(cands) != 1 || cands[0].Type != CandidateRelay {
				t.Fatalf("candidates of a TURN/%v flow: %v", mode, cands)
			}
			ca, cb := configs(t, false, true)
			startPair(t, a.Flow, b.Flow, ca, cb)
			a.ev.wait(t, EventICESelected, 10*time.Second)
			b.ev.wait(t, EventICESelected, 10*time.Second)
			if l, r, _ := b.SelectedPair(); l.Type != CandidateRelay || r.Addr != a.LocalTuple().Addr {
				t.Fatalf("b selected %v -> %v", l, r)
			}
			for i := uint16(0); i < 3; i++ {
				if _, err := a.Write(rtpPacket(i, 80)); err != nil {
					t.Fatal(err)
				}
				if p, _ := readOne(t, b.Flow); len(p) != 80 {
					t.Fatal("media a->b")
				}
				if _, err := b.Write(rtpPacket(i, 80)); err != nil {
					t.Fatal(err)
				}
				if p, from := readOne(t, a.Flow); len(p) != 80 || from != b.RelayTuple().Addr {
					t.Fatalf("media b->a from %v", from)
				}
			}
		})
	}
}
