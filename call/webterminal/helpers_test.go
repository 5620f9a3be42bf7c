package webterminal

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
	"github.com/reflow-go/reflow/flowmanager"
	"google.golang.org/grpc"
)

// testTimeout bounds every wait of a test.
const testTimeout = 10 * time.Second

// startCore serves a Core on 127.0.0.1:0; both are stopped when the test ends.
func startCore(t *testing.T, cfg CoreConfig, opts ...grpc.ServerOption) (*Core, string) {
	t.Helper()
	core, err := NewCore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	pb.RegisterWebTerminalServer(srv, core)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		core.Close()
		srv.Stop()
		<-served
	})
	return core, lis.Addr().String()
}

// serveOn serves core on 127.0.0.1:0 with a server the test may stop.
func serveOn(t *testing.T, core *Core, opts ...grpc.ServerOption) (*grpc.Server, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	pb.RegisterWebTerminalServer(srv, core)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return srv, lis.Addr().String()
}

// rec records what a terminal (webterminal.Handler) and its agent
// (call.Handler) report, in channels and per-call signals for tests to
// wait on.
type rec struct {
	incoming     chan *call.Call
	status       chan Status
	registered   chan struct{}
	unregistered chan error
	protoErr     chan error
	ringing      chan *call.Call
	ended        chan *call.Call
	auto         string // "accept", "ring+accept", "reject" or "" (hand over on incoming)

	mu        sync.Mutex
	onEnd     func()                   // run once, by the next Terminated
	onProto   func()                   // run once, by the next OnProtocolError
	announced map[string]int           // OnIncoming per call ID
	active    map[string]chan struct{} // closed when the call is Active
	reneg     map[string]chan struct{} // closed at the call's first renegotiated OnMedia
}

// hook makes the next Terminated call f (on the agent's handler goroutine).
func (r *rec) hook(f func()) {
	r.mu.Lock()
	r.onEnd = f
	r.mu.Unlock()
}

// protoHook makes the next OnProtocolError call f (on the terminal's handler goroutine).
func (r *rec) protoHook(f func()) {
	r.mu.Lock()
	r.onProto = f
	r.mu.Unlock()
}

func newRec(auto string) *rec {
	return &rec{
		incoming: make(chan *call.Call, 16), status: make(chan Status, 16), registered: make(chan struct{}, 16),
		unregistered: make(chan error, 16), protoErr: make(chan error, 16), ringing: make(chan *call.Call, 16),
		ended: make(chan *call.Call, 16), auto: auto,
		announced: map[string]int{}, active: map[string]chan struct{}{}, reneg: map[string]chan struct{}{},
	}
}

// signalOf returns the per-call channel of m for id, made on first use; r.mu held.
func signalOf(m map[string]chan struct{}, id string) chan struct{} {
	ch := m[id]
	if ch == nil {
		ch = make(chan struct{})
		m[id] = ch
	}
	return ch
}

func (r *rec) OnRegistered(*Terminal)              { r.registered <- struct{}{} }
func (r *rec) OnUnregistered(_ *Terminal, e error) { r.unregistered <- e }
func (r *rec) OnStatus(_ *Terminal, s Status)      { r.status <- s }
func (r *rec) OnProtocolError(_ *Terminal, e error) {
	r.protoErr <- e
	r.mu.Lock()
	f := r.onProto
	r.onProto = nil
	r.mu.Unlock()
	if f != nil {
		f()
	}
}
func (r *rec) OnMessage(*Terminal, bool, *pb.WebTerminalMessage) {}

// OnState implements call.Handler.
func (r *rec) OnState(c *call.Call, _, to call.State, _ call.Reason) {
	switch to {
	case call.Ringing:
		r.ringing <- c
	case call.Active:
		r.mu.Lock()
		close(signalOf(r.active, c.ID()))
		r.mu.Unlock()
	case call.Terminated:
		r.ended <- c
		r.mu.Lock()
		f := r.onEnd
		r.onEnd = nil
		r.mu.Unlock()
		if f != nil {
			f()
		}
	}
}

// OnMedia implements call.Handler.
func (r *rec) OnMedia(c *call.Call, m call.MediaState) {
	if !m.Renegotiated {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := signalOf(r.reneg, c.ID())
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// OnIncoming implements call.Handler.
func (r *rec) OnIncoming(c *call.Call) {
	r.mu.Lock()
	r.announced[c.ID()]++
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	switch r.auto {
	case "accept":
		_ = c.Accept(ctx)
	case "ring+accept":
		_ = c.Ring(ctx)
		_ = c.Accept(ctx)
	case "reject":
		_ = c.Reject(ctx, call.Reason{})
	}
	r.incoming <- c
}

// timesAnnounced returns how often the agent announced call id.
func (r *rec) timesAnnounced(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.announced[id]
}

// up waits until the agent reported c Active.
func (r *rec) up(t *testing.T, c *call.Call, what string) {
	t.Helper()
	r.mu.Lock()
	ch := signalOf(r.active, c.ID())
	r.mu.Unlock()
	select {
	case <-ch:
	case <-c.Done():
		t.Fatalf("%s: call ended: %v", what, c.Reason())
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// renegotiated waits until the agent reported a renegotiation of c.
func (r *rec) renegotiated(t *testing.T, c *call.Call, what string) {
	t.Helper()
	r.mu.Lock()
	ch := signalOf(r.reneg, c.ID())
	r.mu.Unlock()
	wait(t, ch, what)
}

// recv waits for a value on ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// wait waits for a channel to close.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// reason checks that c ended with kind and, when err is not nil, a reason
// matching err.
func reason(t *testing.T, c *call.Call, kind call.Kind, err error, who string) {
	t.Helper()
	wait(t, c.Done(), who+"'s call ended")
	r := c.Reason()
	if r.Kind != kind || (err != nil && !errors.Is(r, err)) {
		t.Fatalf("%s: reason %v (kind %v), want kind %v matching %v", who, r, r.Kind, kind, err)
	}
}

// newAgent makes a call core agent with media on loopback secured with sec,
// reporting to h; closed when the test ends.
func newAgent(t testing.TB, sec sdpx.Security, h call.Handler) *call.Agent {
	t.Helper()
	m, err := flowmanager.New(flowmanager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := call.New(call.Config{Manager: m, Handler: h, Media: call.MediaConfig{
		LocalAddr: netip.MustParseAddr("127.0.0.1"), Security: sec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); m.Close() })
	return a
}

// withSecurity makes a terminal's calls use sec (ICE-lite and rtcp-mux as by default).
func withSecurity(sec sdpx.Security) func(*Config) {
	return func(c *Config) {
		c.Media = &call.MediaConfig{LocalAddr: netip.MustParseAddr("127.0.0.1"), Security: sec, ICE: true, RTCPMux: true}
	}
}

// term is a terminal under test with its recorder.
type term struct {
	*Terminal
	rec *rec
}

// dial registers a terminal on an agent of its own (plain RTP on loopback)
// whose events go to the terminal's recorder; closed when the test ends.
func dial(t *testing.T, addr, msisdn string, mode Mode, auto string, mutate ...func(*Config)) *term {
	t.Helper()
	r := newRec(auto)
	cfg := Config{Target: addr, MSISDN: msisdn, Mode: mode, Agent: newAgent(t, sdpx.Plain, r), Handler: r, ReconnectMin: 10 * time.Millisecond}
	for _, f := range mutate {
		f(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tm, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial %s: %v", msisdn, err)
	}
	t.Cleanup(func() { tm.Close() })
	recv(t, r.registered, msisdn+" registered")
	return &term{Terminal: tm, rec: r}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// establish calls `to` from terminal a and returns the caller's call once
// it is established and the incoming call b's handler was given.
func establish(t *testing.T, a, b *term, to string) (c, in *call.Call) {
	t.Helper()
	c, err := a.Call(ctxT(t), to)
	if err != nil {
		t.Fatal(err)
	}
	a.rec.up(t, c, "established")
	return c, recv(t, b.rec.incoming, "incoming")
}
