package call

import (
	"context"
	"errors"

	"github.com/reflow-go/reflow/call/sdpx"
)

// The methods in this file are for signalling bindings: they feed what the
// peer sent into the call.

// RemoteRinging reports that the callee rings (SIP 180/183); an Offering
// call becomes Ringing.
func (c *Call) RemoteRinging() {
	c.mu.Lock()
	ok := c.live() && c.state == Offering
	c.mu.Unlock()
	if ok {
		c.setState(Ringing)
	}
}

// RemoteAnswer applies the peer's answer to our outstanding offer: a
// (re-)offer sent with SendOffer, or the offer an incoming call without one
// was accepted with (SendAnswer; SIP: the answer is the ACK's body, nil when
// it has none). An answer that cannot be used ends the call (the core sends
// the hangup) and is returned as a Reason; for SIP the ACK is already sent
// (or, for the delayed offer, received).
func (c *Call) RemoteAnswer(answer []byte) error {
	c.mu.Lock()
	p := c.offer
	if !c.live() || p == nil {
		c.mu.Unlock()
		return ErrState
	}
	initial := !c.answered
	md := c.media
	if p.media != nil {
		md = p.media
	}
	st, err := c.applyAnswerLocked(md, p, answer)
	if err != nil {
		c.mu.Unlock()
		var r Reason
		if !errors.As(err, &r) {
			r = Reason{Kind: MediaFailed, Err: err}
		}
		c.terminate(r, true)
		return r
	}
	old := c.media
	c.media = md
	c.offer = nil
	c.answered = true
	c.localDir = p.dir
	c.mu.Unlock()
	if old != md {
		old.Close()
	}
	p.result <- nil
	if initial {
		c.setState(Active)
	}
	c.a.emit(func(h Handler) { h.OnMedia(c, st) })
	return nil
}

func (c *Call) applyAnswerLocked(md *Media, p *pending, answer []byte) (MediaState, error) {
	d, err := sdpx.Parse(answer)
	if err != nil {
		return MediaState{}, Reason{Kind: Malformed, Text: "answer", Err: err}
	}
	pl, err := planAnswer(d, c.cfg, p.line)
	if err != nil {
		return MediaState{}, err
	}
	if c.cfg.ICE && pl.remote.ICE() {
		pl.ice = c.ice
	}
	pl.controlling = c.initialOfferer()
	var ours = c.keys[pl.peerKeys.Suite]
	dir := sdpx.Combine(p.dir, pl.remote.Direction)
	prev := c.neg
	st, err := apply(md, pl, ours, dir, prev)
	if err != nil {
		return st, err
	}
	c.neg = &negotiated{media: md, line: p.line, remote: pl.remote, ours: ours, peer: pl.peerKeys, state: st}
	return st, nil
}

// RemoteReject reports that the peer refused our outstanding offer (or the
// request of a call dialled without one, Params.DelayedOffer). For the
// initial offer the call ends with r; for a re-offer the media in force
// stays (rollback) and Renegotiate returns r.
func (c *Call) RemoteReject(r Reason) {
	c.mu.Lock()
	p := c.offer
	if !c.live() || p == nil && !c.awaitOffer {
		c.mu.Unlock()
		return
	}
	if !c.answered {
		c.mu.Unlock()
		c.terminate(r, false)
		return
	}
	c.offer = nil
	c.mu.Unlock()
	if p.media != nil {
		p.media.Close()
	}
	p.result <- r
}

// RemoteOffer handles a re-offer from the peer on an established call and
// returns our answer. A re-offer that crosses ours is refused with a Glare
// Reason (SIP 491); an unacceptable one with a NotAcceptable or Malformed
// Reason (SIP 488/400), leaving the media in force unchanged.
//
// On a call dialled without an offer (Params.DelayedOffer) the first
// RemoteOffer is the peer's initial offer (SIP: in its 2xx): the answer
// puts the media in force and the call becomes Active. A missing (nil) or
// unacceptable initial offer ends the call with the returned Reason and
// sends nothing: the binding ends the session itself (SIP: ACK, then BYE,
// RFC 3261 §13.2.2.4). The offer decides the protection and rtcp-mux as
// for Agent.Incoming; a stream of another shape than the one opened by
// Dial is replaced, waiting (bounded by ctx) until the new one is ready.
func (c *Call) RemoteOffer(ctx context.Context, offer []byte) ([]byte, error) {
	c.mu.Lock()
	initial := c.awaitOffer && !c.accepting && c.live()
	if initial {
		c.accepting = true // one initial offer
	}
	c.mu.Unlock()
	if initial {
		return c.initialOffer(ctx, offer)
	}
	d, err := sdpx.Parse(offer)
	if err != nil {
		return nil, Reason{Kind: Malformed, Code: 400, Text: "offer", Err: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.live():
		return nil, ErrClosed
	case c.offer != nil || c.accepting && !c.answered:
		return nil, Reason{Kind: Glare, Code: 491, Text: "offer pending"}
	case !c.answered:
		return nil, Reason{Kind: Glare, Code: 491, Text: "call not established"}
	}
	answer, st, err := c.answerLocked(d, true)
	if err != nil {
		return nil, err
	}
	c.a.emit(func(h Handler) { h.OnMedia(c, st) })
	return answer, nil
}

// RemoteHangup reports that the call ended from the peer's side (SIP BYE,
// CANCEL, a lost connection); nothing is sent. Use Kind RemoteHangup,
// Canceled or SignalingFailed.
func (c *Call) RemoteHangup(r Reason) {
	c.terminate(r, false)
}

// RemoteCandidate adds a candidate the peer trickled after its description
// (RFC 8838; value is an a=candidate value, with or without "candidate:")
// to the call's media. A full ICE agent (MediaConfig.FullICE) checks it; one
// that arrives before the description is kept until then. A lite call
// ignores it: the peer's checks are all it needs. A value that does not
// parse gives an error matching sdpx.ErrMalformed or sdpx.ErrUnsupported.
func (c *Call) RemoteCandidate(value string) error {
	cand, err := sdpx.ParseCandidate(value)
	if err != nil {
		return err
	}
	c.mu.Lock()
	md, live := c.media, c.live()
	if c.offer != nil && c.offer.media != nil {
		md = c.offer.media // candidates for our outstanding re-offer's stream
	}
	c.mu.Unlock()
	if !live {
		return ErrClosed
	}
	return md.remoteCandidate(cand)
}

// RemoteEndOfCandidates records that the peer has trickled all its
// candidates (a=end-of-candidates, RFC 8838 §8.2): once every pair has
// failed, a full agent reports ICE failure and the call ends (MediaLost).
func (c *Call) RemoteEndOfCandidates() error {
	c.mu.Lock()
	md, live := c.media, c.live()
	c.mu.Unlock()
	if !live {
		return ErrClosed
	}
	return md.remoteEndOfCandidates()
}

// initialOffer answers the peer's initial offer on a call dialled without
// one; a failure ends the call without sending anything.
func (c *Call) initialOffer(ctx context.Context, offer []byte) ([]byte, error) {
	fail := func(err error) ([]byte, error) {
		var r Reason
		if !errors.As(err, &r) {
			r = Reason{Kind: MediaFailed, Code: 500, Err: err}
		}
		c.terminate(r, false)
		return nil, r
	}
	if len(offer) == 0 {
		return fail(Reason{Kind: NotAcceptable, Code: 488, Text: "no offer in the answer to a request without one"})
	}
	d, err := sdpx.Parse(offer)
	if err != nil {
		return fail(Reason{Kind: Malformed, Code: 400, Text: "offer", Err: err})
	}
	c.mu.Lock()
	cfg, old := c.cfg, c.media
	c.mu.Unlock()
	pl, err := planOffer(d, cfg, nil)
	if err != nil {
		return fail(err)
	}
	// The offer decides the call's media shape, as for an incoming call.
	shaped := cfg.answering(pl)
	md := old
	if shaped.Security != cfg.Security || shaped.RTCPMux != cfg.RTCPMux {
		// The stream opened by Dial has another shape: make one for the offer.
		nm, err := OpenMedia(c.a.cfg.Manager, shaped, c.a.cfg.SetupTimeout, c.onMediaError)
		if err != nil {
			return fail(Reason{Kind: MediaFailed, Code: 500, Text: "opening the media stream", Err: err})
		}
		if err := nm.Wait(ctx); err != nil {
			nm.Close()
			return fail(Reason{Kind: MediaFailed, Code: 500, Text: "media stream not ready", Err: err})
		}
		md = nm
	}
	c.mu.Lock()
	if !c.live() {
		c.mu.Unlock()
		if md != old {
			md.Close()
		}
		return nil, ErrClosed
	}
	c.cfg, c.media = shaped, md
	if shaped.ICE && c.ice.ufrag == "" {
		c.ice, err = newICECredentials()
	}
	var answer []byte
	var st MediaState
	if err == nil {
		answer, st, err = c.answerLocked(d, false)
	}
	if err == nil {
		c.answered, c.awaitOffer = true, false
	}
	c.mu.Unlock()
	if md != old {
		old.Close()
	}
	if err != nil {
		return fail(err)
	}
	c.setState(Active)
	c.a.emit(func(h Handler) { h.OnMedia(c, st) })
	return answer, nil
}
