package coturn

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/turntest"

	"github.com/reflow-go/reflow/internal/stunx"
)

// turntest is where srv listens, for the turntest clients.
func (srv *Server) turntest() turntest.Server {
	return turntest.Server{UDP: srv.UDP, TCP: srv.TCP, TLS: srv.TLS, Realm: srv.Realm, RootCAs: srv.RootCAs, ServerName: srv.ServerName}
}

// allocate makes a pion client over transport with srv's credentials and
// allocates a UDP relay, released when the test ends.
func allocate(t *testing.T, srv *Server, transport string) *turntest.Allocation {
	t.Helper()
	a, err := turntest.Allocate(t, srv.turntest(), transport, srv.Username, srv.Password)
	if err != nil {
		t.Fatalf("allocate over %s: %v", transport, err)
	}
	t.Cleanup(a.Close)
	return a
}

func TestCoturnAllocateAndRelay(t *testing.T) {
	leak.Check(t)
	srv := ForTest(t, Config{})
	loop := netip.MustParseAddr("127.0.0.1")
	if srv.UDP.Addr() != loop || srv.TLS.Addr() != loop || srv.UDP.Port() == srv.TLS.Port() {
		t.Fatalf("addresses %v %v %v", srv.UDP, srv.TCP, srv.TLS)
	}
	allocs := map[string]*turntest.Allocation{}
	for _, tr := range []string{"udp", "tcp", "tls"} {
		a := allocate(t, srv, tr)
		allocs[tr] = a
		relay := a.Relay.LocalAddr().(*net.UDPAddr).AddrPort()
		if relay.Addr() != loop || relay.Port() < srv.RelayPorts[0] || relay.Port() > srv.RelayPorts[1] {
			t.Errorf("%s relay %v outside %v", tr, relay, srv.RelayPorts)
		}
		mapped, err := a.Client.SendBindingRequest()
		if err != nil {
			t.Fatalf("%s binding: %v", tr, err)
		}
		if mapped.String() != a.Conn.LocalAddr().String() {
			t.Errorf("%s: mapped %v, socket %v", tr, mapped, a.Conn.LocalAddr())
		}
	}
	turntest.Exchange(t, allocs["udp"], allocs["tcp"])
	turntest.Exchange(t, allocs["tls"], allocs["udp"])
}

func TestCoturnAnswersPlainSTUN(t *testing.T) {
	leak.Check(t)
	srv := ForTest(t, Config{})
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
	srv := ForTest(t, Config{})
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
