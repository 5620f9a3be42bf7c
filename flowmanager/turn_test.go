package flowmanager_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

func startTURN(t testing.TB, cfg testserver.TURNConfig) *testserver.TURN {
	t.Helper()
	srv, err := testserver.StartTURN(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// turnConfig returns the NAT config for mode against srv.
func turnConfig(srv *testserver.TURN, mode natmode.Mode) natmode.Config {
	return relayConfig(mode, [3]netip.AddrPort{srv.UDP, srv.TCP, srv.TLS}, testserver.DefaultUsername, testserver.DefaultPassword, srv.RootCAs, srv.ServerName)
}

// relayConfig is the NAT config of a TURN mode for a server listening at
// addrs (UDP, TCP, TLS).
func relayConfig(mode natmode.Mode, addrs [3]netip.AddrPort, user, pass string, roots *x509.CertPool, name string) natmode.Config {
	c := natmode.Config{Mode: mode, Username: user, Password: pass, RootCAs: roots, ServerName: name, Timeout: 5 * time.Second}
	switch mode {
	case natmode.TURNUDP:
		c.Server = addrs[0]
	case natmode.TURNTCP:
		c.Server = addrs[1]
	case natmode.TURNTLS:
		c.Server = addrs[2]
	}
	return c
}

var turnModes = []natmode.Mode{natmode.TURNUDP, natmode.TURNTCP, natmode.TURNTLS}

func TestTURNRelayExchange(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, testserver.TURNConfig{})
	for _, mode := range turnModes {
		t.Run(mode.String(), func(t *testing.T) {
			m := newManager(t, flowmanager.Config{})
			cfg := mediastream.Config{LocalAddr: loop4, RTCP: true, NAT: turnConfig(srv, mode)}
			a, ta := readyStream(t, m, cfg)
			b, tb := readyStream(t, m, cfg)
			for i, f := range a.Flows() {
				if ta[i] != f.RelayTuple() || !ta[i].IsValid() {
					t.Fatalf("%v session tuple %v is not the relayed %v", f.Component(), ta[i], f.RelayTuple())
				}
				if !f.ReflexiveTuple().IsValid() || f.ReflexiveTuple().Addr.Addr() != loop4 {
					t.Fatalf("%v reflexive tuple %v", f.Component(), f.ReflexiveTuple())
				}
				wantTr := map[natmode.Mode]flow.Transport{natmode.TURNUDP: flow.UDP, natmode.TURNTCP: flow.TCP, natmode.TURNTLS: flow.TLS}[mode]
				if f.ReflexiveTuple().Transport != wantTr || f.LocalTuple().Transport != wantTr {
					t.Fatalf("%v: reflexive %v, local %v, want transport %v", f.Component(), f.ReflexiveTuple(), f.LocalTuple(), wantTr)
				}
			}
			if got := srv.AllocationCount(); got != 4 {
				t.Fatalf("server has %d allocations, want 4", got)
			}
			connect(t, a, ta, b, tb)
			exchange(t, a, ta, b, tb, 10)
			a.Close()
			b.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.WaitAllocations(ctx, 0); err != nil {
				t.Fatalf("allocations not released on Close: %d left", srv.AllocationCount())
			}
		})
	}
}

func TestTURNOneRelayedOneNot(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, testserver.TURNConfig{})
	m := newManager(t, flowmanager.Config{})
	a, ta := readyStream(t, m, mediastream.Config{LocalAddr: loop4, RTCP: true, NAT: turnConfig(srv, natmode.TURNUDP)})
	b, tb := readyStream(t, m, mediastream.Config{LocalAddr: loop4, RTCP: true})
	connect(t, a, ta, b, tb)
	exchange(t, a, ta, b, tb, 5)
}

func TestTURNFailures(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, testserver.TURNConfig{})
	silent, err := testserver.StartSilent(netip.AddrPortFrom(loop4, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// A TCP port nobody listens on: the silent UDP socket's port, over TCP, is
	// almost surely closed; the test checks the error kind, not the port.
	wrongPass := turnConfig(srv, natmode.TURNUDP)
	wrongPass.Password = "wrong"
	wrongPassTLS := turnConfig(srv, natmode.TURNTLS)
	wrongPassTLS.Password = "wrong"
	deadUDP := turnConfig(srv, natmode.TURNUDP)
	deadUDP.Server, deadUDP.Timeout = silent.Addr, time.Second
	deadTCP := turnConfig(srv, natmode.TURNTCP)
	deadTCP.Server = silent.Addr
	untrusted := turnConfig(srv, natmode.TURNTLS)
	untrusted.RootCAs = nil // system roots do not know the test CA
	wrongName := turnConfig(srv, natmode.TURNTLS)
	wrongName.ServerName = "other.example"
	cases := []struct {
		name   string
		cfg    natmode.Config
		want   error
		within time.Duration
	}{
		{"wrong password udp", wrongPass, flow.ErrTURNAuth, 5 * time.Second},
		{"wrong password tls", wrongPassTLS, flow.ErrTURNAuth, 5 * time.Second},
		{"server silent", deadUDP, flow.ErrTURNUnreachable, 5 * time.Second},
		{"server not listening tcp", deadTCP, flow.ErrTURNUnreachable, 5 * time.Second},
		{"untrusted certificate", untrusted, flow.ErrTURNTLS, 5 * time.Second},
		{"name mismatch", wrongName, flow.ErrTURNTLS, 5 * time.Second},
	}
	m := newManager(t, flowmanager.Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRecorder()
			start := time.Now()
			s, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: loop4, NAT: c.cfg}, r)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = r.waitError(t, c.within+5*time.Second)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			for _, other := range []error{flow.ErrTURNAuth, flow.ErrTURNUnreachable, flow.ErrTURNTLS, flow.ErrAllocationLost} {
				if other != c.want && errors.Is(err, other) {
					t.Fatalf("err %v also matches %v", err, other)
				}
			}
			if d := time.Since(start); d > c.within+time.Second {
				t.Fatalf("error after %v, want within %v", d, c.within)
			}
		})
	}
}

// The server forgets the allocation (restart): the next refresh is refused
// with 437 and the stream reports ErrAllocationLost through OnError.
func TestTURNAllocationLostOnRestart(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, testserver.TURNConfig{})
	for _, mode := range turnModes {
		t.Run(mode.String(), func(t *testing.T) {
			m := newManager(t, flowmanager.Config{})
			cfg := turnConfig(srv, mode)
			cfg.Lifetime = 2 * time.Second // refreshed every second
			r := newRecorder()
			s, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: loop4, NAT: cfg}, r)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			r.waitReady(t)
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			err = r.waitError(t, 10*time.Second)
			if !errors.Is(err, flow.ErrAllocationLost) {
				t.Fatalf("err = %v, want ErrAllocationLost", err)
			}
			var fe *flow.Error
			if !errors.As(err, &fe) || fe.Component != flow.RTP {
				t.Fatalf("err %v does not name the RTP flow", err)
			}
		})
	}
}
