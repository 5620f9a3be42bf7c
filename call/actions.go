package call

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/reflow-go/reflow/call/sdpx"
)

// Ring tells the caller of an incoming call that it rings (SIP 180) and
// moves the call to Alerting.
func (c *Call) Ring(ctx context.Context) error {
	c.mu.Lock()
	ok := c.live() && c.state == Incoming
	c.mu.Unlock()
	if !ok {
		return ErrState
	}
	if err := c.sig.SendRinging(ctx); err != nil {
		return err
	}
	c.setState(Alerting)
	return nil
}

// Accept answers an incoming call: it waits for the media stream to be
// ready (bounded by ctx), puts the negotiated media in force and sends the
// answer. The call is then Active. A failure ends the call.
//
// A call that came without an offer (delayed offer) is accepted with our
// offer, sent with SendAnswer; Accept then waits (bounded by ctx) for the
// peer's answer (Call.RemoteAnswer) and returns once it is in force. An
// answer that does not come before ctx ends, or cannot be used, ends the
// call (the core sends the hangup).
func (c *Call) Accept(ctx context.Context) error {
	c.mu.Lock()
	if !c.live() || c.dir != Inbound || c.answered || c.accepting {
		c.mu.Unlock()
		return ErrState
	}
	c.accepting = true
	md := c.media
	trickle := c.trickleAnswer(c.inOffer) // the answer goes at once (ice_trickle.go)
	c.mu.Unlock()

	if !trickle {
		if err := md.Wait(ctx); err != nil {
			r := Reason{Kind: MediaFailed, Code: 500, Text: "media stream not ready", Err: err}
			c.terminate(r, true)
			return r
		}
	}
	if c.delayed {
		return c.acceptOffering(ctx, md)
	}
	c.mu.Lock()
	if !c.live() {
		c.mu.Unlock()
		return ErrClosed
	}
	answer, st, err := c.answerLocked(c.inOffer, false)
	if err != nil {
		c.mu.Unlock()
		var r Reason
		if !errors.As(err, &r) {
			r = Reason{Kind: MediaFailed, Code: 500, Err: err}
		}
		c.terminate(r, true)
		return r
	}
	c.answered, c.inOffer = true, nil
	line := c.neg.line
	c.mu.Unlock()

	if err := c.sig.SendAnswer(ctx, answer); err != nil {
		r := Reason{Kind: SignalingFailed, Text: "sending the answer", Err: err}
		c.terminate(r, false)
		return r
	}
	c.trickle(md, line)
	c.setState(Active)
	c.a.emit(func(h Handler) { h.OnMedia(c, st) })
	return nil
}

// ourOffer builds our offer of md's stream for a new exchange: the pending
// exchange (its line set) and the SDP. The caller holds c.mu.
func (c *Call) ourOffer(md *Media) (*pending, []byte, error) {
	pd := &pending{dir: sdpx.SendRecv, result: make(chan error, 1)}
	line, err := c.offerLine(md, sdpx.SendRecv)
	if err != nil {
		return nil, nil, err
	}
	pd.line = line
	offer, err := c.offerSDP(line)
	return pd, offer, err
}

// sendFailed ends the call after its binding failed to send what (the
// initial request or offer), with the binding's own Reason when it gave one,
// and returns the reason.
func (c *Call) sendFailed(err error, what string) Reason {
	var r Reason
	if !errors.As(err, &r) {
		r = Reason{Kind: SignalingFailed, Text: what, Err: err}
	}
	c.terminate(r, false)
	return r
}

// acceptOffering accepts an incoming call that came without an offer: our
// offer goes in the answer, the peer's answer comes with RemoteAnswer.
func (c *Call) acceptOffering(ctx context.Context, md *Media) error {
	c.mu.Lock()
	if !c.live() {
		c.mu.Unlock()
		return ErrClosed
	}
	pd, offer, err := c.ourOffer(md)
	if err == nil {
		c.offer = pd
	}
	c.mu.Unlock()
	if err != nil {
		r := Reason{Kind: MediaFailed, Code: 500, Err: err}
		c.terminate(r, true)
		return r
	}
	if err := c.sig.SendAnswer(ctx, offer); err != nil {
		r := Reason{Kind: SignalingFailed, Text: "sending the offer", Err: err}
		c.terminate(r, false)
		return r
	}
	select {
	case err := <-pd.result:
		// RemoteAnswer made the call Active, or the call ended (terminate).
		return err
	case <-ctx.Done():
		c.mu.Lock()
		outstanding := c.offer == pd
		c.mu.Unlock()
		if !outstanding {
			return <-pd.result // the answer, or the end, came meanwhile
		}
		r := Reason{Kind: SignalingFailed, Text: "no answer to our offer", Err: ctx.Err()}
		c.terminate(r, true)
		return r
	}
}

// answerLocked answers remote offer d on the current media and puts it in
// force; c.mu held.
func (c *Call) answerLocked(d *sdpx.Description, re bool) ([]byte, MediaState, error) {
	p, err := planOffer(d, c.cfg, c.neg)
	if err != nil {
		return nil, MediaState{}, err
	}
	p.controlling = c.initialOfferer()
	dir := sdpx.Combine(c.localDir, p.remote.Direction)
	if p.ice, err = c.iceFor(p.remote); err != nil {
		return nil, MediaState{}, err
	}
	line, ours, err := c.answerLine(c.media, p, dir)
	if err != nil {
		return nil, MediaState{}, err
	}
	st, err := apply(c.media, p, ours, dir, c.neg)
	if err != nil {
		return nil, MediaState{}, err
	}
	st.Renegotiated = re
	answer, err := c.answerSDP(d, p, line)
	if err != nil {
		return nil, MediaState{}, err
	}
	c.neg = &negotiated{media: c.media, line: line, remote: p.remote, ours: ours, peer: p.peerKeys, state: st}
	if p.ice.ufrag != "" {
		c.ice = p.ice
	}
	return answer, st, nil
}

// Reject refuses an incoming call that was not answered. r.Kind defaults to
// Declined; r.Code is the SIP status, 0 letting the binding pick one for
// the kind (486 for Busy, 603 for Declined, ...).
func (c *Call) Reject(ctx context.Context, r Reason) error {
	c.mu.Lock()
	ok := c.live() && c.dir == Inbound && !c.answered
	c.mu.Unlock()
	if !ok {
		return ErrState
	}
	if r.Kind == Normal {
		r.Kind = Declined
	}
	c.terminate(r, true)
	return nil
}

// Hangup ends the call from our side: BYE when established, CANCEL while
// an outgoing call rings, a rejection for an unanswered incoming call. It
// returns once the media is closed. Hanging up an ended call is a no-op.
func (c *Call) Hangup(ctx context.Context) error {
	c.terminate(Reason{Kind: LocalHangup}, true)
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Change is what a re-offer changes.
type Change struct {
	// Direction is the direction we offer: sdpx.SendOnly puts the peer on
	// hold, sdpx.SendRecv resumes, sdpx.Inactive stops media both ways.
	Direction sdpx.Direction
	// NewMedia moves the call to a new media stream (new local ports, and
	// with DTLS-SRTP a new association); the old stream is closed once the
	// peer accepts, the new one if it refuses.
	NewMedia bool
}

// MaxGlareRetries bounds the retries of a re-offer refused for glare.
const MaxGlareRetries = 4

// Renegotiate sends a re-offer on an active call and waits for the answer
// (bounded by ctx). When the peer refuses it, the media in force stays
// unchanged (rollback) and the refusal is returned as a Reason; a refusal
// for glare (SIP 491) is retried after the RFC 3261 §14.1 timer.
func (c *Call) Renegotiate(ctx context.Context, ch Change) error {
	for attempt := 0; ; attempt++ {
		err := c.reoffer(ctx, ch)
		var r Reason
		if !errors.As(err, &r) || r.Kind != Glare || attempt >= MaxGlareRetries {
			return err
		}
		t := time.NewTimer(glareDelay(c.dir == Outbound))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-c.done:
			t.Stop()
			return ErrClosed
		}
	}
}

// glareDelay is the RFC 3261 §14.1 wait after a 491: 2.1 to 4 s in 10 ms
// steps for the owner of the Call-ID (the caller), else 0 to 2 s.
func glareDelay(owner bool) time.Duration {
	if owner {
		return time.Duration(210+rand.IntN(191)) * 10 * time.Millisecond
	}
	return time.Duration(rand.IntN(201)) * 10 * time.Millisecond
}

func (c *Call) reoffer(ctx context.Context, ch Change) error {
	c.mu.Lock()
	if !c.live() || c.state != Active {
		c.mu.Unlock()
		return ErrState
	}
	if c.offer != nil {
		c.mu.Unlock()
		return ErrPending
	}
	p := &pending{dir: ch.Direction, result: make(chan error, 1)}
	c.offer = p
	c.mu.Unlock()

	if ch.NewMedia {
		nm, err := OpenMedia(c.a.cfg.Manager, c.cfg, c.a.cfg.SetupTimeout, c.onMediaError)
		if err != nil {
			c.rollback(p)
			return err
		}
		c.mu.Lock()
		if c.offer != p {
			c.mu.Unlock()
			nm.Close()
			return p.outcome(ErrClosed)
		}
		p.media = nm
		c.mu.Unlock()
		if err := nm.Wait(ctx); err != nil {
			c.rollback(p)
			return p.outcome(err)
		}
	}
	c.mu.Lock()
	if c.offer != p {
		c.mu.Unlock()
		return p.outcome(ErrClosed)
	}
	md := c.media
	if p.media != nil {
		md = p.media
	}
	line, err := c.offerLine(md, ch.Direction)
	var offer []byte
	if err == nil {
		p.line = line
		offer, err = c.offerSDP(line)
	}
	c.mu.Unlock()
	if err != nil {
		c.rollback(p)
		return err
	}
	if err := c.sig.SendOffer(ctx, offer); err != nil {
		c.rollback(p)
		var r Reason
		if errors.As(err, &r) {
			return r
		}
		return Reason{Kind: SignalingFailed, Text: "sending the re-offer", Err: err}
	}
	select {
	case err := <-p.result:
		return err
	case <-ctx.Done():
		c.rollback(p)
		return ctx.Err()
	}
}

// outcome returns why offer p was withdrawn before it was sent (the peer's
// refusal, e.g. a Glare Reason that Renegotiate retries, or the call's end),
// else err.
func (p *pending) outcome(err error) error {
	select {
	case r := <-p.result:
		return r
	default:
		return err
	}
}

// rollback discards our outstanding offer p (if still outstanding) and its new stream.
func (c *Call) rollback(p *pending) {
	c.mu.Lock()
	if c.offer != p {
		c.mu.Unlock()
		return
	}
	c.offer = nil
	c.mu.Unlock()
	if p.media != nil {
		p.media.Close()
	}
}
