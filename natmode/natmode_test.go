package natmode

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestParseModeRoundTrip(t *testing.T) {
	for m := None; m <= TURNTLS; m++ {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("turn"); !errors.Is(err, ErrUnknownMode) {
		t.Errorf("unknown mode: %v", err)
	}
	if Mode(42).String() != "Mode(42)" {
		t.Error(Mode(42).String())
	}
}

func TestDefaultsAndValidate(t *testing.T) {
	srv := netip.MustParseAddr("192.0.2.1")
	c := Config{Mode: TURNTLS, Server: netip.AddrPortFrom(srv, 0), Username: "u", Password: "p"}
	if c.ServerAddr().Port() != DefaultTURNSPort {
		t.Errorf("TLS default port %v", c.ServerAddr())
	}
	c.Mode = TURNUDP
	if c.ServerAddr().Port() != DefaultSTUNPort {
		t.Errorf("default port %v", c.ServerAddr())
	}
	if c.TimeoutOrDefault() != DefaultTimeout || c.KeepaliveOrDefault() != DefaultKeepalive {
		t.Error("defaults")
	}
	c.Keepalive = -1
	if c.KeepaliveOrDefault() != 0 {
		t.Error("negative keepalive must turn it off")
	}
	c.Timeout = time.Second
	if c.TimeoutOrDefault() != time.Second {
		t.Error("timeout")
	}
	for _, bad := range []Config{
		{Mode: STUNBinding},
		{Mode: TURNUDP, Server: netip.AddrPortFrom(srv, 3478)},
		{Mode: TURNTCP, Server: netip.AddrPortFrom(srv, 3478), Username: "u"},
		{Mode: Mode(9)},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", bad)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}
