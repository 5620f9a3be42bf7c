package webterminal

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
)

// Close from a Handler call while the application closes the same terminal:
// both return, the terminal's call ends with ErrClosed, and Done closes once
// the handler returned. The handler's Close starts after the application's
// Close has ended the calls and is waiting for the terminal's goroutines
// (the old terminal then waited for the handler, which waited for it).
func TestCloseFromHandler(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "")
	dial(t, addr, "200", MultiPipe, "accept")
	up, err := a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, up.Established(), "established")

	inside := make(chan error, 1)
	entered, proceed := make(chan struct{}), make(chan struct{})
	a.rec.hook(func() {
		close(entered)
		<-proceed
		inside <- a.Close()
	})
	rejected, err := a.Call(ctxT(t), "999") // the core rejects: OnCallEnded -> hook
	if err != nil {
		t.Fatal(err)
	}
	wait(t, rejected.Done(), "rejected call")
	wait(t, entered, "handler entered")
	outside := make(chan error, 1)
	go func() { outside <- a.Close() }()
	wait(t, up.Done(), "call ended by Close")
	close(proceed)
	for _, ch := range []chan error{inside, outside} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("Close: %v", err)
			}
		case <-time.After(testTimeout):
			t.Fatal("Close deadlocked")
		}
	}
	wait(t, a.Done(), "Done")
	if !errors.Is(up.Err(), ErrClosed) {
		t.Errorf("call: %v", up.Err())
	}
}

// A Handler call that blocks does not hold Close up; Done waits for it.
func TestCloseHandlerBlocked(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "")
	release := make(chan struct{})
	entered := make(chan struct{})
	a.rec.hook(func() { close(entered); <-release })
	c, err := a.Call(ctxT(t), "999") // the core rejects: OnCallEnded -> hook
	if err != nil {
		t.Fatal(err)
	}
	wait(t, c.Done(), "rejected call")
	wait(t, entered, "handler entered")
	closed := make(chan struct{})
	go func() { a.Close(); close(closed) }()
	wait(t, closed, "Close with a blocked handler")
	select {
	case <-a.Done():
		t.Fatal("Done closed while a handler call runs")
	default:
	}
	close(release)
	wait(t, a.Done(), "Done after the handler returned")
}

// Many terminals closed from handlers and from outside at once.
func TestConcurrentClose(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	for range 10 {
		a := dial(t, addr, "100", Pipe, "")
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { a.Close() })
		}
		wg.Wait()
		wait(t, a.Done(), "Done")
	}
}
