package sipp2p

import (
	"errors"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
)

// A re-INVITE without SDP asks for our offer in the 200 and brings the
// answer in the ACK (RFC 3261 §14.2, RFC 3264 §8; used for session refresh
// and by some B2BUAs). The endpoint has the core make a re-offer
// (Call.Renegotiate, keeping the direction in force); the binding's
// SendOffer then answers the pending re-INVITE with it instead of sending
// a re-INVITE of its own, and the ACK's answer is reported with
// Call.RemoteAnswer (a missing or unusable one with Call.RemoteReject, the
// media in force staying unchanged).

// emptyReinvite is a re-INVITE without offer awaiting our offer.
type emptyReinvite struct {
	req     *sip.Request
	tx      sip.ServerTransaction
	seq     uint32
	release func()        // ends the dialog's one-re-INVITE-at-a-time lock
	sent    chan struct{} // closed once our 200 is out
}

// answerEmptyReinvite has the core make the offer for re-INVITE req and
// waits until it went out in a 200 (or until the attempt failed: 491 while
// our own offer is pending, 500 otherwise). It runs on the request's
// handler and releases the dialog's re-INVITE lock with release.
func (d *dialog) answerEmptyReinvite(c *call.Call, req *sip.Request, tx sip.ServerTransaction, release func()) {
	er := &emptyReinvite{req: req, tx: tx, seq: req.CSeq().SeqNo, release: release, sent: make(chan struct{})}
	d.mu.Lock()
	d.emptyRe = er
	d.mu.Unlock()
	// Offer what we want now: hold stays hold, a peer's hold is lifted.
	dir := sdpx.SendRecv
	if st, ok := c.MediaState(); ok && (st.Direction == sdpx.SendOnly || st.Direction == sdpx.Inactive) {
		dir = st.Direction
	}
	result := make(chan error, 1)
	if !d.e.spawn(func() {
		ctx, cancel := d.e.sendContext(64*d.e.cfg.T1 + 5*time.Second)
		defer cancel()
		result <- c.Renegotiate(ctx, call.Change{Direction: dir})
	}) {
		result <- ErrClosed
	}
	select {
	case <-er.sent:
		return
	case err := <-result:
		// The core made no offer (our own is pending, the call ended, ...).
		d.mu.Lock()
		taken := d.emptyRe == er
		d.emptyRe = nil
		d.mu.Unlock()
		if !taken {
			<-er.sent // SendOffer took it just now
			return
		}
		code := 500
		if errors.Is(err, call.ErrPending) {
			code = 491
		}
		release()
		d.e.respond(tx, req, code, nil)
	}
}

// takeEmptyReinvite returns the pending re-INVITE without offer, if any.
func (d *dialog) takeEmptyReinvite() *emptyReinvite {
	d.mu.Lock()
	defer d.mu.Unlock()
	er := d.emptyRe
	d.emptyRe = nil
	return er
}

// offerIn2xx answers the pending re-INVITE er with our offer in a 200,
// retransmitted until the ACK, whose body answers the offer.
func (d *dialog) offerIn2xx(er *emptyReinvite, offer []byte) error {
	defer close(er.sent)
	d.refreshTarget(er.req)
	res := d.uasResponse(er.req, 200, offer)
	ack := make(chan []byte, 1)
	d.mu.Lock()
	if d.acks == nil {
		d.acks = make(map[uint32]chan []byte)
	}
	if d.onAck == nil {
		d.onAck = make(map[uint32]func([]byte))
	}
	d.acks[er.seq] = ack
	d.onAck[er.seq] = func(body []byte) {
		c := d.callRef()
		if c == nil {
			return
		}
		if len(body) == 0 {
			c.RemoteReject(call.Reason{Kind: call.NotAcceptable, Code: 488, Text: "no answer in the ACK"})
			return
		}
		// An unusable answer ends the call; the core sends the BYE.
		c.RemoteAnswer(body)
	}
	d.mu.Unlock()
	er.release()
	if err := er.tx.Respond(res); err != nil {
		d.e.log.Debug("re-INVITE 200 with offer", "call", d.callID, "err", err)
	}
	acked := make(chan struct{})
	if !d.e.spawn(func() { d.retransmit(er.tx, res, er.seq, ack, acked) }) {
		return ErrClosed
	}
	return nil
}
