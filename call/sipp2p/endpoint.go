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
	"github.com/reflow-go/reflow/internal/notify"
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
	q     notify.Queue

	closing  chan struct{} // closed when Close starts
	finished chan struct{} // closed when Close has finished
	glare    atomic.Int64  // re-INVITEs answered 491

	mu         sync.Mutex
	state      State
	listeners  map[Transport]netip.AddrPort  // bound addresses
	outUDP     map[netip.Addr]netip.AddrPort // our own UDP sockets for requests when not listening on UDP
	closers    []func() error
	conns      map[*trackedConn]struct{} // accepted TCP/TLS connections
	outgoing   map[outgoing]struct{}     // TCP/TLS destinations of ours (closeOutgoing)
	dialogs    map[string]*dialog        // by Call-ID and local tag
	calls      int                       // admitted calls (Config.MaxCalls)
	unanswered int                       // admitted incoming calls not answered yet (Config.MaxUnanswered)
	stopping   bool                      // Close started: no new requests or calls
	closed     bool                      // Close hung up the calls: nothing is sent any more
	wg         sync.WaitGroup            // every goroutine of ours, request handler and send in progress

	// sends bounds the sends of our own goroutines (BYE, CANCEL, the wait
	// for their responses): it ends once Close hung up the calls, when
	// responses are no longer read, so that Close never waits for a
	// response it drops.
	sends     context.Context
	stopSends context.CancelFunc
	serveWG   sync.WaitGroup // the sockets' serving goroutines

	wrapPC func(net.PacketConn) net.PacketConn // tests: loss injection on UDP sockets
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
	e := &Endpoint{cfg: cfg, uri: u, log: log, agent: cfg.Agent,
		closing: make(chan struct{}), finished: make(chan struct{}),
		listeners: make(map[Transport]netip.AddrPort), outUDP: make(map[netip.Addr]netip.AddrPort),
		conns: make(map[*trackedConn]struct{}), dialogs: make(map[string]*dialog)}
	e.sends, e.stopSends = context.WithCancel(context.Background())
	// sipgo's loggers go to ours, warnings and errors only.
	slog := sipgoLogger(log)
	opts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent(cfg.UserAgent),
		sipgo.WithUserAgentHostname(u.Host),
		// Not sip.WithTransactionLayerTerminateOnConnClose: in sipgo v1.7.2 a
		// connection closing while a client transaction is being set up
		// makes it spin an uninitialised state machine and crash the
		// process; uacLoop watches the connection instead.
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slog),
			sip.WithTransactionLayerUnhandledResponseHandler(e.onStrayResponse)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slog), sip.WithTransportLayerReadFilter(e.readFilter)),
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
	e.ua, e.srv = ua, srv
	addEndpointLogger(log)
	srv.OnInvite(e.handle(e.onInvite))
	srv.OnAck(e.handle(e.onAck))
	srv.OnBye(e.handle(e.onBye))
	srv.OnCancel(e.handle(e.onStrayCancel))
	srv.OnMessage(e.handle(e.onMessage))
	srv.OnOptions(e.handle(e.onOptions))
	srv.OnNoRoute(e.handle(e.onOther))
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

// handle wraps a sipgo request handler so that Close waits for it, and
// refuses requests once the endpoint is closing.
func (e *Endpoint) handle(f func(*sip.Request, sip.ServerTransaction)) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if !e.enterHandler() {
			if !req.IsAck() {
				e.respond(tx, req, 503, nil)
			}
			e.mu.Lock()
			closed := e.closed
			e.mu.Unlock()
			if closed {
				// sipgo read this request before Close and may have opened a
				// socket of its own to answer it after Close cleared its
				// connections: clear them again so that its reader ends.
				e.ua.TransportLayer().Close()
			}
			return
		}
		defer e.wg.Done()
		defer func() {
			// Bad input never crashes the process.
			if r := recover(); r != nil {
				e.log.Warn("SIP request handler panicked", "method", req.Method.String(), "panic", r)
				if !req.IsAck() {
					e.respond(tx, req, 500, nil)
				}
			}
		}()
		f(req, tx)
	}
}

// readFilter drops what arrives once the endpoint has hung up its calls
// on the way to closing: sipgo would otherwise handle it on goroutines of its
// own, and answer it on sockets of its own, after Close.
func (e *Endpoint) readFilter(_ sip.TransportReadProps, data []byte) ([]byte, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, nil
	}
	return data, nil
}

// sendContext returns a context for a send of our own, bounded by d and
// ended when Close stops reading responses.
func (e *Endpoint) sendContext(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(e.sends, d)
}

// enter registers a goroutine Close waits for; false once closing.
func (e *Endpoint) enter() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	return true
}

// enterHandler is enter for a new request: refused once Close started.
func (e *Endpoint) enterHandler() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return false
	}
	e.wg.Add(1)
	return true
}

// sending runs a send through sipgo unless the endpoint is closed; Close
// waits for it before it closes the sockets, so that sipgo never opens a
// socket of its own for a late send.
func (e *Endpoint) sending(f func() error) error {
	if !e.enter() {
		return ErrClosed
	}
	defer e.wg.Done()
	return f()
}

// spawn runs f on a goroutine Close waits for; it reports false (and does
// not run f) once the endpoint is closing.
func (e *Endpoint) spawn(f func()) bool {
	if !e.enter() {
		return false
	}
	go func() {
		defer e.wg.Done()
		defer e.guard("goroutine")
		f()
	}()
	return true
}

// guard keeps a panic on network input from ending the process: it is
// logged and the goroutine ends.
func (e *Endpoint) guard(what string) {
	if r := recover(); r != nil {
		e.log.Warn("sipp2p: recovered panic", "in", what, "panic", r)
	}
}

// State returns the endpoint's state.
func (e *Endpoint) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

// setStateLocked changes the state and reports it; e.mu held.
func (e *Endpoint) setStateLocked(to State, err error) {
	from := e.state
	if from == to {
		return
	}
	e.state = to
	h := e.cfg.Handler
	if to == Terminated {
		// The last event: the queue closes after it (Done).
		if !e.q.Post(func() { h.OnStateChanged(from, to, err); e.q.Close() }) {
			e.q.Close()
		}
		return
	}
	e.q.Post(func() { h.OnStateChanged(from, to, err) })
}

// post queues a handler call.
func (e *Endpoint) post(f func(Handler)) {
	h := e.cfg.Handler
	e.q.Post(func() { f(h) })
}

// Done is closed once the endpoint is closed and its last Handler call has
// returned. Close does not wait for a running Handler call (so a Handler
// may call Close); wait on Done for that.
func (e *Endpoint) Done() <-chan struct{} { return e.q.Done() }

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
	if e.stopping {
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

	bound, err := e.serve(ctx, t, addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	e.mu.Lock()
	e.listeners[t] = bound
	e.setStateLocked(Established, nil)
	e.mu.Unlock()
	return bound, nil
}

// serve binds a socket for transport t at addr and serves it with sipgo on
// a goroutine Close waits for.
func (e *Endpoint) serve(ctx context.Context, t Transport, addr netip.AddrPort) (netip.AddrPort, error) {
	var lc net.ListenConfig
	var bound netip.AddrPort
	var serve func() error
	var closer func() error
	switch t {
	case UDP:
		pc, err := lc.ListenPacket(ctx, "udp", addr.String())
		if err != nil {
			return bound, &ConnectionError{Remote: addr.String(), Err: err}
		}
		bound = pc.LocalAddr().(*net.UDPAddr).AddrPort()
		if e.wrapPC != nil {
			pc = e.wrapPC(pc)
		}
		serve, closer = func() error { return e.srv.ServeUDP(pc) }, pc.Close
	default:
		l, err := lc.Listen(ctx, "tcp", addr.String())
		if err != nil {
			return bound, &ConnectionError{Remote: addr.String(), Err: err}
		}
		bound = l.Addr().(*net.TCPAddr).AddrPort()
		var tl net.Listener = &trackedListener{Listener: l, e: e}
		if t == TLS {
			tl = tls.NewListener(tl, serverTLS(e.cfg.TLS))
			serve = func() error { return e.srv.ServeTLS(tl) }
		} else {
			serve = func() error { return e.srv.ServeTCP(tl) }
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
	e.closers = append(e.closers, closer)
	e.serveWG.Add(1)
	go func() {
		defer e.serveWG.Done()
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
	return bound, nil
}

// udpSource returns the local UDP address requests to dest leave from:
// the UDP listener, else a socket of ours made for dest's local address
// (never one sipgo makes: Close could not wait for its reader).
func (e *Endpoint) udpSource(dest netip.Addr) (netip.AddrPort, error) {
	if a, ok := e.Listening(UDP); ok && !a.Addr().IsUnspecified() {
		return a, nil
	}
	local := netip.IPv4Unspecified()
	if dest.IsValid() {
		// The local address the system routes dest from.
		if c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dest, 9))); err == nil {
			local = c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
			c.Close()
		}
	}
	e.mu.Lock()
	a, ok := e.outUDP[local]
	e.mu.Unlock()
	if ok {
		return a, nil
	}
	bound, err := e.serve(context.Background(), UDP, netip.AddrPortFrom(local, 0))
	if err != nil {
		return bound, err
	}
	e.mu.Lock()
	if prev, ok := e.outUDP[local]; ok {
		bound = prev // a concurrent call made one too; both are closed by Close
	} else {
		e.outUDP[local] = bound
	}
	e.mu.Unlock()
	return bound, nil
}

// advertised returns the host and port for Contact on transport t; port 0
// when not listening on t.
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
// and waits for every goroutine it or sipgo on its behalf started (handler
// calls excepted: see Done). It is idempotent and safe from any goroutine,
// a Handler included.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.stopping {
		e.mu.Unlock()
		<-e.finished
		return nil
	}
	e.stopping = true
	close(e.closing)
	e.setStateLocked(Terminating, nil)
	ds := make([]*dialog, 0, len(e.dialogs))
	for _, d := range e.dialogs {
		ds = append(ds, d)
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range ds {
		if c := d.callRef(); c != nil {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				c.Hangup(ctx)
			})
		}
	}
	wg.Wait()
	e.mu.Lock()
	e.closed = true
	closers := e.closers
	e.closers = nil
	e.mu.Unlock()
	e.stopSends() // responses are dropped from now on (readFilter)
	e.wg.Wait()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	e.srv.Close()
	e.closeOutgoing()
	e.ua.Close()
	e.closeConns()
	e.serveWG.Wait()
	removeEndpointLogger(e.log)
	e.mu.Lock()
	e.setStateLocked(Terminated, nil)
	e.mu.Unlock()
	close(e.finished)
	return errors.Join(errs...)
}

// dialogKey identifies a dialog by the Call-ID and our tag; the remote tag
// is checked against the dialog (RFC 3261 §12).
func dialogKey(callID, localTag string) string { return callID + "\x00" + localTag }

// track registers d and admits it as a call (Config.MaxCalls).
func (e *Endpoint) track(d *dialog) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return ErrClosed
	}
	if e.calls >= e.cfg.MaxCalls || !d.uac && e.unanswered >= e.cfg.MaxUnanswered {
		return ErrTooManyCalls
	}
	e.calls++
	if !d.uac {
		e.unanswered++ // until the INVITE's final response (answered)
	}
	e.dialogs[dialogKey(d.callID, d.localTag)] = d
	return nil
}

// answered releases the admission of an incoming call whose INVITE got its
// final response.
func (e *Endpoint) answered() {
	e.mu.Lock()
	e.unanswered--
	e.mu.Unlock()
}

// untrack forgets d; idempotent.
func (e *Endpoint) untrack(d *dialog) {
	e.mu.Lock()
	k := dialogKey(d.callID, d.localTag)
	if e.dialogs[k] == d {
		delete(e.dialogs, k)
		e.calls--
	}
	e.mu.Unlock()
}

// lookup returns the dialog with callID and our tag local, or nil.
func (e *Endpoint) lookup(callID, local string) *dialog {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dialogs[dialogKey(callID, local)]
}

// pendingInvite reports whether an unanswered incoming INVITE with the same
// Call-ID, From tag and CSeq is being processed (a merged request, RFC 3261
// §8.2.2.2).
func (e *Endpoint) pendingInvite(callID, remoteTag string, seq uint32) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, d := range e.dialogs {
		if !d.uac && d.callID == callID && d.remoteTag == remoteTag && d.initialSeq == seq {
			return true
		}
	}
	return false
}

// onMessage answers a SIP MESSAGE with 200 and reports it.
func (e *Endpoint) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	if e.cfg.Mode == OutboundOnly {
		e.respond(tx, req, 403, nil)
		return
	}
	if !e.validate(req, tx, false) {
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
	e.respond(tx, req, 200, nil)
	e.post(func(h Handler) { h.OnMessage(m) })
}

// onOptions answers OPTIONS with our capabilities (RFC 3261 §11.2).
func (e *Endpoint) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if !e.validate(req, tx, false) {
		return
	}
	accept := sip.NewHeader("Accept", "application/sdp")
	e.respond(tx, req, 200, nil, accept)
}

// onStrayCancel answers a CANCEL matching no INVITE transaction (RFC 3261 §9.2).
func (e *Endpoint) onStrayCancel(req *sip.Request, tx sip.ServerTransaction) {
	e.respond(tx, req, 481, nil)
}

// onOther refuses methods we do not implement (RFC 3261 §8.2.1).
func (e *Endpoint) onOther(req *sip.Request, tx sip.ServerTransaction) {
	e.respond(tx, req, 405, nil)
}
