package flow

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v2"
	"github.com/reflow-go/reflow/internal/leak"
)

type rawAttr struct {
	t stun.AttrType
	v []byte
}

func (r rawAttr) AddTo(m *stun.Message) error { m.Add(r.t, r.v); return nil }

// check builds a connectivity check as a full ICE agent sends it (RFC 8445 §7.2.2).
func check(t *testing.T, user, pwd string, extra ...stun.Setter) *stun.Message {
	t.Helper()
	prio := make([]byte, 4)
	binary.BigEndian.PutUint32(prio, 1853824767)
	tie := make([]byte, 8)
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(user),
		rawAttr{stun.AttrPriority, prio}, rawAttr{stun.AttrICEControlling, tie}}
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

func TestICELiteResponder(t *testing.T) {
	leak.Check(t)
	f := newFlow(t, loop4, Config{})
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
		{"role conflict", check(t, ufrag+":peer", pwd, rawAttr{stun.AttrICEControlled, make([]byte, 8)}), 487},
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
	// USE-CANDIDATE nominates: media goes to the agent and is accepted from it.
	if res := roundTrip(t, agent, to, check(t, ufrag+":peer", pwd, rawAttr{stun.AttrUseCandidate, nil}), 5*time.Second); res == nil || res.Type != stun.BindingSuccess {
		t.Fatalf("nominating check: %v", res)
	}
	if f.ActiveDestination() != me {
		t.Fatalf("destination %v after nomination, want %v", f.ActiveDestination(), me)
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
	if s := f.Stats(); s.ICEChecks != 2 || s.Dropped[DropAuth] != 5 {
		t.Fatalf("stats %+v", s)
	}
}
