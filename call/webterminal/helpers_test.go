package webterminal

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
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

// rec is a Handler recording events in channels, for tests to wait on.
type rec struct {
	incoming     chan *Call
	status       chan Status
	registered   chan struct{}
	unregistered chan error
	protoErr     chan error
	ringing      chan *Call
	ended        chan *Call
	auto         string // "accept", "ring+accept", "reject" or "" (hand over on incoming)

	mu    sync.Mutex
	onEnd func() // run once, by the next OnCallEnded
}

// hook makes the next OnCallEnded call f (on the handler goroutine).
func (r *rec) hook(f func()) {
	r.mu.Lock()
	r.onEnd = f
	r.mu.Unlock()
}

func newRec(auto string) *rec {
	return &rec{
		incoming: make(chan *Call, 16), status: make(chan Status, 16), registered: make(chan struct{}, 16),
		unregistered: make(chan error, 16), protoErr: make(chan error, 16), ringing: make(chan *Call, 16),
		ended: make(chan *Call, 16), auto: auto,
	}
}

func (r *rec) OnRegistered(*Terminal)              { r.registered <- struct{}{} }
func (r *rec) OnUnregistered(_ *Terminal, e error) { r.unregistered <- e }
func (r *rec) OnRinging(c *Call)                   { r.ringing <- c }
func (r *rec) OnEstablished(*Call)                 {}
func (r *rec) OnCallEnded(c *Call, _ error) {
	r.ended <- c
	r.mu.Lock()
	f := r.onEnd
	r.onEnd = nil
	r.mu.Unlock()
	if f != nil {
		f()
	}
}
func (r *rec) OnStatus(_ *Terminal, s Status) { r.status <- s }
func (r *rec) OnProtocolError(_ *Terminal, e error) {
	r.protoErr <- e
}
func (r *rec) OnMessage(*Terminal, bool, *pb.WebTerminalMessage) {}
func (r *rec) OnIncomingCall(c *Call) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	switch r.auto {
	case "accept":
		_ = c.Accept(ctx)
	case "ring+accept":
		_ = c.Ring(ctx)
		_ = c.Accept(ctx)
	case "reject":
		_ = c.Reject(ctx)
	}
	r.incoming <- c
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

// fakeMedia makes recognisable SDP strings and records what it was given.
type fakeMedia struct {
	name    string
	mu      sync.Mutex
	n       int
	offers  []string // remote offers answered
	answers []string // remote answers applied
	closed  bool
}

func (m *fakeMedia) Offer(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	return "offer:" + m.name, nil
}

func (m *fakeMedia) Answer(_ context.Context, offer string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", errors.New("closed")
	}
	m.offers = append(m.offers, offer)
	return "answer:" + m.name, nil
}

func (m *fakeMedia) SetAnswer(_ context.Context, answer string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.answers = append(m.answers, answer)
	return nil
}

func (m *fakeMedia) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func (m *fakeMedia) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

func (m *fakeMedia) seen() (offers, answers []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.offers...), append([]string(nil), m.answers...)
}

// fakeMedias hands out fakeMedia named after the terminal and remembers them.
type fakeMedias struct {
	name string
	mu   sync.Mutex
	all  map[string]*fakeMedia // by call ID
}

func (f *fakeMedias) fn() MediaFunc {
	return func(_ context.Context, c *Call) (Media, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.all == nil {
			f.all = map[string]*fakeMedia{}
		}
		m := &fakeMedia{name: f.name}
		f.all[c.ID()] = m
		return m, nil
	}
}

func (f *fakeMedias) of(c *Call) *fakeMedia {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.all[c.ID()]
}

// term is a terminal under test with its recorder and media.
type term struct {
	*Terminal
	rec   *rec
	media *fakeMedias
}

// dial registers a terminal with fake media; closed when the test ends.
func dial(t *testing.T, addr, msisdn string, mode Mode, auto string, mutate ...func(*Config)) *term {
	t.Helper()
	r := newRec(auto)
	fm := &fakeMedias{name: msisdn}
	cfg := Config{Target: addr, MSISDN: msisdn, Mode: mode, Media: fm.fn(), Handler: r, ReconnectMin: 10 * time.Millisecond}
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
	return &term{Terminal: tm, rec: r, media: fm}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
