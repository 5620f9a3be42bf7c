package sipp2p

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
)

// reinvite sends a re-INVITE in the dialog (sipgo has no API for it),
// acknowledges a 2xx, and reports the outcome to the call. It returns at
// the final response or when ctx ends.
func (d *dialog) reinvite(ctx context.Context, offer []byte) error {
	return d.e.sending(func() error { return d.sendReinvite(ctx, offer) })
}

func (d *dialog) sendReinvite(ctx context.Context, offer []byte) error {
	if err := d.waitAckSent(ctx); err != nil {
		return err
	}
	req := d.newRequest(sip.INVITE, 0)
	req.SetBody(offer)
	ct := sip.ContentTypeHeader("application/sdp")
	req.AppendHeader(&ct)
	tx, err := d.client.TransactionRequest(ctx, req)
	if err != nil {
		return d.e.transportError(ctx, d.t, req, err)
	}
	defer tx.Terminate()
	if ctx2, ok := tx.(*sip.ClientTx); ok {
		ctx2.OnRetransmission(d.reack)
	}
	var res *sip.Response
	for res == nil {
		select {
		case r := <-tx.Responses():
			if !r.IsProvisional() && r.CSeq() != nil {
				res = r
			}
		case <-tx.Done():
			return d.e.transportError(ctx, d.t, req, tx.Err())
		case <-ctx.Done():
			return ctx.Err()
		case <-d.e.closing:
			return ErrClosed
		}
	}
	c := d.callRef()
	if !res.IsSuccess() {
		if c != nil {
			c.RemoteReject(reasonFor(res))
			if res.StatusCode == 481 || res.StatusCode == 408 {
				// RFC 3261 §12.2.1.2: the dialog is gone.
				c.RemoteHangup(call.Reason{Kind: call.SignalingFailed, Code: res.StatusCode, Text: phrase(res.StatusCode)})
			}
		}
		return nil
	}
	d.refreshTarget(res)
	d.sendAck(res.CSeq().SeqNo, nil)
	if c == nil {
		return call.ErrClosed
	}
	// An unusable answer ends the call (the core sends the BYE).
	c.RemoteAnswer(res.Body())
	return nil
}

// onReinvite answers an INVITE inside a dialog (RFC 3261 §14.2): 481 when
// the Call-ID and both tags match no dialog, 500 with Retry-After for a
// CSeq lower than the last or while a previous re-INVITE is unanswered,
// 491 while our own offer is pending (glare), 488/400 for an unusable
// offer, else 200 with our answer, retransmitted until its ACK.
func (e *Endpoint) onReinvite(req *sip.Request, tx sip.ServerTransaction, ltag string) {
	rtag, _ := req.From().Params.Get("tag")
	d := e.lookup(req.CallID().Value(), ltag)
	if d == nil || !d.matches(rtag) {
		e.respond(tx, req, 481, nil)
		return
	}
	seq := req.CSeq().SeqNo
	// One re-INVITE at a time: busy until its final response is sent.
	d.mu.Lock()
	busy := d.reinBusy
	confirmed := d.confirmed
	d.reinBusy = true
	d.mu.Unlock()
	if busy {
		e.respond(tx, req, 500, nil, retryAfter(rand.IntN(11)))
		return
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			d.mu.Lock()
			d.reinBusy = false
			d.mu.Unlock()
		})
	}
	defer release()
	respond := func(code int, extra ...sip.Header) {
		release()
		e.respond(tx, req, code, nil, extra...)
	}
	if !d.checkSeq(seq) {
		respond(500, retryAfter(rand.IntN(11)))
		return
	}
	c := d.callRef()
	if c == nil {
		respond(481)
		return
	}
	if !confirmed {
		e.glare.Add(1)
		respond(491)
		return
	}
	if len(req.Body()) == 0 {
		d.answerEmptyReinvite(c, req, tx, release)
		return
	}
	offer, rejected := filterOffer(req.Body())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	answer, err := c.RemoteOffer(ctx, offer)
	if err != nil {
		var r call.Reason
		if !errors.As(err, &r) {
			r = call.Reason{Code: 481}
		}
		code, _ := statusFor(r)
		if code == 491 {
			e.glare.Add(1)
		}
		respond(code)
		return
	}
	d.refreshTarget(req)
	res := d.uasResponse(req, 200, restoreAnswer(answer, rejected))
	ack := make(chan []byte, 1)
	d.mu.Lock()
	if d.acks == nil {
		d.acks = make(map[uint32]chan []byte)
	}
	d.acks[seq] = ack
	d.mu.Unlock()
	release()
	if err := tx.Respond(res); err != nil {
		e.log.Debug("re-INVITE 200", "call", d.callID, "err", err)
	}
	acked := make(chan struct{})
	if !e.spawn(func() { d.retransmit(tx, res, seq, ack, acked) }) {
		d.mu.Lock()
		delete(d.acks, seq)
		d.mu.Unlock()
	}
}
