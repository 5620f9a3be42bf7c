package sipp2p

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/reflow-go/reflow/call"
)

// Call places a call to target (a SIP URI such as
// "sip:bob@192.0.2.7:5060;transport=tcp"), with media from the agent's
// configuration or media when not nil. It returns once the peer has
// answered the INVITE with a first response (100 Trying or later); the
// call then rings and becomes Active or Terminated as the peer decides,
// reported to the agent's Handler. Transport and TLS failures are returned
// as errors (a *TLSError for TLS, inside the call.Reason).
func (e *Endpoint) Call(ctx context.Context, target string, media *call.MediaConfig) (*call.Call, error) {
	if e.cfg.Mode == InboundOnly {
		return nil, ErrOutboundDisabled
	}
	req, t, err := e.newRequest(sip.INVITE, target)
	if err != nil {
		return nil, err
	}
	callID := uuid.NewString()
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	if err := e.begin(); err != nil {
		return nil, err
	}
	d := &dialog{e: e, callID: callID, t: t, dua: e.dialogUA(t), req: req,
		waitDone: make(chan struct{}), first: make(chan struct{})}
	if err := e.track(d); err != nil {
		return nil, err
	}
	c, err := e.agent.Dial(ctx, d, call.Params{ID: callID, Remote: call.Party{URI: target}, Media: media})
	if err != nil {
		e.untrack(d)
		return nil, err
	}
	e.spawn(func() { e.watch(c, d) })
	return c, nil
}

// begin moves an idle endpoint (outbound-only, not listening) to Established.
func (e *Endpoint) begin() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if e.state == Idle {
		e.setStateLocked(Establishing, nil)
		e.setStateLocked(Established, nil)
	}
	return nil
}

// SendMessage sends a SIP MESSAGE out of dialog and waits for the final response.
func (e *Endpoint) SendMessage(ctx context.Context, target, contentType string, body []byte) error {
	if e.cfg.Mode == InboundOnly {
		return ErrOutboundDisabled
	}
	req, t, err := e.newRequest(sip.MESSAGE, target)
	if err != nil {
		return err
	}
	if err := e.begin(); err != nil {
		return err
	}
	req.SetBody(body)
	ct := sip.ContentTypeHeader(contentType)
	req.AppendHeader(&ct)
	dua := e.dialogUA(t)
	res, err := dua.Client.Do(ctx, req)
	if err != nil {
		return e.transportError(ctx, t, req, err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("%w: %d %s", ErrRejected, res.StatusCode, res.Reason)
	}
	return nil
}

// newRequest builds an out-of-dialog request to target, choosing the
// transport (the target's transport parameter, sips:, else the default;
// with an outbound proxy only an explicit TLS overrides the default) and the
// destination (the outbound proxy, else the target's host).
func (e *Endpoint) newRequest(method sip.RequestMethod, target string) (*sip.Request, Transport, error) {
	var u sip.Uri
	if err := sip.ParseUri(target, &u); err != nil {
		return nil, "", fmt.Errorf("%w: target %q: %w", ErrInvalidConfig, target, err)
	}
	t := e.cfg.Transport
	explicit := Transport("")
	if u.UriParams != nil {
		if tp, ok := u.UriParams.Get("transport"); ok {
			explicit = Transport(strings.ToLower(tp))
		}
	}
	if strings.EqualFold(u.Scheme, "sips") {
		explicit = TLS
	}
	if explicit != "" && (!e.cfg.OutboundProxy.IsValid() || explicit == TLS) {
		t = explicit
	}
	if !t.valid() {
		return nil, "", fmt.Errorf("%w: transport %q", ErrInvalidConfig, t)
	}
	if t == TLS && e.cfg.TLS != nil && e.cfg.TLS.NeedMutualTLS && e.cfg.TLS.Certificate == nil {
		return nil, "", &TLSError{Reason: LocalCertificateNotFound, Remote: target, Err: errors.New("mutual TLS needs our certificate")}
	}
	req := sip.NewRequest(method, u)
	req.SetTransport(t.sip())
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: e.uri.User, Host: e.uri.Host}}
	from.Params = sip.NewParams()
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	to := sip.ToHeader{Address: sip.Uri{Scheme: u.Scheme, User: u.User, Host: u.Host, Port: u.Port}}
	req.AppendHeader(&to)
	if e.cfg.OutboundProxy.IsValid() {
		req.SetDestination(e.cfg.OutboundProxy.String())
	}
	return req, t, nil
}

// agentHangup bounds in-dialog requests the endpoint sends on its own.
func (e *Endpoint) agentHangup() time.Duration { return 5 * time.Second }

// transportError classifies a failure to send req: TLS failures become a
// *TLSError. A TLS connection the peer closed without answering is probed
// once (at most a second) to read the alert that tells whether our
// certificate was refused: with TLS 1.3 that alert arrives after our side
// of the handshake has already succeeded.
func (e *Endpoint) transportError(ctx context.Context, t Transport, req *sip.Request, err error) error {
	dest := req.Destination()
	if t != TLS {
		return err
	}
	if te := classifyTLS(err, dest); te != nil {
		return te
	}
	if te := e.probeTLS(ctx, dest, req.Recipient.Host); te != nil {
		return te
	}
	return &TLSError{Reason: OtherTLSFailure, Remote: dest, Err: err}
}

// probeTLS dials dest with our client TLS configuration and waits up to a
// second for the peer to refuse the connection.
func (e *Endpoint) probeTLS(ctx context.Context, dest, host string) *TLSError {
	if _, _, err := net.SplitHostPort(dest); err != nil {
		dest = net.JoinHostPort(dest, "5061")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conf := &tls.Config{}
	if e.cfg.TLS != nil {
		conf = clientTLS(e.cfg.TLS)
	}
	if conf.ServerName == "" {
		conf.ServerName = host
	}
	d := tls.Dialer{Config: conf}
	conn, err := d.DialContext(ctx, "tcp", dest)
	if err != nil {
		return classifyTLS(err, dest)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetReadDeadline(deadline)
	var b [1]byte
	_, err = conn.Read(b[:])
	return classifyTLS(err, dest)
}
