package flow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pion/stun/v2"
)

// Liveness of a TURN allocation.
//
// RFC 8656 gives a client one way to learn that its allocation still exists:
// a Refresh transaction on the allocation's 5-tuple. A Binding request would
// prove only that something answers on the server's address (a restarted
// server answers it too), and indications get no answer at all. A Refresh
// success is signed with the allocation's long-term key and proves that this
// server still holds this allocation; a restarted server answers 437 (coturn)
// or nothing (pion). So the flow refreshes the allocation every Liveness/2
// (natmode.Config.Liveness, default 30 s, at least 5 s; and at least every
// half lifetime) and reports ErrAllocationLost when no signed success has
// arrived within Liveness of the previous one, or at once on a signed 437.
// These probes replace the normal refresh and the UDP keep-alive, so media
// packets carry nothing extra; the cost is one Refresh request and response
// per Liveness/2 (8 packets a minute at the default).
//
// Over UDP a probe is retransmitted (RFC 8489 §6.2.1) from RTO =
// min(500 ms, W/5), doubling, capped at W/5, where W = Liveness/2 is the
// time left before the loss would be declared: 7 requests at the default
// (at 0, 0.5, 1.5, 3.5, 6.5, 9.5, 12.5 s), 5 at the 5 s minimum. With 5%
// random loss each way a transaction fails only if all its requests or
// answers are lost (about 0.0975^7 = 8e-8 at the default, 9e-6 at 5 s).
// Over TCP/TLS the request is sent once and the connection closing is
// itself reported at once. With Liveness negative the flow refreshes at
// half the lifetime and reports the loss when the lifetime ends.

// liveLoop refreshes the allocation until the flow closes or the allocation is lost.
func (t *turnState) liveLoop() {
	f, nat := t.f, t.f.cfg.NAT
	liveness := nat.LivenessOrDefault()
	last := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		lt := time.Duration(t.lifetime.Load())
		bound := liveness
		if bound <= 0 || bound > lt {
			bound = lt // probing off: the allocation's own lifetime is the bound
		}
		period := bound / 2
		timer.Reset(time.Until(last.Add(period)))
		select {
		case <-timer.C:
		case <-t.ctx.Done():
			return
		}
		deadline := last.Add(bound)
		w := time.Until(deadline)
		r := rtx{first: min(stunRTO, w/5), max: w / 5}
		ok, why := t.probe(deadline, r)
		if t.ctx.Err() != nil {
			return
		}
		if !ok {
			t.probeKO.Add(1)
			f.lose(why)
			return
		}
		t.refreshes.Add(1)
		last = time.Now()
	}
}

// probe runs Refresh transactions until one gets a signed answer or the
// deadline passes. It reports whether the allocation is alive, else why not.
func (t *turnState) probe(deadline time.Time, r rtx) (bool, error) {
	ctx, cancel := context.WithDeadline(t.ctx, deadline)
	defer cancel()
	nat := t.f.cfg.NAT
	var attrs []stun.Setter
	if nat.Lifetime > 0 {
		attrs = append(attrs, lifetimeAttr(nat.Lifetime))
	}
	last := ""
	for {
		res, err := t.request(ctx, methodRefresh, attrs, r)
		switch {
		case errors.Is(err, errNoAnswer), errors.Is(err, context.DeadlineExceeded):
			if last != "" {
				return false, fmt.Errorf("no signed answer from %s to Refresh within %v (last unsigned answer: %s)", t.server, t.bound(), last)
			}
			return false, fmt.Errorf("no answer from %s to Refresh within %v", t.server, t.bound())
		case err != nil:
			return false, fmt.Errorf("refresh on %s: %w", t.server, err)
		}
		if res.Type.Class == stun.ClassSuccessResponse {
			lt := lifetimeOf(res)
			if lt <= 0 {
				lt = defaultLifetime
			}
			t.lifetime.Store(int64(lt))
			t.expiry.Store(time.Now().Add(lt).UnixNano())
			return true, nil
		}
		if isSigned(res) {
			code := errorCode(res)
			if code == codeAllocMismatch {
				return false, fmt.Errorf("%s no longer has the allocation (Refresh answered %s)", t.server, errorReason(res))
			}
			return false, fmt.Errorf("%s refused a Refresh: %s", t.server, errorReason(res))
		}
		// An unsigned 400/401/438 proves nothing: try again until the deadline.
		last = errorReason(res)
		wait := time.NewTimer(max(r.first, 100*time.Millisecond))
		select {
		case <-wait.C:
		case <-ctx.Done():
			wait.Stop()
		}
	}
}

// bound is the liveness bound in force.
func (t *turnState) bound() time.Duration {
	b := t.f.cfg.NAT.LivenessOrDefault()
	if lt := time.Duration(t.lifetime.Load()); b <= 0 || b > lt {
		return lt
	}
	return b
}
