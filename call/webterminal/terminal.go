package webterminal

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/reflow-go/reflow/call"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
	"github.com/reflow-go/reflow/internal/notify"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// Defaults of Config.
const (
	// DefaultReconnectMin is the first re-registration delay after a lost stream.
	DefaultReconnectMin = 50 * time.Millisecond
	// DefaultReconnectMax caps the re-registration delay, which doubles after
	// each failed attempt.
	DefaultReconnectMax = 5 * time.Second
	// DefaultCloseTimeout bounds how long Close waits for its Byes to leave.
	DefaultCloseTimeout = time.Second
)

// metadataRegistered is the header the Core sends once a stream is
// registered; the terminal waits for it before it calls itself registered.
const metadataRegistered = "x-webterminal-registered"

// Config describes a terminal. Zero fields take the documented defaults.
type Config struct {
	// Target is the core's address, host:port or any gRPC target. Required.
	Target string
	// MSISDN is the subscriber this terminal serves; it is sent in the stream's
	// metadata (MetadataMSISDN) so the core can route calls to it. Required.
	MSISDN string
	// Mode selects Pipe (the zero value: one call at a time) or MultiPipe.
	Mode Mode
	// TLS, when not nil, secures the connection with TLS; set Certificates for
	// mutual TLS. Nil means plaintext (loopback and tests only).
	TLS *tls.Config
	// DialOptions are added to the gRPC client's options (keepalive, ...).
	DialOptions []grpc.DialOption
	// Agent is the call core the terminal's calls run on: each call is a
	// call.Call of it, reported by its call.Handler (OnIncoming for an
	// incoming Offer, OnState, OnMedia). Required. The terminal does not own
	// it: close the agent after the terminal.
	Agent *call.Agent
	// Media is the media configuration of the terminal's calls; nil means
	// the agent's (Agent.MediaConfig) with ICE and RTCPMux on: the terminal
	// is the WebRTC side, so its SDP says a=ice-lite and carries
	// a=ice-ufrag/a=ice-pwd and our candidates (RFC 8839), and its streams
	// answer the core's connectivity checks and follow its nomination
	// (WebRTC cores send no media before); WebRTC requires rtcp-mux.
	Media *call.MediaConfig
	// Handler receives the terminal's own events (registration, status,
	// protocol errors, messages); nil means HandlerFuncs{}.
	Handler Handler
	// ReconnectMin and ReconnectMax bound the re-registration backoff; zero
	// means DefaultReconnectMin and DefaultReconnectMax.
	ReconnectMin, ReconnectMax time.Duration
	// Logger receives log records; nil discards them.
	Logger *slog.Logger
}

// Terminal is the client side of the API: it keeps a registration stream
// (Pipe or MultiPipe) open with the core, re-registering with backoff when it
// is lost, and carries calls over it. All methods are safe for concurrent use.
type Terminal struct {
	cfg    Config
	agent  *call.Agent
	media  call.MediaConfig
	log    *slog.Logger
	conn   *grpc.ClientConn
	client pb.WebTerminalClient

	ctx    context.Context
	cancel context.CancelFunc
	events notify.Queue   // Handler calls
	wg     sync.WaitGroup // the loop and the stream writers

	mu         sync.Mutex
	sess       *session
	closed     bool
	registered chan struct{} // closed at the first registration
	observed   map[string]Status
	released   chan struct{} // closed when Close has released everything
	closeErr   error
}

// session is one registration stream.
type session struct {
	stream grpc.BidiStreamingClient[pb.WebTerminalMessage, pb.WebTerminalMessage]
	ctx    context.Context
	cancel context.CancelFunc
	out    *outbox
	calls  map[string]*signal // by call_id; guarded by Terminal.mu; at most one live on Pipe
	done   chan struct{}
}

// Dial creates a terminal and returns once it is registered with the core
// (the core acknowledged the stream), retrying with backoff until ctx ends.
func Dial(ctx context.Context, cfg Config) (*Terminal, error) {
	if cfg.Target == "" || cfg.MSISDN == "" || cfg.Agent == nil {
		return nil, fmt.Errorf("%w: Target, MSISDN and Agent are required", ErrInvalidConfig)
	}
	media := cfg.Agent.MediaConfig()
	media.ICE, media.RTCPMux = true, true // WebRTC: ICE-lite, rtcp-mux (RFC 8829 §5.1.3)
	if cfg.Media != nil {
		media = *cfg.Media
	}
	if cfg.Mode != Pipe && cfg.Mode != MultiPipe {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, cfg.Mode)
	}
	if cfg.Handler == nil {
		cfg.Handler = HandlerFuncs{}
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = DefaultReconnectMin
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = DefaultReconnectMax
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = cfg.ReconnectMin
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, cfg.DialOptions...)
	conn, err := grpc.NewClient(cfg.Target, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	t := &Terminal{
		cfg: cfg, agent: cfg.Agent, media: media, log: log.With("msisdn", cfg.MSISDN, "mode", cfg.Mode.String()),
		conn: conn, client: pb.NewWebTerminalClient(conn),
		registered: make(chan struct{}), observed: map[string]Status{}, released: make(chan struct{}),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.loop()
	select {
	case <-t.registered:
		return t, nil
	case <-ctx.Done():
		t.Close()
		return nil, fmt.Errorf("webterminal: registering with %s: %w", cfg.Target, ctx.Err())
	}
}

// MSISDN returns the subscriber this terminal serves.
func (t *Terminal) MSISDN() string { return t.cfg.MSISDN }

// Mode returns how the terminal registers.
func (t *Terminal) Mode() Mode { return t.cfg.Mode }

// Registered reports whether a registration stream is open now.
func (t *Terminal) Registered() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sess != nil
}

// Done is closed once the terminal is closed and its last Handler call has
// returned.
func (t *Terminal) Done() <-chan struct{} { return t.events.Done() }

// Observed returns the InCall statuses currently known (InCall received and
// no Idle yet), sorted by call ID.
func (t *Terminal) Observed() []Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Status, 0, len(t.observed))
	for _, s := range t.observed {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CallID < out[j].CallID })
	return out
}

// Agent returns the call core the terminal's calls run on.
func (t *Terminal) Agent() *call.Agent { return t.agent }

// Calls returns the calls in progress on the registration stream.
func (t *Terminal) Calls() []*call.Call {
	t.mu.Lock()
	var gs []*signal
	if t.sess != nil {
		t.sess.prune()
		for _, g := range t.sess.calls {
			gs = append(gs, g)
		}
	}
	t.mu.Unlock()
	var out []*call.Call
	for _, g := range gs {
		if cc := g.call(); cc != nil {
			out = append(out, cc)
		}
	}
	return out
}

// prune forgets the calls that have ended; Terminal.mu held.
func (s *session) prune() {
	for id, g := range s.calls {
		if g.ended() {
			delete(s.calls, id)
		}
	}
}

// Close hangs up every call (call.LocalHangup, Bye sent; the agent's
// Handler reports their Terminated states) and returns once they have ended
// and their media is closed; it then ends the registration stream, closes
// the connection and waits for the terminal's goroutines (stream reader and
// writer). The agent stays open. Close is idempotent and safe from any
// goroutine, a Handler (the terminal's or the agent's) included: it never
// waits for a running Handler call. The terminal Handler calls queued before
// Close returns are still made, in order; none after. Done tells when the
// last one has returned.
func (t *Terminal) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		<-t.released
		return t.closeErr
	}
	t.closed = true
	s := t.sess
	var gs []*signal
	if s != nil {
		for _, g := range s.calls {
			gs = append(gs, g)
		}
	}
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCloseTimeout)
	var wg sync.WaitGroup
	for _, g := range gs {
		if cc := g.call(); cc != nil {
			wg.Go(func() { _ = cc.Hangup(ctx) })
		}
	}
	wg.Wait()
	cancel()
	if s != nil {
		s.out.push(nil) // CloseSend once the Byes are out
		timer := time.NewTimer(DefaultCloseTimeout)
		select {
		case <-s.done:
		case <-timer.C:
		}
		timer.Stop()
	}
	t.cancel()
	t.wg.Wait() // the loop and the writers never wait for a Handler call
	t.closeErr = t.conn.Close()
	close(t.released)
	if !t.events.Post(t.events.Close) {
		t.events.Close()
	}
	return t.closeErr
}

// emit queues a Handler call; it never blocks.
func (t *Terminal) emit(f func(h Handler)) {
	t.events.Post(func() { f(t.cfg.Handler) })
}

// loop registers, reads the stream until it breaks, and re-registers with
// backoff until the terminal is closed.
func (t *Terminal) loop() {
	defer t.wg.Done()
	delay := t.cfg.ReconnectMin
	for {
		s, err := t.register()
		if err == nil {
			delay = t.cfg.ReconnectMin
			err = t.read(s)
			t.lost(s, err)
		} else if t.ctx.Err() == nil {
			t.log.Warn("registration failed", "err", err)
		}
		timer := time.NewTimer(delay)
		select {
		case <-t.ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		delay = min(2*delay, t.cfg.ReconnectMax)
	}
}

// register opens the stream and waits for the core's acknowledgement.
func (t *Terminal) register() (*session, error) {
	ctx, cancel := context.WithCancel(t.ctx)
	ctx = metadata.AppendToOutgoingContext(ctx, MetadataMSISDN, t.cfg.MSISDN)
	var st grpc.BidiStreamingClient[pb.WebTerminalMessage, pb.WebTerminalMessage]
	var err error
	if t.cfg.Mode == MultiPipe {
		st, err = t.client.MultiPipe(ctx)
	} else {
		st, err = t.client.Pipe(ctx)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	md, err := st.Header()
	if err == nil && len(md.Get(metadataRegistered)) == 0 {
		if _, err = st.Recv(); err == nil || err == io.EOF {
			err = errors.New("webterminal: the core did not acknowledge the registration")
		}
	}
	if err != nil {
		cancel()
		return nil, err
	}
	s := &session{stream: st, ctx: ctx, cancel: cancel, out: newOutbox(), calls: map[string]*signal{}, done: make(chan struct{})}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		cancel()
		return nil, ErrClosed
	}
	t.sess = s
	first := t.registered
	t.mu.Unlock()
	select {
	case <-first:
	default:
		close(first)
	}
	t.wg.Add(1)
	go t.write(s)
	t.log.Info("registered")
	t.emit(func(h Handler) { h.OnRegistered(t) })
	return s, nil
}

// write is the stream's only sender; a nil message means CloseSend.
func (t *Terminal) write(s *session) {
	defer t.wg.Done()
	err := s.out.run(s.ctx, func(m *pb.WebTerminalMessage) error {
		if m == nil {
			_ = s.stream.CloseSend()
			return io.EOF
		}
		return s.stream.Send(m)
	})
	if err != nil && err != io.EOF {
		s.cancel() // a failed Send breaks the stream; Recv then returns
	}
}

// read receives until the stream breaks.
func (t *Terminal) read(s *session) error {
	defer close(s.done)
	for {
		m, err := s.stream.Recv()
		if err != nil {
			s.cancel()
			return err
		}
		t.dispatch(s, m)
	}
}

// lost ends the calls of a broken stream and reports it.
func (t *Terminal) lost(s *session, err error) {
	t.mu.Lock()
	if t.sess == s {
		t.sess = nil
	}
	gs := make([]*signal, 0, len(s.calls))
	for _, g := range s.calls {
		gs = append(gs, g)
	}
	closed := t.closed
	t.mu.Unlock()
	if err == io.EOF {
		err = errors.New("stream ended by the core")
	}
	reason := fmt.Errorf("%w: %w", ErrStreamLost, err)
	if closed {
		reason = ErrClosed
	}
	r := call.Reason{Kind: call.SignalingFailed, Text: "registration stream lost", Err: reason}
	if closed {
		r = call.Reason{Kind: call.LocalHangup, Text: "terminal closed", Err: ErrClosed}
	}
	for _, g := range gs {
		if cc := g.call(); cc != nil {
			cc.RemoteHangup(r)
		}
	}
	if !closed {
		t.log.Warn("registration lost", "err", err)
	}
	t.emit(func(h Handler) { h.OnUnregistered(t, reason) })
}

// send queues m on s and reports it to the Handler.
func (t *Terminal) send(s *session, m *pb.WebTerminalMessage) {
	s.out.push(m)
	t.emit(func(h Handler) { h.OnMessage(t, true, m) })
}

// dispatch handles one received message.
func (t *Terminal) dispatch(s *session, m *pb.WebTerminalMessage) {
	t.emit(func(h Handler) { h.OnMessage(t, false, m) })
	id := m.GetCallId()
	if t.cfg.Mode == MultiPipe && !validCallID(id) {
		err := fmt.Errorf("%w: %s message with call_id %q rejected", ErrInvalidCallID, Kind(m), id)
		t.log.Warn("message rejected", "err", err)
		t.emit(func(h Handler) { h.OnProtocolError(t, err) })
		return
	}
	switch x := m.GetMessage().(type) {
	case *pb.WebTerminalMessage_InCall:
		t.status(s, Status{CallID: id, MSISDN: x.InCall.GetMsisdn(), InCall: true})
	case *pb.WebTerminalMessage_Idle:
		t.status(s, Status{CallID: id, MSISDN: x.Idle.GetMsisdn()})
	case *pb.WebTerminalMessage_Offer:
		t.onOffer(s, id, x.Offer)
	case *pb.WebTerminalMessage_Answer, *pb.WebTerminalMessage_Ringing, *pb.WebTerminalMessage_Bye:
		var cc *call.Call
		g := t.lookup(s, id)
		if g != nil {
			cc = g.call()
		}
		if cc == nil {
			t.log.Debug("message for an unknown call ignored", "kind", Kind(m), "call_id", id)
			return
		}
		switch x := x.(type) {
		case *pb.WebTerminalMessage_Answer:
			if err := cc.RemoteAnswer([]byte(x.Answer.GetSdp())); err != nil {
				t.log.Debug("Answer not applied", "call_id", id, "err", err)
			}
		case *pb.WebTerminalMessage_Ringing:
			cc.RemoteRinging()
		default:
			g.onBye(cc)
		}
	default:
		t.log.Debug("message ignored", "kind", Kind(m), "call_id", id)
	}
}

// lookup returns the call a message is for: by call_id on MultiPipe, the one
// call on Pipe.
func (t *Terminal) lookup(s *session, id string) *signal {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.prune()
	if t.cfg.Mode == MultiPipe {
		return s.calls[id]
	}
	for _, g := range s.calls {
		return g
	}
	return nil
}

func (t *Terminal) status(s *session, st Status) {
	t.mu.Lock()
	if st.InCall {
		t.observed[st.CallID+"\x00"+st.MSISDN] = st
	} else {
		for k, o := range t.observed {
			if o.MSISDN == st.MSISDN && (st.CallID == "" || o.CallID == st.CallID) {
				delete(t.observed, k)
			}
		}
	}
	t.mu.Unlock()
	if st.InCall {
		// A call of ours reported on another device has moved away: after our
		// Action{ToPhone}, or taken over elsewhere.
		if g := t.lookup(s, st.CallID); g != nil && (g.isTransferring() || t.cfg.Mode == MultiPipe) {
			if cc := g.call(); cc != nil {
				cc.RemoteHangup(call.Reason{Kind: call.RemoteHangup, Text: "transferred", Err: ErrTransferred})
			}
		}
	}
	t.emit(func(h Handler) { h.OnStatus(t, st) })
}

// Kind names the payload of m ("Offer", "Answer", ...), for logs and traces.
func Kind(m *pb.WebTerminalMessage) string {
	switch x := m.GetMessage().(type) {
	case *pb.WebTerminalMessage_Offer:
		return "Offer"
	case *pb.WebTerminalMessage_Answer:
		return "Answer"
	case *pb.WebTerminalMessage_Ringing:
		return "Ringing"
	case *pb.WebTerminalMessage_Bye:
		return "Bye"
	case *pb.WebTerminalMessage_InCall:
		return "InCall"
	case *pb.WebTerminalMessage_Idle:
		return "Idle"
	case *pb.WebTerminalMessage_Action:
		if x.Action.GetToPhone() != nil {
			return "Action{ToPhone}"
		}
		return "Action"
	}
	return "empty"
}

// Format renders m on one line, SDP shortened to its size, for traces.
func Format(m *pb.WebTerminalMessage) string {
	var b strings.Builder
	b.WriteString(Kind(m))
	switch x := m.GetMessage().(type) {
	case *pb.WebTerminalMessage_Offer:
		fmt.Fprintf(&b, "{msisdn:%q sdp:%dB}", x.Offer.GetMsisdn(), len(x.Offer.GetSdp()))
	case *pb.WebTerminalMessage_Answer:
		fmt.Fprintf(&b, "{sdp:%dB}", len(x.Answer.GetSdp()))
	case *pb.WebTerminalMessage_InCall:
		fmt.Fprintf(&b, "{msisdn:%q}", x.InCall.GetMsisdn())
	case *pb.WebTerminalMessage_Idle:
		fmt.Fprintf(&b, "{msisdn:%q}", x.Idle.GetMsisdn())
	}
	fmt.Fprintf(&b, " call_id=%q", m.GetCallId())
	return b.String()
}
