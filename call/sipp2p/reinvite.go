package sipp2p

import (
	"context"
	"errors"

	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
)

// reinvite sends a re-INVITE in the dialog (sipgo has no API for it),
// acknowledges a 2xx and reports the outcome to the call.
func (d *dialog) reinvite(ctx context.Context, offer []byte) error {
	uac, uas, _ := d.sessions()
	var remote sip.Uri
	var do func(context.Context, *sip.Request) (*sip.Response, error)
	var write func(*sip.Request) error
	if uac != nil {
		remote = uac.InviteResponse.Contact().Address
		do, write = uac.Do, uac.WriteRequest
	} else {
		remote = uas.InviteRequest.Contact().Address
		do, write = uas.Do, uas.WriteRequest
	}
	req := sip.NewRequest(sip.INVITE, remote)
	req.SetTransport(d.t.sip())
	req.SetBody(offer)
	ct := sip.ContentTypeHeader("application/sdp")
	req.AppendHeader(&ct)
	contact := d.dua.ContactHDR
	req.AppendHeader(&contact)
	res, err := do(ctx, req)
	if err != nil {
		return err
	}
	c := d.call()
	if c == nil {
		return call.ErrClosed
	}
	if !res.IsSuccess() {
		c.RemoteReject(reasonFor(res))
		return nil
	}
	ack := sip.NewRequest(sip.ACK, remote)
	ack.SetTransport(d.t.sip())
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
	if err := write(ack); err != nil {
		d.e.log.Debug("re-INVITE ACK", "err", err)
	}
	if err := c.RemoteAnswer(res.Body()); err != nil && !errors.Is(err, call.ErrState) {
		return nil // the call ended itself, sending BYE
	}
	return nil
}

// onReinvite answers an in-dialog INVITE: 200 with our answer, 491 while our
// own offer is pending (glare), 488/400 for an unacceptable offer, 481 for an
// unknown dialog.
func (e *Endpoint) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	cid := req.CallID()
	var d *dialog
	if cid != nil {
		d = e.lookup(cid.Value())
	}
	var c *call.Call
	if d != nil {
		c = d.call()
	}
	if c == nil {
		e.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.agentHangup())
	defer cancel()
	answer, err := c.RemoteOffer(ctx, req.Body())
	if err != nil {
		var r call.Reason
		if !errors.As(err, &r) {
			r = call.Reason{Code: 481}
		}
		code, phrase := statusFor(r)
		if code == 491 {
			e.glare.Add(1)
		}
		e.respond(tx, req, code, phrase)
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", answer)
	ct := sip.ContentTypeHeader("application/sdp")
	res.AppendHeader(&ct)
	contact := d.dua.ContactHDR
	res.AppendHeader(&contact)
	if err := tx.Respond(res); err != nil {
		e.log.Debug("re-INVITE 200", "err", err)
	}
}
