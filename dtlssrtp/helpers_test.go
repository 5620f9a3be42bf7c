package dtlssrtp

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
)

// checkGoroutines fails the test if it leaves goroutines behind (see internal/leak).
func checkGoroutines(t testing.TB) { t.Helper(); leak.Check(t) }

// udpConn is one end of a loopback UDP pair seen as a net.Conn: it writes to
// the peer's address and drops datagrams from anywhere else.
type udpConn struct {
	*net.UDPConn
	peer *net.UDPAddr
}

func (c *udpConn) Read(b []byte) (int, error) {
	for {
		n, from, err := c.UDPConn.ReadFromUDP(b)
		if err != nil {
			return n, err
		}
		if from.Port == c.peer.Port && from.IP.Equal(c.peer.IP) {
			return n, nil
		}
	}
}

func (c *udpConn) Write(b []byte) (int, error) { return c.UDPConn.WriteToUDP(b, c.peer) }
func (c *udpConn) RemoteAddr() net.Addr        { return c.peer }

// udpPair returns two connected loopback UDP conns on 127.0.0.1:0. They are
// closed at the end of the test (a second Close is harmless).
func udpPair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	la, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		la.Close()
		t.Fatal(err)
	}
	a = &udpConn{UDPConn: la, peer: lb.LocalAddr().(*net.UDPAddr)}
	b = &udpConn{UDPConn: lb, peer: la.LocalAddr().(*net.UDPAddr)}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

var (
	certOnce  sync.Once
	certs     [3]tls.Certificate
	errCertGe error
)

// testCerts returns three certificates made once per test binary.
func testCerts(t testing.TB) (alice, bob, mallory tls.Certificate) {
	t.Helper()
	certOnce.Do(func() {
		for i, aor := range []string{"sip:alice@example.com", "sip:bob@example.com", "sip:mallory@example.com"} {
			certs[i], errCertGe = GenerateCertificate(aor)
			if errCertGe != nil {
				return
			}
		}
	})
	if errCertGe != nil {
		t.Fatal(errCertGe)
	}
	return certs[0], certs[1], certs[2]
}

func mustFP(t testing.TB, c tls.Certificate, hash string) Fingerprint {
	t.Helper()
	fp, err := CertificateFingerprint(c, hash)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// result of one side of a handshake.
type result struct {
	s   *Session
	err error
}

// handshakePair runs a client handshake on one end and a server handshake
// on the other, concurrently, and returns both results. Sessions are closed
// at the end of the test.
func handshakePair(t testing.TB, cc, sc net.Conn, ccfg, scfg Config, cv, sv *Verifier) (client, server result) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		client.s, client.err = Handshake(ctx, cc, Client, ccfg, cv)
	}()
	go func() {
		defer wg.Done()
		server.s, server.err = Handshake(ctx, sc, Server, scfg, sv)
	}()
	wg.Wait()
	t.Cleanup(func() {
		for _, r := range []result{client, server} {
			if r.s != nil {
				r.s.Close()
			}
		}
	})
	return client, server
}

// waitDone waits up to 2 s for a session to end.
func waitDone(t testing.TB, s *Session) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(2 * time.Second):
		t.Fatalf("session did not end")
	}
}

// contains reports whether err's text contains sub (for messages only; the
// tests match errors with errors.Is).
func contains(err error, sub string) bool {
	return err != nil && strings.Contains(err.Error(), sub)
}
