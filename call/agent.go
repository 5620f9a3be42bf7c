package call

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/notify"
	"github.com/reflow-go/reflow/srtp"
)

// Agent is the call core: it makes calls for signalling bindings, owns them
// until they end and reports their events to the Handler. An application
// normally makes one and gives it to each binding. All methods are safe for
// concurrent use.
type Agent struct {
	cfg Config
	log *slog.Logger

	events notify.Queue // handler calls

	mu     sync.Mutex
	calls  map[string]*Call
	closed bool
}

// New validates cfg and returns an Agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Manager == nil {
		return nil, fmt.Errorf("%w: Manager is required", ErrInvalidConfig)
	}
	m, err := cfg.Media.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.Media = m
	if cfg.Handler == nil {
		cfg.Handler = HandlerFuncs{}
	}
	if cfg.SetupTimeout <= 0 {
		cfg.SetupTimeout = 10 * time.Second
	}
	if cfg.HangupTimeout <= 0 {
		cfg.HangupTimeout = 2 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, log: log, calls: make(map[string]*Call)}, nil
}

// MediaConfig returns the agent's default media configuration, defaults filled in.
func (a *Agent) MediaConfig() MediaConfig { return a.cfg.Media }

func (a *Agent) newCall(dir Direction, sig Signaling, p Params) (*Call, error) {
	if sig == nil {
		return nil, fmt.Errorf("%w: nil Signaling", ErrInvalidConfig)
	}
	cfg := a.cfg.Media
	if p.Media != nil {
		var err error
		if cfg, err = p.Media.withDefaults(); err != nil {
			return nil, err
		}
	}
	if p.ID == "" {
		p.ID = uuid.NewString()
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	c := &Call{
		a: a, id: p.ID, dir: dir, remote: p.Remote, sig: sig, cfg: cfg, log: a.log,
		done: make(chan struct{}), ended: make(chan struct{}), keys: make(map[srtp.Suite]srtp.Keys),
		sessID: binary.BigEndian.Uint64(b[:]) >> 2, version: 0, delayed: p.DelayedOffer,
	}
	if cfg.ICE {
		var err error
		if c.ice, err = newICECredentials(); err != nil {
			return nil, fmt.Errorf("ICE credentials: %w", err)
		}
	}
	c.state = Offering
	if dir == Inbound {
		c.state = Incoming
	}
	register := func() error {
		if a.closed {
			return ErrClosed
		}
		if _, dup := a.calls[p.ID]; dup {
			return fmt.Errorf("%w: call %q exists", ErrInvalidConfig, p.ID)
		}
		return nil
	}
	a.mu.Lock()
	err := register()
	a.mu.Unlock()
	if err != nil {
		return nil, err
	}
	md, err := OpenMedia(a.cfg.Manager, cfg, a.cfg.SetupTimeout, c.onMediaError)
	if err != nil {
		return nil, Reason{Kind: MediaFailed, Code: 500, Text: "opening the media stream", Err: err}
	}
	c.mu.Lock()
	c.media = md
	c.mu.Unlock()
	// The call is registered with its media, so that Close (which ends the
	// registered calls) never misses a stream being opened.
	a.mu.Lock()
	if err = register(); err == nil {
		a.calls[p.ID] = c
	}
	a.mu.Unlock()
	if err != nil {
		md.Close()
		return nil, err
	}
	return c, nil
}

// Dial places an outgoing call through sig: it opens the media stream,
// waits until it is ready (bounded by ctx), and sends the offer. It returns
// once the binding's SendOffer returned; the call is then Offering (or
// already further). A failure ends the call and is returned as a Reason.
//
// With p.DelayedOffer the call request carries no offer: SendOffer gets a
// nil one and the peer's offer, in its answer, goes to Call.RemoteOffer.
func (a *Agent) Dial(ctx context.Context, sig Signaling, p Params) (*Call, error) {
	c, err := a.newCall(Outbound, sig, p)
	if err != nil {
		return nil, err
	}
	md := c.Media()
	if !c.trickleOffer() { // a trickle offer goes at once (ice_trickle.go)
		if err := md.Wait(ctx); err != nil {
			r := Reason{Kind: MediaFailed, Text: "media stream not ready", Err: err}
			c.terminate(r, false)
			return nil, r
		}
	}
	if p.DelayedOffer {
		c.mu.Lock()
		c.awaitOffer = c.live()
		c.mu.Unlock()
		if err := sig.SendOffer(ctx, nil); err != nil {
			return nil, c.sendFailed(err, "sending the call request")
		}
		return c, nil
	}
	c.mu.Lock()
	pd, offer, err := c.ourOffer(md)
	if err == nil && c.live() {
		c.offer = pd
	}
	c.mu.Unlock()
	if err != nil {
		r := Reason{Kind: MediaFailed, Err: err}
		c.terminate(r, false)
		return nil, r
	}
	if err := sig.SendOffer(ctx, offer); err != nil {
		return nil, c.sendFailed(err, "sending the offer")
	}
	c.trickle(md, pd.line)
	return c, nil
}

// Incoming makes a call for an incoming offer from the peer and reports it
// to Handler.OnIncoming. An offer that cannot be parsed or accepted is
// refused with a Reason (Malformed 400, NotAcceptable 488) and no call is
// made; the binding sends the refusal. The offer decides the call's media
// shape within what the configuration accepts (MediaConfig.Accept,
// SecurityRequired, NoICE): its protection, rtcp-mux (and with BUNDLE), and
// ICE; the call's stream is made for it and its answer follows it.
//
// A nil offer makes a call whose initial exchange runs the other way round (delayed offer, RFC 3261 §13.3.1, RFC 3264 §5): its stream is
// made from the configuration as for Dial, Accept makes an offer exactly as
// Dial does (DTLS actpass and fingerprint, SDES keys, ICE credentials and
// candidates as configured) and sends it with SendAnswer, and the peer's
// answer comes through Call.RemoteAnswer. An empty offer that is not nil is
// malformed, as any offer that does not parse.
func (a *Agent) Incoming(ctx context.Context, sig Signaling, p Params, offer []byte) (*Call, error) {
	p.DelayedOffer = offer == nil
	if p.DelayedOffer {
		c, err := a.newCall(Inbound, sig, p)
		if err != nil {
			return nil, err
		}
		a.emit(func(h Handler) { h.OnIncoming(c) })
		return c, nil
	}
	cfg := a.cfg.Media
	if p.Media != nil {
		var err error
		if cfg, err = p.Media.withDefaults(); err != nil {
			return nil, err
		}
	}
	d, err := sdpx.Parse(offer)
	if err != nil {
		return nil, Reason{Kind: Malformed, Code: 400, Text: "offer", Err: err}
	}
	pl, err := planOffer(d, cfg, nil)
	if err != nil {
		return nil, err
	}
	// The offer decides the call's media: its protection, rtcp-mux and ICE.
	shaped := cfg.answering(pl)
	p.Media = &shaped
	c, err := a.newCall(Inbound, sig, p)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.inOffer = d
	c.mu.Unlock()
	a.emit(func(h Handler) { h.OnIncoming(c) })
	return c, nil
}

// Call returns the live call with id, or nil.
func (a *Agent) Call(id string) *Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[id]
}

// Calls returns the live calls.
func (a *Agent) Calls() []*Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*Call, 0, len(a.calls))
	for _, c := range a.calls {
		out = append(out, c)
	}
	return out
}

func (a *Agent) forget(c *Call) {
	a.mu.Lock()
	if a.calls[c.id] == c {
		delete(a.calls, c.id)
	}
	a.mu.Unlock()
}

// emit queues a handler call; they are made one at a time, in order, on a
// goroutine of the queue, never with a lock held. It never blocks; after the
// agent's queue stopped (Close) the call is dropped.
func (a *Agent) emit(f func(Handler)) {
	a.events.Post(func() { f(a.cfg.Handler) })
}

// Close hangs up every call (sending the hangups), refuses new calls and
// returns once every call has ended and its media is closed. It is
// idempotent and safe from any goroutine, a Handler included: it never waits
// for a running handler call. The handler calls queued before Close returns
// (the calls' Terminated states among them) are still made, in order; none
// after. Done tells when the last one has returned.
func (a *Agent) Close() error {
	a.mu.Lock()
	a.closed = true
	calls := make([]*Call, 0, len(a.calls))
	for _, c := range a.calls {
		calls = append(calls, c)
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() { c.terminate(Reason{Kind: LocalHangup, Text: "agent closed"}, true) })
	}
	wg.Wait()
	// A call ended concurrently (by the peer, or a media failure) may still
	// be finishing on another goroutine: wait until it has.
	for _, c := range calls {
		<-c.ended
	}
	// Stop the handler queue after what is queued now: the Terminated states
	// above are delivered, later events are not.
	if !a.events.Post(a.events.Close) {
		a.events.Close()
	}
	return nil
}

// Done is closed once the agent is closed and its last handler call has
// returned.
func (a *Agent) Done() <-chan struct{} { return a.events.Done() }
