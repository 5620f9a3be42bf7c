package testserver

import (
	"encoding/binary"
	"github.com/reflow-go/reflow/internal/leak"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v2"

	"github.com/reflow-go/reflow/internal/stunx"
)

// rawClient speaks TURN by hand over a connected UDP socket or a TCP
// stream, to observe exactly what the server answers.
type rawClient struct {
	t      *testing.T
	conn   net.Conn
	stream bool
	nonce  stun.Nonce
	realm  stun.Realm
	user   stun.Username
	key    stun.MessageIntegrity
}

func newRawClient(t *testing.T, srv *TURN, transport string) *rawClient {
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
	return &rawClient{
		t: t, conn: c, stream: transport == "tcp",
		user: stun.NewUsername(DefaultUsername),
		key:  stun.NewLongTermIntegrity(DefaultUsername, srv.Realm, DefaultPassword),
	}
}

func (c *rawClient) send(setters ...stun.Setter) *stun.Message {
	c.t.Helper()
	m, err := stun.Build(setters...)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(m.Raw); err != nil {
		c.t.Fatal(err)
	}
	return m
}

// read returns the next STUN message from the server.
func (c *rawClient) read() *stun.Message {
	c.t.Helper()
	if err := c.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		c.t.Fatal(err)
	}
	var b []byte
	if c.stream {
		hdr := make([]byte, 20)
		if _, err := io.ReadFull(c.conn, hdr); err != nil {
			c.t.Fatal(err)
		}
		b = make([]byte, 20+int(binary.BigEndian.Uint16(hdr[2:4])))
		copy(b, hdr)
		if _, err := io.ReadFull(c.conn, b[20:]); err != nil {
			c.t.Fatal(err)
		}
	} else {
		buf := make([]byte, 1500)
		n, err := c.conn.Read(buf)
		if err != nil {
			c.t.Fatal(err)
		}
		b = buf[:n]
	}
	m, err := stunx.Decode(b)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// transact sends a request and returns the response to it.
func (c *rawClient) transact(setters ...stun.Setter) *stun.Message {
	c.t.Helper()
	req := c.send(setters...)
	res := c.read()
	if res.TransactionID != req.TransactionID {
		c.t.Fatalf("response to another transaction: %v", res)
	}
	return res
}

func errorCode(m *stun.Message) stun.ErrorCode {
	var ec stun.ErrorCodeAttribute
	if m.Type.Class != stun.ClassErrorResponse || ec.GetFrom(m) != nil {
		return 0
	}
	return ec.Code
}

func lifetimeOf(t *testing.T, m *stun.Message) time.Duration {
	t.Helper()
	v, err := m.Get(stun.AttrLifetime)
	if err != nil || len(v) != 4 {
		t.Fatalf("no LIFETIME in %v", m)
	}
	return time.Duration(binary.BigEndian.Uint32(v)) * time.Second
}

var requestedUDP = stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}

func lifetimeAttr(d time.Duration) stun.RawAttribute {
	return stun.RawAttribute{Type: stun.AttrLifetime, Value: binary.BigEndian.AppendUint32(nil, uint32(d/time.Second))}
}

func allocateType() stun.MessageType { return stun.NewType(stun.MethodAllocate, stun.ClassRequest) }
func refreshType() stun.MessageType  { return stun.NewType(stun.MethodRefresh, stun.ClassRequest) }

// learnNonce sends an unauthenticated request and keeps NONCE and REALM of
// the 401 answer.
func (c *rawClient) learnNonce(typ stun.MessageType, extra ...stun.Setter) {
	c.t.Helper()
	res := c.transact(append([]stun.Setter{stun.TransactionID, typ}, append(extra, stun.Fingerprint)...)...)
	if code := errorCode(res); code != stun.CodeUnauthorized {
		c.t.Fatalf("unauthenticated %v: %v", typ, res)
	}
	c.takeNonce(res)
}

func (c *rawClient) takeNonce(res *stun.Message) {
	c.t.Helper()
	if err := c.nonce.GetFrom(res); err != nil {
		c.t.Fatal(err)
	}
	if err := c.realm.GetFrom(res); err != nil {
		c.t.Fatal(err)
	}
}

// authed sends an authenticated request and returns the response.
func (c *rawClient) authed(typ stun.MessageType, extra ...stun.Setter) *stun.Message {
	c.t.Helper()
	s := []stun.Setter{stun.TransactionID, typ}
	s = append(s, extra...)
	s = append(s, &c.user, &c.realm, &c.nonce, c.key, stun.Fingerprint)
	return c.transact(s...)
}

func TestTURNMaxLifetimeCapsGrantedLifetime(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, TURNConfig{MaxLifetime: 60 * time.Second})
	for _, tc := range []struct {
		transport string
		ask       []stun.Setter
		want      time.Duration
	}{
		{"udp", nil, 60 * time.Second},                                             // none asked: capped default
		{"tcp", nil, 60 * time.Second},                                             // same over TCP (stream framer)
		{"udp", []stun.Setter{lifetimeAttr(3000 * time.Second)}, 60 * time.Second}, // too long: capped
		{"udp", []stun.Setter{lifetimeAttr(7 * time.Second)}, 7 * time.Second},     // shorter: untouched
	} {
		c := newRawClient(t, srv, tc.transport)
		c.learnNonce(allocateType(), requestedUDP)
		res := c.authed(allocateType(), append([]stun.Setter{requestedUDP}, tc.ask...)...)
		if res.Type.Class != stun.ClassSuccessResponse {
			t.Fatalf("%s allocate: %v (%d)", tc.transport, res, errorCode(res))
		}
		if err := c.key.Check(res); err != nil {
			t.Fatalf("response integrity: %v", err)
		}
		if got := lifetimeOf(t, res); got != tc.want {
			t.Errorf("%s %v: granted %v, want %v", tc.transport, tc.ask, got, tc.want)
		}
		// Refresh asking for more is capped too; LIFETIME 0 deallocates.
		res = c.authed(refreshType(), lifetimeAttr(time.Hour))
		if got := lifetimeOf(t, res); got != 60*time.Second {
			t.Errorf("refresh granted %v", got)
		}
		res = c.authed(refreshType(), lifetimeAttr(0))
		if res.Type.Class != stun.ClassSuccessResponse || lifetimeOf(t, res) != 0 {
			t.Fatalf("deallocate: %v", res)
		}
	}
	if err := srv.WaitAllocations(testContext(t), 0); err != nil {
		t.Fatal(err)
	}
	if srv.Refreshes() != 8 {
		t.Errorf("Refreshes = %d, want 8", srv.Refreshes())
	}
}

func TestTURNShortLifetimeExpires(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, TURNConfig{MaxLifetime: time.Second})
	c := newRawClient(t, srv, "udp")
	c.learnNonce(allocateType(), requestedUDP)
	res := c.authed(allocateType(), requestedUDP)
	if got := lifetimeOf(t, res); got != time.Second {
		t.Fatalf("granted %v", got)
	}
	if n := srv.AllocationCount(); n != 1 {
		t.Fatalf("AllocationCount = %d", n)
	}
	// Nobody refreshes: the server drops it after a second.
	if err := srv.WaitAllocations(testContext(t), 0); err != nil {
		t.Fatal(err)
	}
}

// TestTURNRefreshOfUnknownAllocation records how pion/turn/v3 v3.0.3
// answers requests for an allocation it does not have (after a Restart):
// a stale NONCE first gets 438, then a Refresh with a non-zero LIFETIME,
// a CreatePermission and a ChannelBind get no answer at all (no 437), while
// a Refresh with LIFETIME 0 succeeds.
func TestTURNRefreshOfUnknownAllocation(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, TURNConfig{})
	c := newRawClient(t, srv, "udp")
	c.learnNonce(allocateType(), requestedUDP)
	if res := c.authed(allocateType(), requestedUDP); res.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("allocate: %v", res)
	}
	if res := c.authed(refreshType(), lifetimeAttr(600*time.Second)); res.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("refresh before restart: %v", res)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The new server has a new nonce key: 438 Stale Nonce with a new NONCE.
	res := c.authed(refreshType(), lifetimeAttr(600*time.Second))
	if code := errorCode(res); code != stun.CodeStaleNonce {
		t.Fatalf("refresh with the old nonce: %v (%d), want 438", res, code)
	}
	c.takeNonce(res)

	// silent sends an authenticated request and shows that no answer to it
	// comes before the answer to a Binding request sent right after it (one
	// UDP socket pair on loopback, one server read loop: ordered).
	silent := func(typ stun.MessageType, extra ...stun.Setter) {
		t.Helper()
		s := append([]stun.Setter{stun.TransactionID, typ}, extra...)
		req := c.send(append(s, &c.user, &c.realm, &c.nonce, c.key, stun.Fingerprint)...)
		bind := c.send(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
		got := c.read()
		if got.TransactionID == req.TransactionID {
			t.Fatalf("%v was answered: %v (%d)", typ, got, errorCode(got))
		}
		if got.TransactionID != bind.TransactionID {
			t.Fatalf("unexpected %v", got)
		}
	}
	silent(refreshType(), lifetimeAttr(600*time.Second))
	silent(refreshType()) // no LIFETIME: default 600 s, same
	peer := &stun.XORMappedAddress{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	silent(stun.NewType(stun.MethodCreatePermission, stun.ClassRequest), &xorPeer{peer})
	silent(stun.NewType(stun.MethodChannelBind, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0, 0, 0}}, &xorPeer{peer})

	// LIFETIME 0 for an allocation that does not exist: 200 with LIFETIME 0.
	res = c.authed(refreshType(), lifetimeAttr(0))
	if res.Type.Class != stun.ClassSuccessResponse || lifetimeOf(t, res) != 0 {
		t.Fatalf("refresh 0: %v", res)
	}
	if n := srv.AllocationCount(); n != 0 {
		t.Fatalf("AllocationCount = %d", n)
	}
}

// xorPeer adds an XOR-PEER-ADDRESS.
type xorPeer struct{ a *stun.XORMappedAddress }

func (p *xorPeer) AddTo(m *stun.Message) error { return p.a.AddToAs(m, stun.AttrXORPeerAddress) }

// TestTURNUnauthenticatedRefreshGets401 shows that authentication comes
// before the allocation lookup for Refresh: a 5-tuple that never allocated
// gets 401 first, then silence.
func TestTURNUnauthenticatedRefreshGets401(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, TURNConfig{})
	c := newRawClient(t, srv, "udp")
	c.learnNonce(refreshType(), lifetimeAttr(600*time.Second))
	req := c.send(stun.TransactionID, refreshType(), lifetimeAttr(600*time.Second), &c.user, &c.realm, &c.nonce, c.key, stun.Fingerprint)
	bind := c.send(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if got := c.read(); got.TransactionID != bind.TransactionID || got.TransactionID == req.TransactionID {
		t.Fatalf("got %v", got)
	}
}

// TestTURNWrongPasswordIs400 records that pion answers a bad
// MESSAGE-INTEGRITY (wrong password) and an unknown user with 400, not 401.
func TestTURNWrongPasswordIs400(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, TURNConfig{})
	c := newRawClient(t, srv, "udp")
	c.learnNonce(allocateType(), requestedUDP)
	c.key = stun.NewLongTermIntegrity(DefaultUsername, srv.Realm, "wrong")
	if code := errorCode(c.authed(allocateType(), requestedUDP)); code != stun.CodeBadRequest {
		t.Fatalf("wrong password: %d", code)
	}
	c.user = stun.NewUsername("mallory")
	if code := errorCode(c.authed(allocateType(), requestedUDP)); code != stun.CodeBadRequest {
		t.Fatalf("unknown user: %d", code)
	}
}
