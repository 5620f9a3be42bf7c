package testserver

import (
	"net"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/turntest"

	"github.com/pion/stun/v2"
)

// newRawClient is a raw TURN client of srv over transport ("udp" or
// "tcp") with the default credentials.
func newRawClient(t *testing.T, srv *TURN, transport string) *turntest.Raw {
	t.Helper()
	return turntest.DialRaw(t, srv.turntest(), transport, DefaultUsername, DefaultPassword)
}

func TestTURNMaxLifetimeCapsGrantedLifetime(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, TURNConfig{MaxLifetime: 60 * time.Second})
	for _, tc := range []struct {
		transport string
		ask       []stun.Setter
		want      time.Duration
	}{
		{"udp", nil, 60 * time.Second}, // none asked: capped default
		{"tcp", nil, 60 * time.Second}, // same over TCP (stream framer)
		{"udp", []stun.Setter{turntest.LifetimeAttr(3000 * time.Second)}, 60 * time.Second}, // too long: capped
		{"udp", []stun.Setter{turntest.LifetimeAttr(7 * time.Second)}, 7 * time.Second},     // shorter: untouched
	} {
		c := newRawClient(t, srv, tc.transport)
		c.LearnNonce(turntest.AllocateRequest, turntest.RequestedUDP)
		res := c.Authed(turntest.AllocateRequest, append([]stun.Setter{turntest.RequestedUDP}, tc.ask...)...)
		if res.Type.Class != stun.ClassSuccessResponse {
			t.Fatalf("%s allocate: %v (%d)", tc.transport, res, turntest.ErrorCode(res))
		}
		if err := c.Key.Check(res); err != nil {
			t.Fatalf("response integrity: %v", err)
		}
		if got := turntest.Lifetime(t, res); got != tc.want {
			t.Errorf("%s %v: granted %v, want %v", tc.transport, tc.ask, got, tc.want)
		}
		// Refresh asking for more is capped too; LIFETIME 0 deallocates.
		res = c.Authed(turntest.RefreshRequest, turntest.LifetimeAttr(time.Hour))
		if got := turntest.Lifetime(t, res); got != 60*time.Second {
			t.Errorf("refresh granted %v", got)
		}
		res = c.Authed(turntest.RefreshRequest, turntest.LifetimeAttr(0))
		if res.Type.Class != stun.ClassSuccessResponse || turntest.Lifetime(t, res) != 0 {
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
	c.LearnNonce(turntest.AllocateRequest, turntest.RequestedUDP)
	res := c.Authed(turntest.AllocateRequest, turntest.RequestedUDP)
	if got := turntest.Lifetime(t, res); got != time.Second {
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
	c.LearnNonce(turntest.AllocateRequest, turntest.RequestedUDP)
	if res := c.Authed(turntest.AllocateRequest, turntest.RequestedUDP); res.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("allocate: %v", res)
	}
	if res := c.Authed(turntest.RefreshRequest, turntest.LifetimeAttr(600*time.Second)); res.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("refresh before restart: %v", res)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The new server has a new nonce key: 438 Stale Nonce with a new NONCE.
	res := c.Authed(turntest.RefreshRequest, turntest.LifetimeAttr(600*time.Second))
	if code := turntest.ErrorCode(res); code != stun.CodeStaleNonce {
		t.Fatalf("refresh with the old nonce: %v (%d), want 438", res, code)
	}
	c.TakeNonce(res)

	// silent sends an authenticated request and shows that no answer to it
	// comes before the answer to a Binding request sent right after it (one
	// UDP socket pair on loopback, one server read loop: ordered).
	silent := func(typ stun.MessageType, extra ...stun.Setter) {
		t.Helper()
		s := append([]stun.Setter{stun.TransactionID, typ}, extra...)
		req := c.Send(append(s, &c.User, &c.Realm, &c.Nonce, c.Key, stun.Fingerprint)...)
		bind := c.Send(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
		got := c.Read()
		if got.TransactionID == req.TransactionID {
			t.Fatalf("%v was answered: %v (%d)", typ, got, turntest.ErrorCode(got))
		}
		if got.TransactionID != bind.TransactionID {
			t.Fatalf("unexpected %v", got)
		}
	}
	silent(turntest.RefreshRequest, turntest.LifetimeAttr(600*time.Second))
	silent(turntest.RefreshRequest) // no LIFETIME: default 600 s, same
	peer := &stun.XORMappedAddress{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	silent(stun.NewType(stun.MethodCreatePermission, stun.ClassRequest), &xorPeer{peer})
	silent(stun.NewType(stun.MethodChannelBind, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0, 0, 0}}, &xorPeer{peer})

	// LIFETIME 0 for an allocation that does not exist: 200 with LIFETIME 0.
	res = c.Authed(turntest.RefreshRequest, turntest.LifetimeAttr(0))
	if res.Type.Class != stun.ClassSuccessResponse || turntest.Lifetime(t, res) != 0 {
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
	c.LearnNonce(turntest.RefreshRequest, turntest.LifetimeAttr(600*time.Second))
	req := c.Send(stun.TransactionID, turntest.RefreshRequest, turntest.LifetimeAttr(600*time.Second), &c.User, &c.Realm, &c.Nonce, c.Key, stun.Fingerprint)
	bind := c.Send(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if got := c.Read(); got.TransactionID != bind.TransactionID || got.TransactionID == req.TransactionID {
		t.Fatalf("got %v", got)
	}
}

// TestTURNWrongPasswordIs400 records that pion answers a bad
// MESSAGE-INTEGRITY (wrong password) and an unknown user with 400, not 401.
func TestTURNWrongPasswordIs400(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, TURNConfig{})
	c := newRawClient(t, srv, "udp")
	c.LearnNonce(turntest.AllocateRequest, turntest.RequestedUDP)
	c.Key = stun.NewLongTermIntegrity(DefaultUsername, srv.Realm, "wrong")
	if code := turntest.ErrorCode(c.Authed(turntest.AllocateRequest, turntest.RequestedUDP)); code != stun.CodeBadRequest {
		t.Fatalf("wrong password: %d", code)
	}
	c.User = stun.NewUsername("mallory")
	if code := turntest.ErrorCode(c.Authed(turntest.AllocateRequest, turntest.RequestedUDP)); code != stun.CodeBadRequest {
		t.Fatalf("unknown user: %d", code)
	}
}
