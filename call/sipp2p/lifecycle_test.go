package sipp2p

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/internal/leak"
)

// TestCloseFromHandler: Close called by the endpoint's own Handler returns
// (it deadlocked when the handler queue waited for itself), and Done
// closes once that handler call has returned.
func TestCloseFromHandler(t *testing.T) {
	leak.Check(t)
	m := newManager(t)
	agent, err := call.New(call.Config{Manager: m, Media: call.MediaConfig{LocalAddr: loopback}})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	closed := make(chan error, 1)
	var e *Endpoint
	var once sync.Once
	e, err = New(Config{URI: "sip:h@example.test", Agent: agent, Handler: HandlerFuncs{
		StateChanged: func(from, to State, err error) {
			if to == Established {
				once.Do(func() { closed <- e.Close() })
			}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.StartListening(context.Background(), UDP, netipLoopback0()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close from the handler did not return")
	}
	select {
	case <-e.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed")
	}
	if e.State() != Terminated {
		t.Errorf("state %v", e.State())
	}
}

// TestByeWhileClosing: a BYE arriving while the application closes its
// agent and endpoint neither panics nor leaves goroutines (it panicked with
// "WaitGroup is reused before previous Wait has returned"), and no
// goroutine is left: a request sipgo read just before Close made it open a
// socket of its own to answer after Close (seen in about 1 of 10 rounds).
func TestByeWhileClosing(t *testing.T) {
	leak.Check(t)
	for i := range 10 {
		func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			a := newEP(t, Config{}, call.MediaConfig{})
			b := newEP(t, Config{}, call.MediaConfig{})
			a.listen(t, UDP)
			target := b.listen(t, UDP)
			c, err := a.Call(ctx, target, nil)
			if err != nil {
				t.Fatal(err)
			}
			cb := b.answer(t, ctx)
			waitState(t, ctx, c, call.Active)
			var wg sync.WaitGroup
			wg.Go(func() { c.Hangup(ctx) }) // the BYE
			wg.Go(func() {
				if i%2 == 0 {
					b.agent.Close()
				}
				b.Endpoint.Close()
			})
			wg.Wait()
			waitDone(t, ctx, cb)
			a.Endpoint.Close()
			a.agent.Close()
		}()
	}
}
