package sipp2p

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/reflow-go/reflow/call"
)

// Call places a call to target (a SIP URI such as
// "sip:bob@192.0.2.7:5060;transport=tcp"), with media from the agent's
// configuration or media when not nil. It returns once the peer has
// answered the INVITE with a first response (100 Trying or later); the
// call then rings and becomes Active or Terminated as the peer decides,
// reported to the agent's Handler. Transport failures are returned as
// errors inside the call.Reason: a *TLSError for TLS failures, a
// *ConnectionError for the rest.
func (e *Endpoint) Call(ctx context.Context, target string, media *call.MediaConfig) (*call.Call, error) {
	return e.CallWith(ctx, target, CallOptions{Media: media})
}

// CallOptions are the options of one outgoing call.
type CallOptions struct {
	// Media overrides the agent's media configuration when not nil.
	Media *call.MediaConfig
	// DelayedOffer sends the INVITE without SDP (RFC 3261 §13.2.1): the
	// peer offers in its 2xx, the offer decides the call's protection and
	// rtcp-mux (as for an incoming call), and our answer goes in the ACK.
	// A 2xx without an offer, or with one we cannot accept, is acknowledged
	// with every m= line rejected and the call ends with a BYE; its Reason
	// says why (NotAcceptable 488 "no offer ...", or the offer's refusal).
	DelayedOffer bool
}

// CallWith places a call to target as Call does, with options.
func (e *Endpoint) CallWith(ctx context.Context, target string, o CallOptions) (*call.Call, error) {
	if e.cfg.Mode == InboundOnly {
		return nil, ErrOutboundDisabled
	}
	req, t, err := e.newRequest(sip.INVITE, target)
	if err != nil {
		return nil, err
	}
	if err := e.begin(); err != nil {
		return nil, err
	}
	callID := uuid.NewString()
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	from := req.From()
	tag, _ := from.Params.Get("tag")
	d := &dialog{e: e, callID: callID, t: t, uac: true, localTag: tag, local: from.Address, remote: req.To().Address,
		target: *req.Recipient.Clone(), localSeq: rand.Uint32N(1 << 30), invReq: req,
		first: make(chan struct{}), stop: make(chan struct{}), waitDone: make(chan struct{})}
	d.initialSeq = d.localSeq
	req.AppendHeader(&sip.CSeqHeader{SeqNo: d.localSeq, MethodName: sip.INVITE})
	if d.client, d.contact, err = e.clientFor(t, req.Destination()); err != nil {
		return nil, err
	}
	e.addCommon(req)
	if err := e.track(d); err != nil {
		return nil, err
	}
	d.offerless = o.DelayedOffer
	if o.DelayedOffer {
		d.ackSent = make(chan struct{})
	}
	c, err := e.agent.Dial(ctx, d, call.Params{ID: callID, Remote: call.Party{URI: target}, Media: o.Media, DelayedOffer: o.DelayedOffer})
	if err != nil {
		e.untrack(d)
		return nil, err
	}
	d.mu.Lock()
	d.c = c
	d.mu.Unlock()
	if !e.spawn(func() { d.watch(c) }) {
		c.Hangup(context.Background())
		return nil, ErrClosed
	}
	return c, nil
}

// begin moves an idle endpoint (outbound-only, not listening) to Established.
func (e *Endpoint) begin() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return ErrClosed
	}
	if e.state == Idle {
		e.setStateLocked(Establishing, nil)
		e.setStateLocked(Established, nil)
	}
	return nil
}

// SendOffer sends the initial INVITE or a re-INVITE.
func (d *dialog) SendOffer(ctx context.Context, offer []byte) error {
	d.mu.Lock()
	initial := d.uac && !d.inviteSent
	d.inviteSent = true
	confirmed := d.confirmed
	d.mu.Unlock()
	if initial {
		return d.invite(ctx, offer)
	}
	if er := d.takeEmptyReinvite(); er != nil {
		return d.offerIn2xx(er, offer)
	}
	if !confirmed {
		return call.Reason{Kind: call.Glare, Code: 491, Text: phrase(491)}
	}
	return d.reinvite(ctx, offer)
}

// invite sends the initial INVITE and returns at the first response.
func (d *dialog) invite(ctx context.Context, offer []byte) error {
	err := d.e.sending(func() error { return d.sendInvite(ctx, offer) })
	if errors.Is(err, ErrClosed) {
		d.closeWait()
	}
	return err
}

// closeWait marks the INVITE transaction over when it never started.
func (d *dialog) closeWait() {
	select {
	case <-d.waitDone:
	default:
		close(d.waitDone)
	}
}

func (d *dialog) sendInvite(ctx context.Context, offer []byte) error {
	req := d.invReq
	if err := d.setContact(ctx, req); err != nil {
		close(d.waitDone)
		return err
	}
	req.SetBody(offer)
	if len(offer) > 0 {
		ct := sip.ContentTypeHeader("application/sdp")
		req.AppendHeader(&ct)
	}
	// The caller's ctx bounds the connection set-up and the wait for a first
	// response, not the call.
	tx, err := d.client.TransactionRequest(ctx, req)
	if err != nil {
		close(d.waitDone)
		return d.e.transportError(ctx, d.t, req, err)
	}
	if ctx2, ok := tx.(*sip.ClientTx); ok {
		// 2xx retransmissions within the transaction (RFC 6026 Accepted state).
		ctx2.OnRetransmission(d.reack)
	}
	d.e.wg.Add(1) // within sending: the endpoint is not closed
	go func() {
		defer d.e.wg.Done()
		defer d.e.guard("INVITE")
		d.uacLoop(tx)
	}()
	select {
	case <-d.first:
		d.mu.Lock()
		err := d.firstErr
		d.mu.Unlock()
		if err != nil {
			return d.e.transportError(ctx, d.t, req, err)
		}
		return nil
	case <-ctx.Done():
		d.stopOnce.Do(func() { close(d.stop) })
		return ctx.Err()
	}
}

// setContact adds our Contact to the initial INVITE. When not listening on
// its transport the Contact is our end of the connection the INVITE goes
// over, which the peer reuses for its requests: the connection is made now
// (bounded by ctx) and kept by sipgo's pool.
func (d *dialog) setContact(ctx context.Context, req *sip.Request) error {
	if d.t != UDP && d.contact.Address.Port == 0 {
		probe := req.Clone()
		if err := sipgo.ClientRequestBuild(d.client, probe); err != nil {
			return err
		}
		conn, err := d.e.ua.TransportLayer().ClientRequestConnection(ctx, probe)
		if err != nil {
			return d.e.transportError(ctx, d.t, req, err)
		}
		if la, err := netip.ParseAddrPort(conn.LocalAddr().String()); err == nil {
			d.contact.Address.Host = la.Addr().Unmap().String()
			d.contact.Address.Port = int(la.Port())
		}
		conn.TryClose()
	}
	ct := d.contact
	req.AppendHeader(&ct)
	return nil
}

// uacLoop follows the initial INVITE's transaction: provisional responses,
// the final response, our CANCEL, the answer timeout.
func (d *dialog) uacLoop(tx sip.ClientTransaction) {
	defer close(d.waitDone)
	defer tx.Terminate()
	e := d.e
	answer := time.NewTimer(e.cfg.AnswerTimeout)
	defer answer.Stop()
	stop := d.stop
	var canceled <-chan time.Time // bound on the wait for the final response after CANCEL
	reason := call.Reason{Kind: call.LocalHangup}
	cancelInvite := func() {
		stop = nil
		d.mu.Lock()
		responded := d.responded
		d.mu.Unlock()
		if !responded {
			// RFC 3261 §9.1: no CANCEL before a provisional response; nothing
			// reached the peer we know of: give up the transaction.
			if c := d.callRef(); !d.markFirst(context.Canceled) && c != nil {
				c.RemoteHangup(reason)
			}
			tx.Terminate()
			return
		}
		d.sendCancel()
		ct := time.NewTimer(64 * e.cfg.T1)
		canceled = ct.C
	}
	// Over TCP and TLS a connection the peer closes ends the INVITE at once
	// (a TLS 1.3 server refuses our certificate that way) rather than after
	// Timer B.
	var connCheck <-chan time.Time
	var conn sip.Connection
	if ct, ok := tx.(*sip.ClientTx); ok && d.t != UDP {
		conn = ct.Connection()
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		connCheck = tk.C
	}
	fail := func(err error) {
		if c := d.callRef(); !d.markFirst(err) && c != nil {
			r := call.Reason{Kind: call.SignalingFailed, Text: "INVITE failed", Err: e.transportError(context.Background(), d.t, d.invReq, err)}
			if errors.Is(err, sip.ErrTransactionTimeout) {
				r = call.Reason{Kind: call.Unavailable, Code: 408, Text: phrase(408), Err: err}
			}
			c.RemoteHangup(r)
		}
	}
	for {
		select {
		case res := <-tx.Responses():
			if d.onResponse(res, stop == nil) {
				return
			}
		case <-connCheck:
			if conn != nil && conn.Ref(0) <= 0 {
				fail(errConnClosed)
				return
			}
		case <-tx.Done():
			err := tx.Err()
			if c := d.callRef(); !d.markFirst(err) && c != nil {
				r := call.Reason{Kind: call.SignalingFailed, Text: "INVITE failed", Err: e.transportError(context.Background(), d.t, d.invReq, err)}
				if errors.Is(err, sip.ErrTransactionTimeout) {
					r = call.Reason{Kind: call.Unavailable, Code: 408, Text: phrase(408), Err: err}
				}
				c.RemoteHangup(r)
			}
			return
		case <-stop:
			cancelInvite()
			if canceled == nil {
				return
			}
		case <-answer.C:
			reason = call.Reason{Kind: call.Unavailable, Code: 408, Text: "no answer"}
			if c := d.callRef(); c != nil {
				c.RemoteHangup(reason)
			}
			if stop != nil {
				cancelInvite()
				if canceled == nil {
					return
				}
			}
		case <-canceled:
			if c := d.callRef(); c != nil {
				c.RemoteHangup(reason)
			}
			return
		case <-e.closing:
			if stop != nil {
				d.sendCancel()
			}
			return
		}
	}
}

// onResponse handles a response to the initial INVITE and reports whether
// it was final. ending is set once we have asked to cancel.
func (d *dialog) onResponse(res *sip.Response, ending bool) bool {
	if res.To() == nil || res.CSeq() == nil {
		return false // not a response we can use; sipgo matched it by Via
	}
	d.mu.Lock()
	d.responded = true
	d.mu.Unlock()
	d.markFirst(nil)
	rtag, _ := res.To().Params.Get("tag")
	switch {
	case res.IsProvisional():
		if rtag != "" {
			d.mu.Lock()
			if !d.confirmed {
				d.remoteTag = rtag // early dialog
			}
			d.mu.Unlock()
		}
		if (res.StatusCode == 180 || res.StatusCode == 183) && !ending {
			if c := d.callRef(); c != nil {
				c.RemoteRinging()
			}
		}
		return false
	case res.IsSuccess():
		d.mu.Lock()
		d.remoteTag = rtag
		d.confirmed = true
		d.routes = routeSet(res, true)
		d.mu.Unlock()
		d.refreshTarget(res) // a 2xx without Contact keeps the Request-URI as target
		if d.offerless {
			d.delayedAnswer(res, ending)
			return true
		}
		d.sendAck(res.CSeq().SeqNo, nil)
		c := d.callRef()
		if ending || c == nil || errors.Is(c.RemoteAnswer(res.Body()), call.ErrState) {
			// The call ended while the 2xx was on its way: end the dialog.
			d.byeAsync()
		}
		return true
	default:
		if c := d.callRef(); c != nil {
			c.RemoteReject(reasonFor(res))
		}
		d.e.untrack(d)
		return true
	}
}

// delayedAnswer handles the 2xx to our INVITE without an offer: its offer
// goes to the call, whose answer the ACK carries. A 2xx without an offer,
// or with one the call refuses (the call has then ended), is acknowledged
// with an answer rejecting every offered line and the dialog ends with a
// BYE (RFC 3261 §13.2.2.4); so is one that arrives after we hung up.
func (d *dialog) delayedAnswer(res *sip.Response, ending bool) {
	defer close(d.ackSent)
	seq := res.CSeq().SeqNo
	var offer []byte
	if len(res.Body()) > 0 && isSDP(res) {
		offer = res.Body()
	}
	c := d.callRef()
	if ending || c == nil {
		d.sendAck(seq, rejectingAnswer(offer))
		d.byeAsync()
		return
	}
	filtered, rejected := filterOffer(offer)
	if len(offer) == 0 {
		filtered = nil
	}
	ctx, cancel := d.e.sendContext(64 * d.e.cfg.T1)
	answer, err := c.RemoteOffer(ctx, filtered)
	cancel()
	if err != nil {
		d.e.log.Debug("offer in 2xx refused", "call", d.callID, "err", err)
		d.sendAck(seq, rejectingAnswer(offer))
		d.byeAsync()
		return
	}
	d.sendAck(seq, restoreAnswer(answer, rejected))
}

// sendCancel sends CANCEL for the initial INVITE (RFC 3261 §9.1): same
// Request-URI, Call-ID, From, To, CSeq number, Route and top Via.
func (d *dialog) sendCancel() {
	inv := d.invReq
	req := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	if via := inv.Via(); via != nil {
		req.AppendHeader(via.Clone())
	}
	for _, h := range inv.GetHeaders("Route") {
		req.AppendHeader(sip.HeaderClone(h))
	}
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.HeaderClone(inv.From()))
	req.AppendHeader(sip.HeaderClone(inv.To()))
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	d.e.addCommon(req)
	req.SetTransport(inv.Transport())
	req.SetDestination(inv.Destination())
	req.SetBody(nil)
	ctx, cancel := d.e.sendContext(64 * d.e.cfg.T1)
	defer cancel()
	if err := d.e.sending(func() error {
		_, err := d.client.Do(ctx, req, sipgo.ClientRequestBuild)
		return err
	}); err != nil {
		d.e.log.Debug("CANCEL", "call", d.callID, "err", err)
	}
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
	e.addCommon(req)
	client, _, err := e.clientFor(t, req.Destination())
	if err != nil {
		return err
	}
	var res *sip.Response
	if err := e.sending(func() (err error) {
		res, err = client.Do(ctx, req)
		return err
	}); err != nil {
		return e.transportError(ctx, t, req, err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("%w: %d %s", ErrRejected, res.StatusCode, oneLine(res.Reason))
	}
	return nil
}

// clientFor returns a sipgo client and our Contact for requests on
// transport t to dest (host:port): over UDP requests leave from a socket
// of ours (the listener when there is one), so that the peer's requests
// come back to it and Close can stop its reader.
func (e *Endpoint) clientFor(t Transport, dest string) (*sipgo.Client, sip.ContactHeader, error) {
	e.noteOutgoing(t, dest)
	host, port := e.advertised(t)
	opts := []sipgo.ClientOption{sipgo.WithClientLogger(sipgoLogger(e.log))}
	if t == UDP {
		var da netip.Addr
		if ap, err := netip.ParseAddrPort(dest); err == nil {
			da = ap.Addr().Unmap()
		} else if h, _, err := net.SplitHostPort(dest); err == nil {
			da, _ = netip.ParseAddr(h)
		}
		src, err := e.udpSource(da)
		if err != nil {
			return nil, sip.ContactHeader{}, err
		}
		opts = append(opts, sipgo.WithClientConnectionAddr(src.String()))
		if host == "" {
			host = src.Addr().String()
		}
		port = int(src.Port())
	}
	if host == "" {
		// Not listening on t: our address toward dest; the peer reuses our
		// connection for its requests.
		if h, _, err := net.SplitHostPort(dest); err == nil {
			if a, err := netip.ParseAddr(h); err == nil {
				if c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 9))); err == nil {
					host = c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap().String()
					c.Close()
				}
			}
		}
	}
	if host != "" {
		opts = append(opts, sipgo.WithClientHostname(host))
	}
	client, err := sipgo.NewClient(e.ua, opts...)
	if err != nil {
		return nil, sip.ContactHeader{}, err
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: e.uri.User, Host: host, Port: port}}
	if t != UDP {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", string(t))
	}
	return client, contact, nil
}

// newRequest builds an out-of-dialog request to target, choosing the
// transport (the target's transport parameter, sips:, else the default;
// with an outbound proxy only an explicit TLS overrides the default) and the
// destination (the outbound proxy, else the target's host).
func (e *Endpoint) newRequest(method sip.RequestMethod, target string) (*sip.Request, Transport, error) {
	var u sip.Uri
	if err := sip.ParseUri(target, &u); err != nil {
		return nil, "", fmt.Errorf("%w: target %q: %s", ErrInvalidConfig, target, rootText(err))
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
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	if e.cfg.OutboundProxy.IsValid() {
		req.SetDestination(e.cfg.OutboundProxy.String())
	}
	return req, t, nil
}

// transportError classifies a failure to send req: TLS failures become a
// *TLSError, everything else a *ConnectionError. A TLS connection the peer
// closed without answering is probed once (at most a second) to read the
// alert that tells whether our certificate was refused: with TLS 1.3 that
// alert arrives after our side of the handshake has already succeeded.
func (e *Endpoint) transportError(ctx context.Context, t Transport, req *sip.Request, err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var te *TLSError
	var ce *ConnectionError
	if errors.As(err, &te) || errors.As(err, &ce) {
		return err
	}
	dest := req.Destination()
	if errors.Is(err, sip.ErrTransactionTimeout) {
		return &ConnectionError{Remote: dest, Err: ErrTimeout}
	}
	if t != TLS || isDialError(err) {
		return &ConnectionError{Remote: dest, Err: err}
	}
	if te := classifyTLS(err, dest); te != nil {
		return te
	}
	if te := e.probeTLS(ctx, dest, req.Recipient.Host); te != nil {
		return te
	}
	return &TLSError{Reason: OtherTLSFailure, Remote: dest, Err: err}
}

// isDialError reports whether err is a failure to open the TCP connection
// (refused, unreachable, timed out): not a TLS failure.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
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
