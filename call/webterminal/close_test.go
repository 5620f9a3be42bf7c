package webterminal

import (
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
	"github.com/reflow-go/reflow/internal/leak"
)

// Close from a Handler call (the agent's, reporting a call's end) while the
// application closes the same terminal: both return, the terminal's other
// call ends as a local hangup, and Done closes. The handler's Close starts
// after the application's Close has ended the calls and is waiting for the
// terminal's goroutines.
func TestCloseFromHandler(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "")
	dial(t, addr, "200", MultiPipe, "accept")
	up, err := a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatal(err)
	}
	a.rec.up(t, up, "established")

	inside := make(chan error, 1)
	entered, proceed := make(chan struct{}), make(chan struct{})
	a.rec.hook(func() {
		close(entered)
		<-proceed
		inside <- a.Close()
	})
	rejected, err := a.Call(ctxT(t), "999") // the core rejects: Terminated -> hook
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
	if r := up.Reason(); r.Kind != call.LocalHangup {
		t.Errorf("call: %v", r)
	}
}

// Close from the terminal's own Handler works too, and a terminal Handler
// call that blocks does not hold Close up; Done waits for it.
func TestCloseHandlerBlocked(t *testing.T) {
	leak.Check(t)
	core, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "")
	release := make(chan struct{})
	entered := make(chan struct{})
	a.rec.protoHook(func() { close(entered); <-release })
	core.Send("100", &pb.WebTerminalMessage{CallId: "bad", Message: &pb.WebTerminalMessage_Bye{Bye: &pb.Bye{}}})
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

	b := dial(t, addr, "200", MultiPipe, "")
	inside := make(chan error, 1)
	b.rec.protoHook(func() { inside <- b.Close() })
	core.Send("200", &pb.WebTerminalMessage{CallId: "bad", Message: &pb.WebTerminalMessage_Bye{Bye: &pb.Bye{}}})
	if err := recv(t, inside, "Close from the terminal's handler"); err != nil {
		t.Fatal(err)
	}
	wait(t, b.Done(), "Done after Close from the handler")
}

// Many terminals with calls closed from handlers and from outside at once;
// their calls end as local hangups and the other side's as remote ones.
func TestConcurrentClose(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	b := dial(t, addr, "200", MultiPipe, "accept")
	for i := range 6 {
		a := dial(t, addr, "100", []Mode{Pipe, MultiPipe}[i%2], "")
		c, in := establish(t, a, b, "200")
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { a.Close() })
		}
		wg.Wait()
		wait(t, a.Done(), "Done")
		reason(t, c, call.LocalHangup, nil, "closed terminal")
		reason(t, in, call.RemoteHangup, ErrRemoteHangup, "other side")
	}
}
