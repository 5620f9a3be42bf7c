package call

import (
	"context"
	"slices"

	"github.com/reflow-go/reflow/call/sdpx"
)

// CandidateSender is implemented by a Signaling that can carry our ICE
// candidates after our description (trickle ICE, RFC 8838). With
// MediaConfig.Trickle, a full ICE call (MediaConfig.FullICE) whose
// Signaling implements it sends its initial offer, or its answer to an
// offer that says a=ice-options:trickle, at once, before the stream's NAT
// setup is done: the description carries a=ice-options:trickle and the
// host candidates known then (c=/m= the first of them, or 0.0.0.0 port 9
// when there is none yet, RFC 8840 §4.1.1) and no a=end-of-candidates.
// Once the setup is done, the server-reflexive and relayed candidates it
// gave are sent with SendCandidate, one at a time and in order, then
// SendEndOfCandidates.
//
// The core calls them on a goroutine of its own, after SendOffer or
// SendAnswer has returned, possibly while another Signaling method of the
// call runs, never after SendHangup or SendReject has been called. They
// must return when ctx ends and must not wait for the call to end.
type CandidateSender interface {
	// SendCandidate sends one of our candidates: value is an a=candidate
	// value with its "candidate:" prefix, as in RTCIceCandidate.candidate
	// (its sdpMid is the m= line's a=mid, sdpMLineIndex 0).
	SendCandidate(ctx context.Context, value string) error
	// SendEndOfCandidates tells the peer that we have no more candidates
	// (RFC 8838 §4.4; a=end-of-candidates, RFC 8840).
	SendEndOfCandidates(ctx context.Context) error
}

// trickleCapable reports whether the call trickles its candidates: full ICE,
// MediaConfig.Trickle and a Signaling that can send them.
func (c *Call) trickleCapable() bool {
	_, ok := c.sig.(CandidateSender)
	return ok && c.cfg.Trickle && c.cfg.ICE && c.cfg.FullICE
}

// trickleOffer reports whether the initial offer is sent before the stream
// is ready.
func (c *Call) trickleOffer() bool { return c.trickleCapable() }

// trickleAnswer reports whether the answer to the peer's offer d is sent
// before the stream is ready: the peer said it takes trickled candidates.
func (c *Call) trickleAnswer(d *sdpx.Description) bool {
	return c.trickleCapable() && d != nil && slices.ContainsFunc(d.Media, func(m sdpx.Media) bool { return m.Trickle && m.ICE() })
}

// trickle sends, once md is ready, the candidates of md that line did not
// carry, then the end of candidates. It does nothing when line carried them
// all. The call's end stops it (terminate waits for it).
func (c *Call) trickle(md *Media, line sdpx.Line) {
	if !line.MoreCandidates {
		return
	}
	cs, ok := c.sig.(CandidateSender)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.mu.Lock()
	if !c.live() || c.trickleStop != nil {
		c.mu.Unlock()
		cancel()
		return
	}
	c.trickleStop = cancel
	c.trickleWG.Add(1)
	c.mu.Unlock()
	sent := make(map[string]bool, len(line.Candidates))
	for _, cd := range line.Candidates {
		sent[cd.Value()] = true
	}
	go func() {
		defer c.trickleWG.Done()
		defer cancel()
		select {
		case <-md.ready:
		case <-md.fail:
			return // the call ends with the stream's failure
		case <-ctx.Done():
			return
		}
		for _, cd := range md.Candidates() {
			v := cd.Value()
			if sent[v] {
				continue
			}
			sent[v] = true
			if err := cs.SendCandidate(ctx, "candidate:"+v); err != nil {
				c.log.Debug("trickling a candidate", "call", c.id, "err", err)
				return
			}
		}
		if err := cs.SendEndOfCandidates(ctx); err != nil {
			c.log.Debug("trickling the end of candidates", "call", c.id, "err", err)
		}
	}()
}
