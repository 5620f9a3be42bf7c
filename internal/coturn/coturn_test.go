package coturn

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"github.com/reflow-go/reflow/internal/leak"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v3"

	"github.com/reflow-go/reflow/internal/stunx"
)

// startCoturn starts coturn for a test, skipping when it is not installed
// (failing instead under CI, where it must be).
func startCoturn(t *testing.T) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := Start(ctx, t.TempDir())
	if errors.Is(err, ErrNotInstalled) {
		if os.Getenv("CI") != "" {
			t.Fatalf("coturn is required under CI: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(srv.logTail())
		}
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

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

// newQuiet returns a pion LoggerFactory that discards everything.
func newQuiet() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelDisabled
	return f
}

func allocate(t *testing.T, srv *Server, transport string) *allocation {
	t.Helper()
	var (
		conn net.PacketConn
		addr string
	)
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn, addr = c, srv.UDP.String()
	case "tcp":
		c, err := net.Dial("tcp4", srv.TCP.String())
		if err != nil {
			t.Fatal(err)
		}
		conn, addr = turn.NewSTUNConn(c), srv.TCP.String()
	case "tls":
		c, err := tls.Dial("tcp4", srv.TLS.String(), &tls.Config{RootCAs: srv.RootCAs, ServerName: srv.ServerName, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		conn, addr = turn.NewSTUNConn(c), srv.TLS.String()
	}
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr,
		TURNServerAddr: addr,
		Conn:           conn,
		Username:       srv.Username,
		Password:       srv.Password,
		Realm:          srv.Realm,
		LoggerFactory:  newQuiet(),
	})
	if err != nil {
		_ = conn.Close()
		t.Fatal(err)
	}
	a := &allocation{conn: conn, client: client}
	t.Cleanup(a.close)
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("allocate over %s: %v", transport, err)
	}
	a.relay = relay
	return a
}

// exchange relays a few packets each way between two allocations.
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
		msg := []byte("through coturn from " + from.relay.LocalAddr().String())
		for range 3 { // Send indication first, then ChannelData
			if _, err := from.relay.WriteTo(msg, to.relay.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			if err := to.relay.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
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

func TestCoturnAllocateAndRelay(t *testing.T) {
	leak.Check(t)
	srv := startCoturn(t)
	loop := netip.MustParseAddr("127.0.0.1")
	if srv.UDP.Addr() != loop || srv.TLS.Addr() != loop || srv.UDP.Port() == srv.TLS.Port() {
		t.Fatalf("addresses %v %v %v", srv.UDP, srv.TCP, srv.TLS)
	}
	allocs := map[string]*allocation{}
	for _, tr := range []string{"udp", "tcp", "tls"} {
		a := allocate(t, srv, tr)
		allocs[tr] = a
		relay := a.relay.LocalAddr().(*net.UDPAddr).AddrPort()
		if relay.Addr() != loop || relay.Port() < srv.RelayPorts[0] || relay.Port() > srv.RelayPorts[1] {
			t.Errorf("%s relay %v outside %v", tr, relay, srv.RelayPorts)
		}
		mapped, err := a.client.SendBindingRequest()
		if err != nil {
			t.Fatalf("%s binding: %v", tr, err)
		}
		if mapped.String() != a.conn.LocalAddr().String() {
			t.Errorf("%s: mapped %v, socket %v", tr, mapped, a.conn.LocalAddr())
		}
	}
	exchange(t, allocs["udp"], allocs["tcp"])
	exchange(t, allocs["tls"], allocs["udp"])
}

func TestCoturnAnswersPlainSTUN(t *testing.T) {
	leak.Check(t)
	srv := startCoturn(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	req, err := stunx.NewBindingRequest()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.WriteTo(req.Raw, net.UDPAddrFromAddrPort(srv.UDP)); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	res, err := stunx.Decode(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	got, err := stunx.MappedAddress(res)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != pc.LocalAddr().String() {
		t.Fatalf("mapped %v, socket %v", got, pc.LocalAddr())
	}
}

func TestCoturnCloseIsIdempotent(t *testing.T) {
	leak.Check(t)
	srv := startCoturn(t)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if srv.cmd.ProcessState == nil {
		t.Fatal("process not reaped")
	}
	// The ports are free again.
	l, err := net.Listen("tcp4", srv.TCP.String())
	if err != nil {
		t.Fatalf("TCP port still taken: %v", err)
	}
	_ = l.Close()
}

func TestStartWithoutTurnserver(t *testing.T) {
	leak.Check(t)
	t.Setenv("PATH", t.TempDir())
	_, err := Start(context.Background(), t.TempDir())
	if !errors.Is(err, ErrNotInstalled) || !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "coturn") {
		t.Fatalf("err = %v", err)
	}
}

func TestStartRespectsContext(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(ctx, t.TempDir()); err == nil {
		t.Fatal("Start with a cancelled context succeeded")
	}
}
