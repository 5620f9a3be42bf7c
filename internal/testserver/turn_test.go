package testserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/pionlog"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/turn/v3"
)

// allocation is one pion TURN client with its socket and relay.
type allocation struct {
	conn   net.PacketConn
	client *turn.Client
	relay  net.PacketConn
}

func (a *allocation) close() {
	if a.relay != nil {
		_ = a.relay.Close()
	}
	a.client.Close()
	_ = a.conn.Close()
}

// dialTURN connects to srv over transport ("udp", "tcp" or "tls").
func dialTURN(t *testing.T, srv *TURN, transport string) (net.PacketConn, string) {
	t.Helper()
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return c, srv.UDP.String()
	case "tcp":
		c, err := net.Dial("tcp4", srv.TCP.String())
		if err != nil {
			t.Fatal(err)
		}
		return turn.NewSTUNConn(c), srv.TCP.String()
	case "tls":
		c, err := tls.Dial("tcp4", srv.TLS.String(), &tls.Config{RootCAs: srv.RootCAs, ServerName: srv.ServerName, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		return turn.NewSTUNConn(c), srv.TLS.String()
	}
	t.Fatalf("transport %q", transport)
	return nil, ""
}

// allocate makes a pion client over transport and allocates a UDP relay.
func allocate(t *testing.T, srv *TURN, transport, user, pass string) (*allocation, error) {
	t.Helper()
	conn, addr := dialTURN(t, srv, transport)
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr,
		TURNServerAddr: addr,
		Conn:           conn,
		Username:       user,
		Password:       pass,
		Realm:          srv.Realm,
		LoggerFactory:  pionlog.Factory(nil),
	})
	if err != nil {
		_ = conn.Close()
		t.Fatal(err)
	}
	a := &allocation{conn: conn, client: client}
	if err := client.Listen(); err != nil {
		a.close()
		t.Fatal(err)
	}
	relay, err := client.Allocate()
	if err != nil {
		a.close()
		return nil, err
	}
	a.relay = relay
	return a, nil
}

func mustAllocate(t *testing.T, srv *TURN, transport string) *allocation {
	t.Helper()
	a, err := allocate(t, srv, transport, DefaultUsername, DefaultPassword)
	if err != nil {
		t.Fatalf("allocate over %s: %v", transport, err)
	}
	t.Cleanup(a.close)
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
	var allocs []*allocation
	for i, tr := range []string{"udp", "tcp", "tls"} {
		a := mustAllocate(t, srv, tr)
		allocs = append(allocs, a)
		relay, err := addrPort(a.relay.LocalAddr())
		if err != nil {
			t.Fatal(err)
		}
		if relay.Addr() != loop {
			t.Errorf("%s relay %v", tr, relay)
		}
		mapped, err := a.client.SendBindingRequest()
		if err != nil {
			t.Fatalf("%s binding: %v", tr, err)
		}
		local, _ := addrPort(a.conn.LocalAddr())
		if got, _ := addrPort(mapped); got != local {
			t.Errorf("%s: binding says %v, socket is %v", tr, got, local)
		}
		if n := srv.AllocationCount(); n != i+1 {
			t.Errorf("after %s: AllocationCount = %d", tr, n)
		}
	}
	// Relay a packet each way between the UDP and the TLS allocation, and
	// from the TCP one to the UDP one (ChannelData through the TCP framer).
	exchange(t, allocs[0], allocs[2])
	exchange(t, allocs[1], allocs[0])
	// Closing a relay deallocates (Refresh with LIFETIME 0).
	_ = allocs[2].relay.Close()
	allocs[2].relay = nil
	if err := srv.WaitAllocations(testContext(t), 2); err != nil {
		t.Fatal(err)
	}
}

// exchange sends from a's relay to b's relay and back, repeating until the
// first packet gets through (the first write creates the permission on a's
// side only, so b's side needs its own permission first).
func exchange(t *testing.T, a, b *allocation) {
	t.Helper()
	if err := a.client.CreatePermission(b.relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := b.client.CreatePermission(a.relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	for _, dir := range [][2]*allocation{{a, b}, {b, a}} {
		from, to := dir[0], dir[1]
		msg := []byte("hello through the relay " + from.relay.LocalAddr().String())
		// Several packets: the first goes out as a Send indication, later
		// ones as ChannelData once the binding exists.
		for range 3 {
			if _, err := from.relay.WriteTo(msg, to.relay.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			if err := to.relay.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			n, src, err := to.relay.ReadFrom(buf)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(buf[:n], msg) || src.String() != from.relay.LocalAddr().String() {
				t.Fatalf("got %q from %v", buf[:n], src)
			}
		}
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
				a.close()
				t.Fatalf("%s/%s over %s: allocation succeeded", tc.user, tc.pass, tr)
			}
		}
	}
	// but bob/pw works
	a, err := allocate(t, srv, "udp", "bob", "pw")
	if err != nil {
		t.Fatal(err)
	}
	a.close()
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
	if _, err := tcp.client.SendBindingRequest(); err == nil {
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
	mustAllocate(t, srv, "udp").close()
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
