package dtlssrtp

import (
	"errors"
	"testing"
)

func TestParseSetup(t *testing.T) {
	checkGoroutines(t)
	for _, tc := range []struct {
		in   string
		want Setup
	}{
		{"actpass", SetupActpass},
		{"ACTIVE", SetupActive},
		{"Passive", SetupPassive},
		{"holdconn", SetupHoldconn},
		{"a=setup:actpass", SetupActpass},
		{"setup:passive\r\n", SetupPassive},
		{"  A=SETUP: active ", SetupActive},
	} {
		got, err := ParseSetup(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSetup(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "act", "actpass2", "a=setup:", "active passive", "a=fingerprint:active"} {
		if got, err := ParseSetup(in); !errors.Is(err, ErrInvalidSetup) {
			t.Errorf("ParseSetup(%q) = %v, %v; want ErrInvalidSetup", in, got, err)
		}
	}
	for s := SetupActpass; s <= SetupHoldconn; s++ {
		if got, err := ParseSetup(s.String()); err != nil || got != s {
			t.Errorf("round trip %v: %v, %v", s, got, err)
		}
	}
	if s := Setup(0).String(); s != "Setup(0)" {
		t.Errorf("Setup(0).String() = %q", s)
	}
}

func TestSetupAnswer(t *testing.T) {
	checkGoroutines(t)
	for _, tc := range []struct {
		offer, want Setup
	}{
		{SetupActpass, SetupActive},
		{SetupActive, SetupPassive},
		{SetupPassive, SetupActive},
		{SetupHoldconn, SetupHoldconn},
	} {
		got, err := tc.offer.Answer()
		if err != nil || got != tc.want {
			t.Errorf("%v.Answer() = %v, %v; want %v", tc.offer, got, err, tc.want)
		}
	}
	for _, bad := range []Setup{0, 5, -1} {
		if _, err := bad.Answer(); !errors.Is(err, ErrInvalidSetup) {
			t.Errorf("%v.Answer(): %v", bad, err)
		}
	}
}

func TestIsClient(t *testing.T) {
	checkGoroutines(t)
	type want int
	const (
		client want = iota
		server
		invalid
	)
	all := []Setup{SetupActpass, SetupActive, SetupPassive, SetupHoldconn}
	table := map[[2]Setup]want{
		{SetupActive, SetupPassive}:  client, // we offered active, they answered passive
		{SetupActive, SetupActpass}:  client, // they offered actpass, we answered active
		{SetupPassive, SetupActive}:  server,
		{SetupPassive, SetupActpass}: server,
		{SetupActpass, SetupActive}:  server, // we offered actpass, they answered active
		{SetupActpass, SetupPassive}: client,
	}
	for _, l := range append(all, 0) {
		for _, r := range append(all, 9) {
			w, ok := table[[2]Setup{l, r}]
			if !ok {
				w = invalid
			}
			got, err := IsClient(l, r)
			role, rerr := RoleFor(l, r)
			switch w {
			case invalid:
				if !errors.Is(err, ErrInvalidSetup) || !errors.Is(rerr, ErrInvalidSetup) {
					t.Errorf("IsClient(%v, %v) = %v, %v; want ErrInvalidSetup", l, r, got, err)
				}
			default:
				if err != nil || got != (w == client) || rerr != nil || (role == Client) != (w == client) {
					t.Errorf("IsClient(%v, %v) = %v, %v; RoleFor = %v, %v; want client=%v", l, r, got, err, role, rerr, w == client)
				}
			}
		}
	}
	// The answer rules and IsClient agree: offerer and answerer get
	// opposite roles.
	for _, offer := range []Setup{SetupActpass, SetupActive, SetupPassive} {
		answer, _ := offer.Answer()
		o, err1 := IsClient(offer, answer)
		a, err2 := IsClient(answer, offer)
		if err1 != nil || err2 != nil || o == a {
			t.Errorf("offer %v answer %v: offerer client=%v (%v), answerer client=%v (%v)", offer, answer, o, err1, a, err2)
		}
	}
}
