package sipp2p

import (
	"context"
	"errors"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
)

// dialog is the SIP side of one call: it implements call.Signaling.
type dialog struct {
	e      *Endpoint
	callID string
	t      Transport
	dua    *sipgo.DialogUA
	req    *sip.Request // our initial INVITE (outbound)

	mu          sync.Mutex
	uac         *sipgo.DialogClientSession
	uas         *sipgo.DialogServerSession
	established bool
	waitCancel  context.CancelFunc // cancels WaitAnswer: CANCEL once a response came
	forceStop   context.CancelCauseFunc
	responded   bool          // a response to the INVITE arrived
	waitDone    chan struct{} // outbound: WaitAnswer returned
	first       chan struct{} // outbound: first response or failure
	firstOnce   sync.Once
	waitErr     error
	final       chan struct{} // inbound: final response to the initial INVITE sent
	finalOnce   sync.Once
}

var _ call.Signaling = (*dialog)(nil)

func (d *dialog) call() *call.Call { return d.e.agent.Call(d.callID) }

func (d *dialog) sessions() (*sipgo.DialogClientSession, *sipgo.DialogServerSession, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.uac, d.uas, d.established
}

func (d *dialog) markFirst(err error) {
	d.firstOnce.Do(func() {
		d.mu.Lock()
		d.waitErr = err
		d.mu.Unlock()
		close(d.first)
	})
}

func (d *dialog) markFinal() { d.finalOnce.Do(func() { close(d.final) }) }

// SendOffer sends the INVITE (initial) or a re-INVITE.
func (d *dialog) SendOffer(ctx context.Context, offer []byte) error {
	uac, uas, est := d.sessions()
	if uac == nil && uas == nil {
		return d.invite(ctx, offer)
	}
	if !est {
		return call.Reason{Kind: call.Glare, Code: 491, Text: "dialog not established"}
	}
	return d.reinvite(ctx, offer)
}

// invite sends the initial INVITE and returns at the first response.
func (d *dialog) invite(ctx context.Context, offer []byte) error {
	d.req.SetBody(offer)
	ct := sip.ContentTypeHeader("application/sdp")
	d.req.AppendHeader(&ct)
	base, force := context.WithCancelCause(context.Background())
	ictx, cancel := context.WithTimeout(base, d.e.cfg.AnswerTimeout)
	d.mu.Lock()
	d.waitCancel, d.forceStop = cancel, force
	d.mu.Unlock()
	// The caller's ctx bounds the connection set-up and the wait for a first
	// response, not the call.
	stop := context.AfterFunc(ctx, d.abort)
	uac, err := d.dua.WriteInvite(ictx, d.req)
	stop()
	if err != nil {
		cancel()
		force(nil)
		return d.e.transportError(ctx, d.t, d.req, err)
	}
	d.mu.Lock()
	d.uac = uac
	d.mu.Unlock()
	d.e.spawn(func() { d.waitAnswer(ictx, uac) })
	select {
	case <-d.first:
		d.mu.Lock()
		err := d.waitErr
		d.mu.Unlock()
		if err != nil {
			return d.e.transportError(ctx, d.t, d.req, err)
		}
		return nil
	case <-ctx.Done():
		d.abort()
		return ctx.Err()
	}
}

// abort stops waiting for the answer: with a CANCEL when the peer has
// responded, at once otherwise (sipgo would wait for Timer B).
func (d *dialog) abort() {
	d.mu.Lock()
	responded, cancel, force := d.responded, d.waitCancel, d.forceStop
	d.mu.Unlock()
	if !responded {
		force(sipgo.WaitAnswerForceCancelErr)
	}
	cancel()
}

func (d *dialog) waitAnswer(ctx context.Context, uac *sipgo.DialogClientSession) {
	defer close(d.waitDone)
	defer d.forceStop(nil)
	defer d.waitCancel()
	err := uac.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
		d.mu.Lock()
		d.responded = true
		d.mu.Unlock()
		d.markFirst(nil)
		if r.StatusCode == 180 || r.StatusCode == 183 {
			if c := d.call(); c != nil {
				c.RemoteRinging()
			}
		}
		return nil
	}})
	var dr *sipgo.ErrDialogResponse
	errors.As(err, &dr)
	success := err == nil && uac.InviteResponse != nil && uac.InviteResponse.IsSuccess()
	if !success && dr == nil && ctx.Err() == nil {
		d.markFirst(err) // failed before any response
	} else {
		d.markFirst(nil)
	}
	c := d.call()
	switch {
	case success:
		actx, cancel := context.WithTimeout(context.Background(), d.e.agentHangup())
		defer cancel()
		if err := uac.Ack(actx); err != nil {
			d.e.log.Debug("ACK", "err", err)
		}
		d.mu.Lock()
		d.established = true
		d.mu.Unlock()
		if c == nil || errors.Is(c.RemoteAnswer(uac.InviteResponse.Body()), call.ErrState) {
			// The call ended while the 200 was on its way: end the dialog.
			uac.Bye(actx)
		}
	case dr != nil:
		if c != nil {
			c.RemoteReject(reasonFor(dr.Res))
		}
	case ctx.Err() != nil:
		// Our CANCEL (hangup) or the answer timeout.
		if c != nil {
			c.RemoteHangup(call.Reason{Kind: call.Unavailable, Code: 408, Text: "no answer"})
		}
	default:
		if c != nil {
			c.RemoteHangup(call.Reason{Kind: call.SignalingFailed, Text: "INVITE failed", Err: err})
		}
	}
}

// SendRinging sends 180 Ringing.
func (d *dialog) SendRinging(context.Context) error {
	_, uas, _ := d.sessions()
	if uas == nil {
		return call.ErrState
	}
	return uas.Respond(180, "Ringing", nil)
}

// SendAnswer sends 200 OK with the answer and waits for the ACK.
func (d *dialog) SendAnswer(ctx context.Context, answer []byte) error {
	_, uas, _ := d.sessions()
	if uas == nil {
		return call.ErrState
	}
	d.mu.Lock()
	d.established = true // in-dialog requests may come once the 200 is out
	d.mu.Unlock()
	err := uas.RespondSDP(answer)
	d.markFinal()
	return err
}

// SendReject answers the initial INVITE with a failure status.
func (d *dialog) SendReject(ctx context.Context, r call.Reason) error {
	_, uas, _ := d.sessions()
	if uas == nil {
		return call.ErrState
	}
	code, phrase := statusFor(r)
	err := uas.Respond(code, phrase, nil)
	d.markFinal()
	return err
}

// SendHangup sends CANCEL before the answer and BYE after it.
func (d *dialog) SendHangup(ctx context.Context, r call.Reason) error {
	uac, uas, est := d.sessions()
	switch {
	case uac != nil && !est:
		d.abort() // WaitAnswer sends the CANCEL
		select {
		case <-d.waitDone:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	case uac != nil:
		return uac.Bye(ctx)
	case uas != nil:
		return uas.Bye(ctx)
	}
	return nil
}
