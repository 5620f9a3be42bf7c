package coturn

import (
	"context"
	"encoding/binary"
	"errors"
	"github.com/reflow-go/reflow/internal/leak"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pion/stun/v2"

	"github.com/reflow-go/reflow/internal/stunx"
)

// rawUDP speaks TURN by hand over a connected UDP socket.
type rawUDP struct {
	t     *testing.T
	conn  net.Conn
	user  stun.Username
	realm stun.Realm
	nonce stun.Nonce
	key   stun.MessageIntegrity
}

func newRawUDP(t *testing.T, srv *Server) *rawUDP {
	t.Helper()
	c, err := net.Dial("udp4", srv.UDP.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawUDP{t: t, conn: c, user: stun.NewUsername(srv.Username),
		key: stun.NewLongTermIntegrity(srv.Username, srv.Realm, srv.Password)}
}

func (c *rawUDP) transact(setters ...stun.Setter) *stun.Message {
	c.t.Helper()
	req, err := stun.Build(setters...)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(req.Raw); err != nil {
		c.t.Fatal(err)
	}
	if err := c.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			c.t.Fatal(err)
		}
		res, err := stunx.Decode(buf[:n])
		if err != nil {
			c.t.Fatal(err)
		}
		if res.TransactionID == req.TransactionID {
			return res
		}
	}
}

// authed sends an authenticated request, learning NONCE and REALM from a
// 401 or 438 answer and retrying once.
func (c *rawUDP) authed(typ stun.MessageType, extra ...stun.Setter) *stun.Message {
	c.t.Helper()
	for range 2 {
		s := append([]stun.Setter{stun.TransactionID, typ}, extra...)
		if len(c.nonce) > 0 {
			s = append(s, &c.user, &c.realm, &c.nonce, c.key)
		}
		res := c.transact(append(s, stun.Fingerprint)...)
		if code := errorCode(res); code != stun.CodeUnauthorized && code != stun.CodeStaleNonce {
			return res
		}
		if err := c.nonce.GetFrom(res); err != nil {
			c.t.Fatal(err)
		}
		if err := c.realm.GetFrom(res); err != nil {
			c.t.Fatal(err)
		}
	}
	c.t.Fatal("still unauthorized")
	return nil
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
		t.Fatalf("no LIFETIME in %v (error %d)", m, errorCode(m))
	}
	return time.Duration(binary.BigEndian.Uint32(v)) * time.Second
}

var (
	requestedUDP = stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}
	allocateReq  = stun.NewType(stun.MethodAllocate, stun.ClassRequest)
	refreshReq   = stun.NewType(stun.MethodRefresh, stun.ClassRequest)
)

func lifetimeAttr(d time.Duration) stun.RawAttribute {
	return stun.RawAttribute{Type: stun.AttrLifetime, Value: binary.BigEndian.AppendUint32(nil, uint32(d/time.Second))}
}

func startCoturnConfig(t *testing.T, cfg Config) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg.Dir = t.TempDir()
	srv, err := StartConfig(ctx, cfg)
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
		_ = srv.Close()
	})
	return srv
}

// TestCoturnRefreshWithoutAllocationIs437 records that coturn, unlike
// pion/turn/v3, answers a Refresh for an allocation it does not have with
// 437 (Allocation Mismatch).
func TestCoturnRefreshWithoutAllocationIs437(t *testing.T) {
	leak.Check(t)
	srv := startCoturnConfig(t, Config{})
	c := newRawUDP(t, srv)
	res := c.authed(refreshReq, lifetimeAttr(600*time.Second))
	if code := errorCode(res); code != stun.CodeAllocMismatch {
		t.Fatalf("refresh without allocation: %v (error %d), want 437", res, code)
	}
	// Quirk: right after a Refresh with LIFETIME 0 the session is not gone
	// yet; a Refresh then may still succeed (coturn 4.6.1 frees it on a
	// timer), so 437 only follows once it is really gone.
}

func TestCoturnMaxAllocateLifetime(t *testing.T) {
	leak.Check(t)
	srv := startCoturnConfig(t, Config{MaxAllocateLifetime: 3 * time.Second})
	for _, tc := range []struct {
		ask  []stun.Setter
		want time.Duration
	}{
		{nil, 3 * time.Second},
		{[]stun.Setter{lifetimeAttr(3000 * time.Second)}, 3 * time.Second},
	} {
		c := newRawUDP(t, srv)
		res := c.authed(allocateReq, append([]stun.Setter{requestedUDP}, tc.ask...)...)
		if got := lifetimeOf(t, res); got != tc.want {
			t.Errorf("allocate %v: granted %v, want %v", tc.ask, got, tc.want)
		}
		if got := lifetimeOf(t, c.authed(refreshReq, lifetimeAttr(600*time.Second))); got != tc.want {
			t.Errorf("refresh: granted %v, want %v", got, tc.want)
		}
		_ = c.authed(refreshReq, lifetimeAttr(0))
	}
}
