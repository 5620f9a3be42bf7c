package coturn

import (
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/turntest"

	"github.com/pion/stun/v2"
)

// newRawUDP is a raw TURN client of srv over UDP with its credentials;
// its requests learn the nonce on their own (AuthedRetry).
func newRawUDP(t *testing.T, srv *Server) *turntest.Raw {
	t.Helper()
	return turntest.DialRaw(t, srv.turntest(), "udp", srv.Username, srv.Password)
}

// TestCoturnRefreshWithoutAllocationIs437 records that coturn, unlike
// pion/turn/v3, answers a Refresh for an allocation it does not have with
// 437 (Allocation Mismatch).
func TestCoturnRefreshWithoutAllocationIs437(t *testing.T) {
	leak.Check(t)
	srv := ForTest(t, Config{})
	c := newRawUDP(t, srv)
	res := c.AuthedRetry(turntest.RefreshRequest, turntest.LifetimeAttr(600*time.Second))
	if code := turntest.ErrorCode(res); code != stun.CodeAllocMismatch {
		t.Fatalf("refresh without allocation: %v (error %d), want 437", res, code)
	}
	// Quirk: right after a Refresh with LIFETIME 0 the session is not gone
	// yet; a Refresh then may still succeed (coturn 4.6.1 frees it on a
	// timer), so 437 only follows once it is really gone.
}

func TestCoturnMaxAllocateLifetime(t *testing.T) {
	leak.Check(t)
	srv := ForTest(t, Config{MaxAllocateLifetime: 3 * time.Second})
	for _, tc := range []struct {
		ask  []stun.Setter
		want time.Duration
	}{
		{nil, 3 * time.Second},
		{[]stun.Setter{turntest.LifetimeAttr(3000 * time.Second)}, 3 * time.Second},
	} {
		c := newRawUDP(t, srv)
		res := c.AuthedRetry(turntest.AllocateRequest, append([]stun.Setter{turntest.RequestedUDP}, tc.ask...)...)
		if got := turntest.Lifetime(t, res); got != tc.want {
			t.Errorf("allocate %v: granted %v, want %v", tc.ask, got, tc.want)
		}
		if got := turntest.Lifetime(t, c.AuthedRetry(turntest.RefreshRequest, turntest.LifetimeAttr(600*time.Second))); got != tc.want {
			t.Errorf("refresh: granted %v, want %v", got, tc.want)
		}
		_ = c.AuthedRetry(turntest.RefreshRequest, turntest.LifetimeAttr(0))
	}
}
