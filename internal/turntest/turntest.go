// Package turntest holds the TURN client side of the tests of our TURN
// servers (internal/testserver's pion server and internal/coturn's coturn):
// allocations made with pion's TURN client, relaying between two of them,
// and a raw client that speaks TURN by hand to observe exactly what a
// server answers. It is for tests only.
package turntest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v2"
	"github.com/pion/turn/v3"

	"github.com/reflow-go/reflow/internal/pionlog"
	"github.com/reflow-go/reflow/internal/stunx"
)

// Server is where a TURN server listens and how to reach it.
type Server struct {
	UDP, TCP, TLS netip.AddrPort
	Realm         string
	RootCAs       *x509.CertPool
	ServerName    string
}

// Allocation is one pion TURN client with its socket and relay.
type Allocation struct {
	Conn   net.PacketConn
	Client *turn.Client
	Relay  net.PacketConn
}

// Close releases the relay (deallocating it), the client and its socket.
func (a *Allocation) Close() {
	if a.Relay != nil {
		_ = a.Relay.Close()
	}
	a.Client.Close()
	_ = a.Conn.Close()
}

// dial connects to srv over transport ("udp", "tcp" or "tls").
func dial(srv Server, transport string) (net.PacketConn, string, error) {
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		return c, srv.UDP.String(), err
	case "tcp":
		c, err := net.Dial("tcp4", srv.TCP.String())
		if err != nil {
			return nil, "", err
		}
		return turn.NewSTUNConn(c), srv.TCP.String(), nil
	case "tls":
		c, err := tls.Dial("tcp4", srv.TLS.String(), &tls.Config{RootCAs: srv.RootCAs, ServerName: srv.ServerName, MinVersion: tls.VersionTLS12})
		if err != nil {
			return nil, "", err
		}
		return turn.NewSTUNConn(c), srv.TLS.String(), nil
	}
	return nil, "", fmt.Errorf("turntest: transport %q", transport)
}

// Allocate makes a pion client over transport ("udp", "tcp" or "tls") with
// the credentials user and pass and allocates a UDP relay. Failing to
// reach the server fails t; the allocation's own error is returned (a test
// may expect it).
func Allocate(t testing.TB, srv Server, transport, user, pass string) (*Allocation, error) {
	t.Helper()
	conn, addr, err := dial(srv, transport)
	if err != nil {
		t.Fatal(err)
	}
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
	a := &Allocation{Conn: conn, Client: client}
	if err := client.Listen(); err != nil {
		a.Close()
		t.Fatal(err)
	}
	if a.Relay, err = client.Allocate(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Exchange gives each allocation a permission for the other's relay, then
// relays three packets each way (the first goes out as a Send indication,
// the later ones as ChannelData once the channel is bound) and checks each
// arrives intact from the other relay.
func Exchange(t testing.TB, a, b *Allocation) {
	t.Helper()
	if err := a.Client.CreatePermission(b.Relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := b.Client.CreatePermission(a.Relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	for _, dir := range [][2]*Allocation{{a, b}, {b, a}} {
		from, to := dir[0], dir[1]
		msg := []byte("through the relay from " + from.Relay.LocalAddr().String())
		for range 3 {
			if _, err := from.Relay.WriteTo(msg, to.Relay.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			if err := to.Relay.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			n, src, err := to.Relay.ReadFrom(buf)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(buf[:n], msg) || src.String() != from.Relay.LocalAddr().String() {
				t.Fatalf("got %q from %v", buf[:n], src)
			}
		}
	}
}

// Raw speaks TURN by hand over a connected UDP socket or a TCP stream. Its
// fields are the long-term credential state; a test may change them (a
// wrong key, another user).
type Raw struct {
	T      testing.TB
	Conn   net.Conn
	Stream bool
	User   stun.Username
	Realm  stun.Realm
	Nonce  stun.Nonce
	Key    stun.MessageIntegrity
}

// DialRaw connects a raw client to srv over transport ("udp" or "tcp")
// with the credentials user and pass; the connection is closed when the
// test ends.
func DialRaw(t testing.TB, srv Server, transport, user, pass string) *Raw {
	t.Helper()
	addr := srv.UDP.String()
	if transport == "tcp" {
		addr = srv.TCP.String()
	}
	c, err := net.Dial(transport+"4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &Raw{T: t, Conn: c, Stream: transport == "tcp", User: stun.NewUsername(user),
		Key: stun.NewLongTermIntegrity(user, srv.Realm, pass)}
}

// Send builds and sends one message.
func (c *Raw) Send(setters ...stun.Setter) *stun.Message {
	c.T.Helper()
	m, err := stun.Build(setters...)
	if err != nil {
		c.T.Fatal(err)
	}
	if _, err := c.Conn.Write(m.Raw); err != nil {
		c.T.Fatal(err)
	}
	return m
}

// Read returns the next STUN message from the server (within 5 s).
func (c *Raw) Read() *stun.Message {
	c.T.Helper()
	if err := c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		c.T.Fatal(err)
	}
	var b []byte
	if c.Stream {
		hdr := make([]byte, 20)
		if _, err := io.ReadFull(c.Conn, hdr); err != nil {
			c.T.Fatal(err)
		}
		b = make([]byte, 20+int(binary.BigEndian.Uint16(hdr[2:4])))
		copy(b, hdr)
		if _, err := io.ReadFull(c.Conn, b[20:]); err != nil {
			c.T.Fatal(err)
		}
	} else {
		buf := make([]byte, 1500)
		n, err := c.Conn.Read(buf)
		if err != nil {
			c.T.Fatal(err)
		}
		b = buf[:n]
	}
	m, err := stunx.Decode(b)
	if err != nil {
		c.T.Fatal(err)
	}
	return m
}

// Transact sends a request and returns the response to it; the answer must
// be the next message.
func (c *Raw) Transact(setters ...stun.Setter) *stun.Message {
	c.T.Helper()
	req := c.Send(setters...)
	res := c.Read()
	if res.TransactionID != req.TransactionID {
		c.T.Fatalf("response to another transaction: %v", res)
	}
	return res
}

// LearnNonce sends an unauthenticated request of type typ, which must be
// answered 401, and keeps the answer's NONCE and REALM.
func (c *Raw) LearnNonce(typ stun.MessageType, extra ...stun.Setter) {
	c.T.Helper()
	res := c.Transact(append([]stun.Setter{stun.TransactionID, typ}, append(extra, stun.Fingerprint)...)...)
	if code := ErrorCode(res); code != stun.CodeUnauthorized {
		c.T.Fatalf("unauthenticated %v: %v", typ, res)
	}
	c.TakeNonce(res)
}

// TakeNonce keeps the NONCE and REALM of a 401 or 438 answer.
func (c *Raw) TakeNonce(res *stun.Message) {
	c.T.Helper()
	if err := c.Nonce.GetFrom(res); err != nil {
		c.T.Fatal(err)
	}
	if err := c.Realm.GetFrom(res); err != nil {
		c.T.Fatal(err)
	}
}

// Authed sends a request signed with the current credentials and nonce and
// returns the answer as it is.
func (c *Raw) Authed(typ stun.MessageType, extra ...stun.Setter) *stun.Message {
	c.T.Helper()
	s := append([]stun.Setter{stun.TransactionID, typ}, extra...)
	return c.Transact(append(s, &c.User, &c.Realm, &c.Nonce, c.Key, stun.Fingerprint)...)
}

// AuthedRetry is Authed that first learns (or renews) NONCE and REALM from
// a 401 or 438 answer: it sends the request unsigned while no nonce is
// known, and retries once signed.
func (c *Raw) AuthedRetry(typ stun.MessageType, extra ...stun.Setter) *stun.Message {
	c.T.Helper()
	for range 2 {
		var res *stun.Message
		if len(c.Nonce) == 0 {
			res = c.Transact(append(append([]stun.Setter{stun.TransactionID, typ}, extra...), stun.Fingerprint)...)
		} else {
			res = c.Authed(typ, extra...)
		}
		if code := ErrorCode(res); code != stun.CodeUnauthorized && code != stun.CodeStaleNonce {
			return res
		}
		c.TakeNonce(res)
	}
	c.T.Fatal("still unauthorized")
	return nil
}

// ErrorCode is the error code of an error response, else 0.
func ErrorCode(m *stun.Message) stun.ErrorCode {
	var ec stun.ErrorCodeAttribute
	if m.Type.Class != stun.ClassErrorResponse || ec.GetFrom(m) != nil {
		return 0
	}
	return ec.Code
}

// Lifetime is the LIFETIME of m; its absence fails t.
func Lifetime(t testing.TB, m *stun.Message) time.Duration {
	t.Helper()
	v, err := m.Get(stun.AttrLifetime)
	if err != nil || len(v) != 4 {
		t.Fatalf("no LIFETIME in %v (error %d)", m, ErrorCode(m))
	}
	return time.Duration(binary.BigEndian.Uint32(v)) * time.Second
}

// LifetimeAttr is a LIFETIME attribute of d.
func LifetimeAttr(d time.Duration) stun.RawAttribute {
	return stun.RawAttribute{Type: stun.AttrLifetime, Value: binary.BigEndian.AppendUint32(nil, uint32(d/time.Second))}
}

var (
	// RequestedUDP is REQUESTED-TRANSPORT UDP.
	RequestedUDP = stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}
	// AllocateRequest and RefreshRequest are the request types.
	AllocateRequest = stun.NewType(stun.MethodAllocate, stun.ClassRequest)
	RefreshRequest  = stun.NewType(stun.MethodRefresh, stun.ClassRequest)
)
