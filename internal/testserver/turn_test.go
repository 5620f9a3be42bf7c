package testserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/turntest"
)

// turntest is where srv listens, for the turntest clients.
func (srv *TURN) turntest() turntest.Server {
	return turntest.Server{UDP: srv.UDP, TCP: srv.TCP, TLS: srv.TLS, Realm: srv.Realm, RootCAs: srv.RootCAs, ServerName: srv.ServerName}
}

// allocate makes a pion client over transport and allocates a UDP relay.
func allocate(t *testing.T, srv *TURN, transport, user, pass string) (*turntest.Allocation, error) {
	t.Helper()
	return turntest.Allocate(t, srv.turntest(), transport, user, pass)
}

func mustAllocate(t *testing.T, srv *TURN, transport string) *turntest.Allocation {
	t.Helper()
	a, err := allocate(t, srv, transport, DefaultUsername, DefaultPassword)
	if err != nil {
		t.Fatalf("allocate over %s: %v", transport, err)
	}
	t.Cleanup(a.Close)
	return a
}

func startTURN(t *testing.T, cfg TURNConfig) *TURN {
	t.Helper()
	srv, err := StartTURN(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTURNAllocateOverUDPTCPTLS(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, TURNConfig{})
	loop := netip.MustParseAddr("127.0.0.1")
	for _, ap := range []netip.AddrPort{srv.UDP, srv.TCP, srv.TLS} {
		if ap.Addr() != loop || ap.Port() == 0 {
			t.Fatalf("listener address %v", ap)
		}
	}
	var allocs []*turntest.Allocation
	for i, tr := range []string{"udp", "tcp", "tls"} {
		a := mustAllocate(t, srv, tr)
		allocs = append(allocs, a)
		relay, err := addrPort(a.Relay.LocalAddr())
		if err != nil {
			t.Fatal(err)
		}
		if relay.Addr() != loop {
			t.Errorf("%s relay %v", tr, relay)
		}
		mapped, err := a.Client.SendBindingRequest()
		if err != nil {
			t.Fatalf("%s binding: %v", tr, err)
		}
		local, _ := addrPort(a.Conn.LocalAddr())
		if got, _ := addrPort(mapped); got != local {
			t.Errorf("%s: binding says %v, socket is %v", tr, got, local)
		}
		if n := srv.AllocationCount(); n != i+1 {
			t.Errorf("after %s: AllocationCount = %d", tr, n)
		}
	}
	// Relay a packet each way between the UDP and the TLS allocation, and
	// from the TCP one to the UDP one (ChannelData through the TCP framer).
	turntest.Exchange(t, allocs[0], allocs[2])
	turntest.Exchange(t, allocs[1], allocs[0])
	// Closing a relay deallocates (Refresh with LIFETIME 0).
	_ = allocs[2].Relay.Close()
	allocs[2].Relay = nil
	if err := srv.WaitAllocations(testContext(t), 2); err != nil {
		t.Fatal(err)
	}
}

func TestTURNTLSCertificate(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, TURNConfig{})
	// Verifies by name and by IP address.
	for _, name := range []string{srv.ServerName, "127.0.0.1"} {
		c, err := tls.Dial("tcp4", srv.TLS.String(), &tls.Config{RootCAs: srv.RootCAs, ServerName: name, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = c.Close()
	}
	// Fails with another name and without the pool.
	for _, cfg := range []*tls.Config{
		{RootCAs: srv.RootCAs, ServerName: "other.reflow.test"},
		{RootCAs: x509.NewCertPool(), ServerName: srv.ServerName},
	} {
		c, err := tls.Dial("tcp4", srv.TLS.String(), cfg)
		if err == nil {
			_ = c.Close()
			t.Fatalf("handshake with %q succeeded", cfg.ServerName)
		}
	}
}

func TestTURNWrongCredentials(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, TURNConfig{Users: map[string]string{"bob": "pw"}})
	for _, tc := range []struct{ user, pass string }{{"bob", "wrong"}, {"alice", "s3cret"}} {
		for _, tr := range []string{"udp", "tcp"} {
			a, err := allocate(t, srv, tr, tc.user, tc.pass)
			if err == nil {
				a.Close()
				t.Fatalf("%s/%s over %s: allocation succeeded", tc.user, tc.pass, tr)
			}
		}
	}
	// but bob/pw works
	a, err := allocate(t, srv, "udp", "bob", "pw")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
}

func TestTURNRestartDropsAllocations(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, TURNConfig{})
	before := [3]netip.AddrPort{srv.UDP, srv.TCP, srv.TLS}
	mustAllocate(t, srv, "udp")
	tcp := mustAllocate(t, srv, "tcp")
	mustAllocate(t, srv, "tls")
	if n := srv.AllocationCount(); n != 3 {
		t.Fatalf("AllocationCount = %d", n)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if n := srv.AllocationCount(); n != 0 {
		t.Fatalf("after Restart: AllocationCount = %d", n)
	}
	if after := [3]netip.AddrPort{srv.UDP, srv.TCP, srv.TLS}; after != before {
		t.Fatalf("addresses moved: %v -> %v", before, after)
	}
	// The TCP connection was closed by the server: a transaction fails fast.
	if _, err := tcp.Client.SendBindingRequest(); err == nil {
		t.Fatal("binding over the dropped TCP connection succeeded")
	}
	// The same addresses answer again.
	for _, tr := range []string{"udp", "tcp", "tls"} {
		mustAllocate(t, srv, tr)
	}
	if n := srv.AllocationCount(); n != 3 {
		t.Fatalf("AllocationCount = %d", n)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := srv.Restart(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Restart after Close: %v", err)
	}
	if n := srv.AllocationCount(); n != 0 {
		t.Fatalf("AllocationCount after Close = %d", n)
	}
}

func TestTURNMaxLifetimeKeepsRefreshedAllocation(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, TURNConfig{MaxLifetime: time.Second})
	ctx := testContext(t)
	for _, tr := range []string{"udp", "tcp"} {
		mustAllocate(t, srv, tr)
	}
	// The pion client refreshes every lifetime/2 = 500 ms with LIFETIME 1 s.
	start := srv.Refreshes()
	if err := srv.WaitRefreshes(ctx, start+6); err != nil {
		t.Fatal(err)
	}
	if n := srv.AllocationCount(); n != 2 {
		t.Fatalf("after several lifetimes AllocationCount = %d", n)
	}
}

// lockedBuffer is an io.Writer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestTURNLogsGoToSlog(t *testing.T) {
	leak.Check(t)
	var buf lockedBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
	srv := startTURN(t, TURNConfig{Logger: logger})
	mustAllocate(t, srv, "udp").Close()
	if err := srv.WaitAllocations(testContext(t), 0); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "pion=turn") || !strings.Contains(out, "AllocateRequest") {
		t.Fatalf("pion logs not routed:\n%s", out)
	}
}

func TestTURNConfigErrors(t *testing.T) {
	leak.Check(t)
	if _, err := StartTURN(TURNConfig{Host: netip.IPv4Unspecified()}); err == nil {
		t.Fatal("unspecified relay address accepted")
	}
	srv, err := StartTURN(TURNConfig{Host: netip.IPv4Unspecified(), RelayAddress: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}
