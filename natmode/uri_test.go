package natmode

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestParseURI(t *testing.T) {
	for _, c := range []struct {
		uri    string
		mode   Mode
		host   string
		server string // "" when the host is a name
	}{
		{"stun:stun.example.com", STUNBinding, "stun.example.com:3478", ""},
		{"turn:turn.example.com", TURNUDP, "turn.example.com:3478", ""},
		{"turn:turn.example.com:443?transport=tcp", TURNTCP, "turn.example.com:443", ""},
		{"TURN:Turn.Example.com?Transport=UDP", TURNUDP, "Turn.Example.com:3478", ""},
		{"turns:turn.example.com", TURNTLS, "turn.example.com:5349", ""},
		{"turns:turn.example.com:443?transport=tcp", TURNTLS, "turn.example.com:443", ""},
		{"turn:192.0.2.1:3479", TURNUDP, "192.0.2.1:3479", "192.0.2.1:3479"},
		{"turn:[2001:db8::1]?transport=tcp", TURNTCP, "[2001:db8::1]:3478", "[2001:db8::1]:3478"},
		{"stun:[::1]:5000", STUNBinding, "[::1]:5000", "[::1]:5000"},
	} {
		got, err := ParseURI(c.uri)
		if err != nil {
			t.Errorf("ParseURI(%q): %v", c.uri, err)
			continue
		}
		if got.Mode != c.mode || got.Host != c.host || (c.server == "") != !got.Server.IsValid() ||
			(c.server != "" && got.Server != netip.MustParseAddrPort(c.server)) {
			t.Errorf("ParseURI(%q) = mode %v host %q server %v", c.uri, got.Mode, got.Host, got.Server)
		}
	}
	for _, bad := range []string{"", "turn", "http://x", "turn:", "turns:x?transport=udp", "stuns:x", "stun:x?transport=tcp",
		"turn:x?transport=sctp", "turn:x:0", "turn:x:70000", "turn:2001:db8::1", "turn:[2001:db8::1", "turn:x?foo=bar", "turn:user@x"} {
		if _, err := ParseURI(bad); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseURI(%q) = %v, want ErrInvalidConfig", bad, err)
		}
	}
}

func TestHostAndNewFields(t *testing.T) {
	c := Config{Mode: TURNTLS, Host: "turn.example.com", Username: "u", Password: "p"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if h, p, err := c.HostPort(); err != nil || h != "turn.example.com" || p != DefaultTURNSPort {
		t.Fatalf("HostPort = %q %d %v", h, p, err)
	}
	if c.ServerAddr().IsValid() {
		t.Fatal("a host name has no address before resolution")
	}
	c.Host = "192.0.2.7"
	if c.ServerAddr() != netip.MustParseAddrPort("192.0.2.7:5349") {
		t.Fatalf("ServerAddr of an IP literal host: %v", c.ServerAddr())
	}
	if c.LivenessOrDefault() != DefaultLiveness {
		t.Fatal("default liveness")
	}
	c.Liveness = -1
	if c.LivenessOrDefault() != 0 {
		t.Fatal("negative liveness turns probing off")
	}
	for _, bad := range []Config{
		{Mode: TURNUDP, Host: "x:99999", Username: "u", Password: "p"},
		{Mode: TURNUDP, Host: "x", Username: "u", Password: "p", Liveness: 4 * time.Second},
		{Mode: TURNUDP, Host: "x", Username: "u", Password: "p", Family: Family(7)},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Validate(%+v) = %v", bad, err)
		}
	}
	for f := FamilyDefault; f <= FamilyBoth; f++ {
		if f.String() == "" || Family(9).String() != "Family(9)" {
			t.Fatal("Family.String")
		}
	}
}
