package sipp2p

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
)

// onInvite handles a new INVITE (a call) or a re-INVITE (To tag present).
func (e *Endpoint) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if !e.validate(req, tx, true) {
		return
	}
	if tag, _ := req.To().Params.Get("tag"); tag != "" {
		e.onReinvite(req, tx, tag)
		return
	}
	if e.cfg.Mode == OutboundOnly {
		e.respond(tx, req, 403, nil)
		return
	}
	ct := req.Contact()
	if ct == nil || ct.Address.Host == "" {
		e.respond(tx, req, 400, nil)
		return
	}
	callID := req.CallID().Value()
	remoteTag, _ := req.From().Params.Get("tag")
	seq := req.CSeq().SeqNo
	if e.pendingInvite(callID, remoteTag, seq) {
		e.respond(tx, req, 482, nil) // merged request (RFC 3261 §8.2.2.2)
		return
	}
	var expires time.Duration
	if v := req.GetHeaders("Expires"); len(v) > 0 {
		n, err := strconv.ParseUint(strings.TrimSpace(v[0].Value()), 10, 32)
		if err != nil {
			e.respond(tx, req, 400, nil)
			return
		}
		expires = time.Duration(n) * time.Second
	}
	t := Transport(strings.ToLower(req.Transport()))
	if !t.valid() {
		t = UDP
	}
	d := &dialog{e: e, callID: callID, t: t, localTag: sip.GenerateTagN(16),
		local: *req.To().Address.Clone(), remote: *req.From().Address.Clone(),
		initialSeq: seq, remoteTag: remoteTag, target: *ct.Address.Clone(), routes: routeSet(req, false),
		remoteSeq: seq, localSeq: rand.Uint32N(1 << 30), inv: req, invTx: tx, final: make(chan struct{}),
		info: infoOf(req)}
	var err error
	if d.client, d.contact, err = e.clientFor(t, req.Source()); err != nil {
		e.respond(tx, req, 500, nil)
		return
	}
	if err := e.track(d); err != nil {
		if errors.Is(err, ErrTooManyCalls) {
			e.respond(tx, req, 503, nil, retryAfter(int(e.cfg.RetryAfter/time.Second)))
		} else {
			e.respond(tx, req, 503, nil)
		}
		return
	}
	// CANCEL (RFC 3261 §9.2): sipgo answers it and the INVITE 487; the
	// transaction itself lingers for its timers, so the call ends on the
	// CANCEL, not on the transaction's end.
	canceled := make(chan struct{})
	var cancelOnce sync.Once
	if !tx.OnCancel(func(*sip.Request) { cancelOnce.Do(func() { close(canceled) }) }) {
		cancelOnce.Do(func() { close(canceled) })
	}
	defer func() {
		e.answered()
		d.markFinal()
		d.mu.Lock()
		done := !d.confirmed
		d.mu.Unlock()
		if done {
			e.untrack(d)
		}
	}()
	e.respond(tx, req, 100, nil)

	offer := req.Body()
	var rejected []rejectedLine
	if len(offer) == 0 {
		d.offerless = true
		offer = nil // no offer: the core offers in our 200
	} else {
		offer, rejected = filterOffer(offer)
	}
	party := call.Party{URI: req.From().Address.String(), DisplayName: req.From().DisplayName}
	d.rejected = rejected
	// Without an offer (delayed offer) the core makes a call that offers in
	// our 200; the answer comes in the ACK.
	c, err := e.agent.Incoming(context.Background(), d, call.Params{ID: callID, Remote: party}, offer)
	if err != nil {
		var r call.Reason
		if !errors.As(err, &r) {
			r = call.Reason{Kind: call.Unavailable, Code: 500}
		}
		code, _ := statusFor(r)
		e.respond(tx, req, code, nil)
		return
	}
	d.mu.Lock()
	d.c = c
	d.mu.Unlock()
	if !e.spawn(func() { d.watch(c) }) {
		c.Hangup(context.Background())
		return
	}
	// sipgo ends the transaction when this handler returns: stay until the
	// INVITE got its final response, was canceled or expired.
	limit := e.cfg.AnswerTimeout
	code := 480
	if expires > 0 {
		limit, code = expires, 487 // RFC 3261 §13.3.1: Expires ends the INVITE with 487
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-d.final:
	case <-c.Done():
	case <-canceled:
		c.RemoteHangup(call.Reason{Kind: call.Canceled, Code: 487, Text: "caller canceled"})
	case <-tx.Done():
		// A transport failure (or the CANCEL, once its timers ran).
		c.RemoteHangup(call.Reason{Kind: call.Canceled, Code: 487, Text: "caller canceled"})
	case <-timer.C:
		kind := call.Unavailable
		if code == 487 {
			kind = call.Canceled
		}
		d.finalOnce.Do(func() {
			e.respond(tx, req, code, nil)
			close(d.final)
		})
		c.RemoteHangup(call.Reason{Kind: kind, Code: code, Text: phrase(code)})
	case <-e.closing:
		d.finalOnce.Do(func() {
			e.respond(tx, req, 503, nil)
			close(d.final)
		})
		c.RemoteHangup(call.Reason{Kind: call.Unavailable, Code: 503, Text: phrase(503)})
	}
}

// SendRinging sends 180 Ringing with our tag and Contact (an early dialog).
func (d *dialog) SendRinging(ctx context.Context) error {
	if d.uac {
		return call.ErrState
	}
	select {
	case <-d.final:
		return call.ErrState
	default:
	}
	return d.invTx.Respond(d.uasResponse(d.inv, 180, nil))
}

// uasResponse builds a response to req in this dialog: our tag in To,
// Contact for 1xx/2xx to INVITE.
func (d *dialog) uasResponse(req *sip.Request, code int, body []byte, extra ...sip.Header) *sip.Response {
	res := d.e.newResponse(req, code, body, extra...)
	if to := res.To(); to != nil {
		if to.Params == nil {
			to.Params = sip.NewParams()
		}
		to.Params.Add("tag", d.localTag)
	}
	if req.Method == sip.INVITE && code > 100 && code < 300 {
		ct := d.contact
		res.AppendHeader(&ct)
	}
	if len(body) > 0 {
		ct := sip.ContentTypeHeader("application/sdp")
		res.AppendHeader(&ct)
	}
	return res
}

// SendAnswer sends 200 OK with the answer, retransmits it until the ACK
// arrives (RFC 3261 §13.3.1.4) and waits for the ACK, bounded by ctx. When
// ctx ends first the 200 keeps being retransmitted and the dialog is ended
// with a BYE once the ACK came or 64*T1 passed. For an INVITE without an
// offer the body is our offer and the ACK's body, the answer, is handed to
// the call (Call.RemoteAnswer) before SendAnswer returns.
func (d *dialog) SendAnswer(ctx context.Context, answer []byte) error {
	if d.uac {
		return call.ErrState
	}
	answer = restoreAnswer(answer, d.rejected)
	res := d.uasResponse(d.inv, 200, answer)
	ack := make(chan []byte, 1)
	sent := false
	var err error
	d.finalOnce.Do(func() {
		d.mu.Lock()
		d.confirmed = true
		if d.acks == nil {
			d.acks = make(map[uint32]chan []byte)
		}
		d.acks[d.initialSeq] = ack
		d.mu.Unlock()
		sent = true
		// Sent before the INVITE handler may return: sipgo keeps the
		// transaction (RFC 6026 Accepted) only once it has a final response.
		err = d.invTx.Respond(res)
		close(d.final)
	})
	if !sent {
		return call.ErrState
	}
	if err != nil {
		d.e.log.Debug("200", "call", d.callID, "err", err)
	}
	acked := make(chan struct{})
	if !d.e.spawn(func() { d.retransmit(d.invTx, res, d.initialSeq, ack, acked) }) {
		return ErrClosed
	}
	var ended <-chan struct{}
	if c := d.callRef(); c != nil {
		ended = c.Done() // no ACK within 64*T1 ends the call
	}
	select {
	case <-ended:
		return call.ErrClosed
	case <-d.e.closing:
		return ErrClosed
	case <-acked:
		if d.offerless {
			// Our 200 carried the offer: the ACK's body is the answer. A
			// missing or unusable one ends the call with a BYE (the core
			// sends it through SendHangup).
			d.mu.Lock()
			body := d.ackBody
			d.mu.Unlock()
			if c := d.callRef(); c != nil {
				c.RemoteAnswer(body)
			}
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SendReject answers the initial INVITE with a failure status.
func (d *dialog) SendReject(ctx context.Context, r call.Reason) error {
	if d.uac {
		return call.ErrState
	}
	code, _ := statusFor(r)
	var err error
	sent := false
	d.finalOnce.Do(func() {
		err = d.invTx.Respond(d.uasResponse(d.inv, code, nil))
		sent = true
		close(d.final)
	})
	if !sent {
		return call.ErrState
	}
	return err
}

// onAck confirms a 2xx we sent: it matches the dialog by Call-ID and both
// tags and the 2xx by CSeq; anything else is dropped (an ACK is never
// answered).
func (e *Endpoint) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if req.CallID() == nil || req.From() == nil || req.To() == nil || req.CSeq() == nil {
		return
	}
	ltag, _ := req.To().Params.Get("tag")
	rtag, _ := req.From().Params.Get("tag")
	d := e.lookup(req.CallID().Value(), ltag)
	if d == nil || !d.matches(rtag) {
		return
	}
	d.mu.Lock()
	ch := d.acks[req.CSeq().SeqNo]
	delete(d.acks, req.CSeq().SeqNo)
	d.mu.Unlock()
	if ch != nil {
		var body []byte
		if len(req.Body()) > 0 && isSDP(req) {
			body = append([]byte(nil), req.Body()...)
		}
		ch <- body
	}
}

// onBye ends the call of the dialog the BYE matches (Call-ID and both
// tags), 481 otherwise; a CSeq lower than the last one is refused 500.
func (e *Endpoint) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if !e.validate(req, tx, false) {
		return
	}
	ltag, _ := req.To().Params.Get("tag")
	rtag, _ := req.From().Params.Get("tag")
	d := e.lookup(req.CallID().Value(), ltag)
	if ltag == "" || d == nil || !d.matches(rtag) {
		e.respond(tx, req, 481, nil)
		return
	}
	if !d.checkSeq(req.CSeq().SeqNo) {
		e.respond(tx, req, 500, nil)
		return
	}
	d.mu.Lock()
	d.byeDone = true
	d.mu.Unlock()
	e.respond(tx, req, 200, nil)
	if !d.uac {
		// A BYE before our final response: the INVITE gets 487 (RFC 3261 §15.1.2).
		d.finalOnce.Do(func() {
			e.respond(d.invTx, d.inv, 487, nil)
			close(d.final)
		})
	}
	e.untrack(d)
	if c := d.callRef(); c != nil {
		c.RemoteHangup(call.Reason{Kind: call.RemoteHangup, Text: "BYE"})
	}
}
