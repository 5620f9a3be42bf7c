package call

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
)

// A remote hangup (a BYE) that arrives while the application closes its
// agent: the call ends once, with either reason, and nothing panics. The
// old agent counted its handler goroutine in the WaitGroup Close waited on,
// so the hangup's handler call raced Close's Wait ("WaitGroup is reused
// before previous Wait has returned").
func TestRemoteHangupDuringClose(t *testing.T) {
	leak.Check(t)
	for i := range 30 {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		p := newPair(t, MediaConfig{}, MediaConfig{})
		ca, _ := p.connect(t, ctx)
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { <-start; ca.RemoteHangup(Reason{Kind: RemoteHangup}) })
		wg.Go(func() { <-start; p.a.Close() })
		close(start)
		wg.Wait()
		if r := waitDone(t, ctx, ca); r.Kind != RemoteHangup && r.Kind != LocalHangup {
			t.Fatalf("round %d: reason %+v", i, r)
		}
		select {
		case <-p.a.Done():
		case <-ctx.Done():
			t.Fatalf("round %d: agent's Done not closed", i)
		}
		p.a.Close()
		p.b.Close()
		cancel()
	}
}

// Close from inside a handler call returns (it does not wait for the handler
// calling it), ends the calls, and Done closes once that handler returned.
func TestAgentCloseFromHandler(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p := newPair(t, MediaConfig{}, MediaConfig{})
	closed := make(chan struct{})
	var states []State
	var mu sync.Mutex
	a, err := New(Config{Manager: p.a.cfg.Manager, Media: p.a.cfg.Media, Handler: HandlerFuncs{
		State: func(c *Call, from, to State, r Reason) {
			mu.Lock()
			states = append(states, to)
			mu.Unlock()
			if to == Active {
				c.a.Close()
				close(closed)
			}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p.a = a
	p.sa.local, p.sb.remote = a, a
	// Not p.connect: the calls may end before it could check they are active.
	ca, err := a.Dial(ctx, p.sa, Params{ID: "call-1"})
	if err != nil {
		t.Fatal(err)
	}
	cb := <-p.eb.incoming
	if err := cb.Accept(ctx); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close from the handler did not return")
	}
	waitDone(t, ctx, ca)
	waitDone(t, ctx, cb)
	select {
	case <-a.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(states) != 2 || states[0] != Active || states[1] != Terminated {
		t.Errorf("states %v, want [active terminated]", states)
	}
}

// A handler call that blocks does not hold Close up, and Done waits for it.
func TestAgentCloseHandlerBlocked(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p := newPair(t, MediaConfig{}, MediaConfig{})
	release := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	a, err := New(Config{Manager: p.a.cfg.Manager, Media: p.a.cfg.Media, Handler: HandlerFuncs{
		Media: func(*Call, MediaState) { once.Do(func() { close(entered); <-release }) },
	}})
	if err != nil {
		t.Fatal(err)
	}
	p.a = a
	p.sa.local, p.sb.remote = a, a
	ca, _ := p.connect(t, ctx)
	<-entered
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if ca.State() != Terminated {
		t.Errorf("state after Close %v", ca.State())
	}
	select {
	case <-a.Done():
		t.Fatal("Done closed while a handler call runs")
	default:
	}
	close(release)
	select {
	case <-a.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after the handler returned")
	}
}
