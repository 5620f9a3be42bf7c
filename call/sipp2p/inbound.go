package sipp2p

import (
	"context"
	"errors"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
)

// onInvite handles a new INVITE (a call) or a re-INVITE (To tag present).
func (e *Endpoint) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil {
		if tag, ok := to.Params.Get("tag"); ok && tag != "" {
			e.onReinvite(req, tx)
			return
		}
	}
	if e.cfg.Mode == OutboundOnly {
		e.respond(tx, req, 403, "Forbidden")
		return
	}
	cid := req.CallID()
	if cid == nil || req.Contact() == nil {
		e.respond(tx, req, 400, "Bad Request")
		return
	}
	callID := cid.Value()
	if e.lookup(callID) != nil {
		e.respond(tx, req, 482, "Loop Detected")
		return
	}
	e.respond(tx, req, 100, "Trying")
	t := Transport(strings.ToLower(req.Transport()))
	d := &dialog{e: e, callID: callID, t: t, dua: e.dialogUA(t), final: make(chan struct{})}
	uas, err := d.dua.ReadInvite(req, tx)
	if err != nil {
		e.respond(tx, req, 400, "Bad Request")
		return
	}
	d.uas = uas
	if err := e.track(d); err != nil {
		uas.Respond(503, "Service Unavailable", nil)
		return
	}
	party := call.Party{}
	if f := req.From(); f != nil {
		party = call.Party{URI: f.Address.String(), DisplayName: f.DisplayName}
	}
	c, err := e.agent.Incoming(context.Background(), d, call.Params{ID: callID, Remote: party}, req.Body())
	if err != nil {
		var r call.Reason
		if !errors.As(err, &r) {
			r = call.Reason{Code: 500}
		}
		code, phrase := statusFor(r)
		if r.Text != "" {
			phrase = r.Text
		}
		uas.Respond(code, phrase, nil)
		e.untrack(d)
		return
	}
	e.spawn(func() { e.watch(c, d) })
	// sipgo ends the transaction when this handler returns: stay until the
	// INVITE got its final response, or was canceled.
	select {
	case <-d.final:
	case <-c.Done():
	case <-uas.Context().Done():
		c.RemoteHangup(call.Reason{Kind: call.Canceled, Code: 487, Text: "caller canceled"})
	}
}

// watch forgets the dialog when its call ends.
func (e *Endpoint) watch(c *call.Call, d *dialog) {
	<-c.Done()
	e.untrack(d)
}

// dialogUA returns a sipgo dialog UA whose Contact and Via carry our
// advertised address for transport t.
func (e *Endpoint) dialogUA(t Transport) *sipgo.DialogUA {
	host, port := e.advertised(t)
	opts := []sipgo.ClientOption{sipgo.WithClientLogger(e.log.With("component", "sipgo"))}
	if host != "" {
		opts = append(opts, sipgo.WithClientHostname(host))
	}
	if t == UDP {
		if a, ok := e.Listening(UDP); ok && !a.Addr().IsUnspecified() {
			// Symmetric UDP: requests leave from the listening socket.
			opts = append(opts, sipgo.WithClientConnectionAddr(a.String()))
		}
	}
	client, _ := sipgo.NewClient(e.ua, opts...)
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: e.uri.User, Host: host, Port: port}}
	if t != UDP {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", string(t))
	}
	return &sipgo.DialogUA{Client: client, ContactHDR: contact}
}

// onAck confirms the dialog of an answered INVITE; ACKs of re-INVITE 2xx
// responses need nothing.
func (e *Endpoint) onAck(req *sip.Request, tx sip.ServerTransaction) {
	cid := req.CallID()
	if cid == nil {
		return
	}
	d := e.lookup(cid.Value())
	if d == nil {
		return
	}
	if _, uas, _ := d.sessions(); uas != nil {
		if err := uas.ReadAck(req, tx); err != nil && !errors.Is(err, sipgo.ErrDialogInvalidCseq) {
			e.log.Debug("ACK", "err", err)
		}
	}
}

// onBye ends the call of the dialog.
func (e *Endpoint) onBye(req *sip.Request, tx sip.ServerTransaction) {
	cid := req.CallID()
	var d *dialog
	if cid != nil {
		d = e.lookup(cid.Value())
	}
	if d == nil {
		e.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	uac, uas, _ := d.sessions()
	var err error
	switch {
	case uac != nil:
		err = uac.ReadBye(req, tx)
	case uas != nil:
		err = uas.ReadBye(req, tx)
	}
	if err != nil {
		e.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	if c := d.call(); c != nil {
		c.RemoteHangup(call.Reason{Kind: call.RemoteHangup, Text: "BYE"})
	}
}
