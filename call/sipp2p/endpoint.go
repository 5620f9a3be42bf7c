package sipp2p

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
)

// Endpoint is a SIP peer-to-peer endpoint: no registrar; it listens where
// told (StartListening), places calls straight to the target's host or
// through an outbound proxy (Call), and hands incoming calls to the call
// agent. All methods are safe for concurrent use.
type Endpoint struct {
	cfg   Config
	uri   sip.Uri
	log   *slog.Logger
	agent *call.Agent
	ua    *sipgo.UserAgent
	srv   *sipgo.Server

	mu        sync.Mutex
	state     State
	listeners map[Transport]netip.AddrPort // bound addresses
	closers   []func() error
	dialogs   map[string]*dialog // by Call-ID
	closed    bool
	glare     atomic.Int64 // re-INVITEs answered 491
	events    []func(Handler)
	running   bool
	wg        sync.WaitGroup
}

// New validates cfg and makes an endpoint in state Idle.
func New(cfg Config) (*Endpoint, error) {
	u, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.TLS != nil && cfg.TLS.NeedMutualTLS && cfg.TLS.Certificate == nil && cfg.Transport == TLS {
		return nil, &TLSError{Reason: LocalCertificateNotFound, Err: fmt.Errorf("%w: NeedMutualTLS without a certificate", ErrInvalidConfig)}
	}
	// sipgo logs at its own levels; only warnings and errors reach our logger.
	slog := log.With("component", "sipgo")
	opts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent(cfg.UserAgent),
		sipgo.WithUserAgentHostname(u.Host),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerTerminateOnConnClose(), sip.WithTransactionLayerLogger(slog)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slog)),
	}
	if cfg.TLS != nil {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(clientTLS(cfg.TLS)))
	}
	ua, err := sipgo.NewUA(opts...)
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog))
	if err != nil {
		ua.Close()
		return nil, err
	}
	e := &Endpoint{cfg: cfg, uri: u, log: log, agent: cfg.Agent, ua: ua, srv: srv,
		listeners: make(map[Transport]netip.AddrPort), dialogs: make(map[string]*dialog)}
	srv.OnInvite(e.onInvite)
	srv.OnAck(e.onAck)
	srv.OnBye(e.onBye)
	srv.OnMessage(e.onMessage)
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		e.respond(tx, req, 200, "OK")
	})
	return e, nil
}

func clientTLS(t *TLSConfig) *tls.Config {
	c := &tls.Config{RootCAs: t.RootCAs, ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.Certificate != nil {
		c.Certificates = []tls.Certificate{*t.Certificate}
	}
	return c
}

func serverTLS(t *TLSConfig) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{*t.Certificate}, MinVersion: tls.VersionTLS12}
	if t.NeedMutualTLS {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = t.RootCAs
	}
	return c
}

// State returns the endpoint's state.
func (e *Endpoint) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

// setState changes the state and reports it; e.mu held.
func (e *Endpoint) setStateLocked(to State, err error) {
	from := e.state
	if from == to {
		return
	}
	e.state = to
	e.emitLocked(func(h Handler) { h.OnStateChanged(from, to, err) })
}

func (e *Endpoint) emitLocked(f func(Handler)) {
	e.events = append(e.events, f)
	if !e.running {
		e.running = true
		e.wg.Add(1)
		go e.dispatch()
	}
}

func (e *Endpoint) dispatch() {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		if len(e.events) == 0 {
			e.running = false
			e.mu.Unlock()
			return
		}
		f := e.events[0]
		e.events = e.events[1:]
		e.mu.Unlock()
		f(e.cfg.Handler)
	}
}

// Listening returns the bound address of the listener of transport t.
func (e *Endpoint) Listening(t Transport) (netip.AddrPort, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, ok := e.listeners[t]
	return a, ok
}

// StartListening listens for requests on transport t at addr and returns
// the bound address. Port 0 picks a free port; the unspecified address
// (0.0.0.0 or ::) listens on all addresses and then needs Config.Advertise.
// TLS needs Config.TLS.Certificate (else a *TLSError with
// LocalCertificateNotFound).
func (e *Endpoint) StartListening(ctx context.Context, t Transport, addr netip.AddrPort) (netip.AddrPort, error) {
	if e.cfg.Mode == OutboundOnly {
		return netip.AddrPort{}, ErrInboundDisabled
	}
	if !t.valid() || !addr.Addr().IsValid() {
		return netip.AddrPort{}, fmt.Errorf("%w: listen on %s %v", ErrInvalidConfig, t, addr)
	}
	if addr.Addr().IsUnspecified() && !e.cfg.Advertise.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("%w: listening on all addresses needs Config.Advertise", ErrInvalidConfig)
	}
	if t == TLS && (e.cfg.TLS == nil || e.cfg.TLS.Certificate == nil) {
		return netip.AddrPort{}, &TLSError{Reason: LocalCertificateNotFound, Err: fmt.Errorf("%w: TLS listener without a certificate", ErrInvalidConfig)}
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return netip.AddrPort{}, ErrClosed
	}
	if _, dup := e.listeners[t]; dup {
		e.mu.Unlock()
		return netip.AddrPort{}, fmt.Errorf("%w: already listening on %s", ErrInvalidConfig, t)
	}
	if e.state == Idle {
		e.setStateLocked(Establishing, nil)
	}
	e.mu.Unlock()

	var lc net.ListenConfig
	var bound netip.AddrPort
	var serve func() error
	var closer func() error
	switch t {
	case UDP:
		pc, err := lc.ListenPacket(ctx, "udp", addr.String())
		if err != nil {
			return netip.AddrPort{}, err
		}
		bound = pc.LocalAddr().(*net.UDPAddr).AddrPort()
		serve, closer = func() error { return e.srv.ServeUDP(pc) }, pc.Close
	default:
		l, err := lc.Listen(ctx, "tcp", addr.String())
		if err != nil {
			return netip.AddrPort{}, err
		}
		bound = l.Addr().(*net.TCPAddr).AddrPort()
		if t == TLS {
			l = tls.NewListener(l, serverTLS(e.cfg.TLS))
			serve = func() error { return e.srv.ServeTLS(l) }
		} else {
			serve = func() error { return e.srv.ServeTCP(l) }
		}
		closer = l.Close
	}
	bound = netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		closer()
		return netip.AddrPort{}, ErrClosed
	}
	e.listeners[t] = bound
	e.closers = append(e.closers, closer)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := serve(); err != nil && !errors.Is(err, net.ErrClosed) {
			e.log.Debug("listener ended", "transport", t, "err", err)
		}
	}()
	e.mu.Unlock()
	if t == UDP && !bound.Addr().IsUnspecified() {
		// sipgo registers the socket on its serving goroutine; requests sent
		// from it (symmetric UDP) need it registered.
		deadline := time.Now().Add(time.Second)
		for {
			if c, _ := e.ua.TransportLayer().GetConnection("udp", bound.String()); c != nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond) // bounded wait for sipgo's goroutine
		}
	}
	e.mu.Lock()
	e.setStateLocked(Established, nil)
	e.mu.Unlock()
	return bound, nil
}

// advertised returns the host and port for Contact on transport t; port 0
// when not listening on t (sipgo then uses the connection's port).
func (e *Endpoint) advertised(t Transport) (string, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	host := ""
	if e.cfg.Advertise.IsValid() {
		host = e.cfg.Advertise.String()
	}
	if a, ok := e.listeners[t]; ok {
		if host == "" {
			host = a.Addr().String()
		}
		return host, int(a.Port())
	}
	return host, 0
}

// Close hangs up the endpoint's calls, stops its listeners and transports
// and waits for its goroutines. It is idempotent.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.wg.Wait()
		return nil
	}
	e.closed = true
	e.setStateLocked(Terminating, nil)
	ds := make([]*dialog, 0, len(e.dialogs))
	for _, d := range e.dialogs {
		ds = append(ds, d)
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range ds {
		if c := d.call(); c != nil {
			wg.Go(func() { c.Hangup(context.Background()) })
		}
	}
	wg.Wait()
	e.mu.Lock()
	closers := e.closers
	e.closers = nil
	e.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	e.srv.Close()
	e.ua.Close()
	e.mu.Lock()
	e.setStateLocked(Terminated, nil)
	e.mu.Unlock()
	e.wg.Wait()
	return errors.Join(errs...)
}

// track registers d under its Call-ID.
func (e *Endpoint) track(d *dialog) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	e.dialogs[d.callID] = d
	return nil
}

func (e *Endpoint) untrack(d *dialog) {
	e.mu.Lock()
	if e.dialogs[d.callID] == d {
		delete(e.dialogs, d.callID)
	}
	e.mu.Unlock()
}

func (e *Endpoint) lookup(callID string) *dialog {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dialogs[callID]
}

// spawn runs f on a goroutine Close waits for.
func (e *Endpoint) spawn(f func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
}

func (e *Endpoint) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string) {
	if err := tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil)); err != nil {
		e.log.Debug("respond", "code", code, "err", err)
	}
}

// onMessage answers a SIP MESSAGE with 200 and reports it.
func (e *Endpoint) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	if e.cfg.Mode == OutboundOnly {
		e.respond(tx, req, 403, "Forbidden")
		return
	}
	m := Message{Body: append([]byte(nil), req.Body()...)}
	if f := req.From(); f != nil {
		m.From = f.Address.String()
	}
	if t := req.To(); t != nil {
		m.To = t.Address.String()
	}
	if ct := req.ContentType(); ct != nil {
		m.ContentType = ct.Value()
	}
	e.respond(tx, req, 200, "OK")
	e.mu.Lock()
	e.emitLocked(func(h Handler) { h.OnMessage(m) })
	e.mu.Unlock()
}
