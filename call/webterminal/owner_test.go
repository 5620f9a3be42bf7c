package webterminal

import (
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
)

// coreEvents records what an agent's handler sees.
type coreEvents struct {
	mu       sync.Mutex
	incoming int
	states   []call.State
	ringing  chan struct{} // closed at the first Ringing
	term     chan struct{} // closed at the first Terminated
	once     sync.Once
	termOnce sync.Once
}

func newCoreEvents() *coreEvents {
	return &coreEvents{ringing: make(chan struct{}), term: make(chan struct{})}
}

func (e *coreEvents) handler() call.Handler {
	return call.HandlerFuncs{
		Incoming: func(*call.Call) { e.mu.Lock(); e.incoming++; e.mu.Unlock() },
		State: func(_ *call.Call, _, to call.State, _ call.Reason) {
			e.mu.Lock()
			e.states = append(e.states, to)
			e.mu.Unlock()
			switch to {
			case call.Ringing:
				e.once.Do(func() { close(e.ringing) })
			case call.Terminated:
				e.termOnce.Do(func() { close(e.term) })
			}
		},
	}
}

func (e *coreEvents) seen() (int, []call.State) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.incoming, slices.Clone(e.states)
}

func newAgentWith(t *testing.T, sec sdpx.Security, h call.Handler) *call.Agent {
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

// A terminal call on the call core has one owner and one account of what
// happened: the agent does not announce an incoming terminal call (the
// terminal's Handler answers it), the callee's Ringing reaches the caller's
// core call, a Bye from the other side is recorded by the core as a remote
// hangup (ours as a local one), and when the media dies (the peer's DTLS
// association closes) the core ends the call, which ends the terminal call
// with ErrMedia (wrapping the core's MediaLost reason) and sends Bye.
func TestCoreMediaOneOwner(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	ea, eb := newCoreEvents(), newCoreEvents()
	a := dial(t, addr, "100", MultiPipe, "", withAgent(newAgentWith(t, sdpx.DTLS, ea.handler())))
	b := dial(t, addr, "200", Pipe, "ring+accept", withAgent(newAgentWith(t, sdpx.DTLS, eb.handler())))

	c, err := a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, c.Established(), "established")
	in := recv(t, b.rec.incoming, "incoming")
	cc, cin := CallOf(c), CallOf(in)
	// Handler calls are asynchronous: wait for the caller's Ringing.
	wait(t, ea.ringing, "Ringing reported by the caller's core call")

	if err := c.Hangup(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	wait(t, in.Done(), "callee's call ended")
	wait(t, cin.Done(), "callee's core call ended")
	if r := cin.Reason(); r.Kind != call.RemoteHangup || !errors.Is(in.Err(), ErrRemoteHangup) {
		t.Errorf("callee: core reason %v, terminal %v; want remote hangup", r, in.Err())
	}
	if r := cc.Reason(); r.Kind != call.LocalHangup {
		t.Errorf("caller's core reason %v, want local hangup", r)
	}
	// The callee's core call has ended (its Terminated state is queued after
	// anything its agent reported for it): no OnIncoming among those.
	wait(t, eb.term, "callee's core call Terminated reported")
	if n, _ := eb.seen(); n != 0 {
		t.Errorf("the callee's agent announced the terminal's call %d times", n)
	}

	// The callee's media dies without a word on the stream.
	c, err = a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, c.Established(), "second call established")
	in = recv(t, b.rec.incoming, "second incoming")
	flows(t, streamOf(t, c), streamOf(t, in), "caller -> callee")
	streamOf(t, in).Close()
	wait(t, c.Done(), "caller's call ended by its media")
	var r call.Reason
	if !errors.Is(c.Err(), ErrMedia) || !errors.As(c.Err(), &r) || r.Kind != call.MediaLost {
		t.Errorf("caller's call ended with %v, want ErrMedia wrapping MediaLost", c.Err())
	}
	wait(t, in.Done(), "callee's call ended by the caller's Bye")
	if !errors.Is(in.Err(), ErrRemoteHangup) {
		t.Errorf("callee's call ended with %v, want ErrRemoteHangup", in.Err())
	}
}
