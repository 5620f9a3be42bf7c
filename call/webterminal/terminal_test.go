package webterminal

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/reflow-go/reflow/internal/leak"
)

// Seed scenario "Initiating a call from a WebRTC terminal", both modes:
// Offer -> (Ringing) -> Answer, then Bye from the caller.
func TestOutgoingCall(t *testing.T) {
	for _, mode := range []Mode{Pipe, MultiPipe} {
		t.Run(mode.String(), func(t *testing.T) {
			leak.Check(t)
			_, addr := startCore(t, CoreConfig{})
			a := dial(t, addr, "100", mode, "")
			b := dial(t, addr, "200", mode, "ring+accept")
			c, err := a.Call(ctxT(t), "200")
			if err != nil {
				t.Fatal(err)
			}
			recv(t, a.rec.ringing, "Ringing")
			wait(t, c.Established(), "established")
			in := recv(t, b.rec.incoming, "incoming")
			if in.Peer() != "100" || in.Direction() != Incoming || in.State() != Active {
				t.Fatalf("callee sees peer %q %v %v", in.Peer(), in.Direction(), in.State())
			}
			if mode == MultiPipe && in.ID() != c.ID() {
				t.Fatalf("MultiPipe call_id %s at the callee, %s at the caller", in.ID(), c.ID())
			}
			offers, _ := b.media.of(in).seen()
			_, answers := a.media.of(c).seen()
			if fmt.Sprint(offers) != "[offer:100]" || fmt.Sprint(answers) != "[answer:200]" {
				t.Fatalf("SDP not passed through: callee got %v, caller got %v", offers, answers)
			}
			if err := c.Hangup(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			wait(t, in.Done(), "callee's call ended")
			if !errors.Is(in.Err(), ErrRemoteHangup) || !errors.Is(c.Err(), ErrLocalHangup) {
				t.Fatalf("reasons: callee %v, caller %v", in.Err(), c.Err())
			}
			if !b.media.of(in).isClosed() {
				t.Fatal("callee media not closed")
			}
		})
	}
}

// The callee rejects with Bye; a call to an msisdn without a terminal is
// rejected by the core.
func TestOutgoingCallRejected(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "")
	dial(t, addr, "200", Pipe, "reject")
	for _, to := range []string{"200", "999"} {
		c, err := a.Call(ctxT(t), to)
		if err != nil {
			t.Fatal(err)
		}
		wait(t, c.Done(), "call to "+to+" ended")
		if !errors.Is(c.Err(), ErrRejected) {
			t.Fatalf("call to %s: %v, want ErrRejected", to, c.Err())
		}
	}
}

// Seed scenario "Receiving an incoming call": Offer -> Ringing -> Answer, then
// Bye from the callee; and an incoming call the caller gives up (Bye while
// alerting).
func TestIncomingCall(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", Pipe, "")
	b := dial(t, addr, "200", MultiPipe, "") // decides itself
	c, err := a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatal(err)
	}
	in := recv(t, b.rec.incoming, "incoming")
	if in.State() != Alerting {
		t.Fatalf("state %v", in.State())
	}
	if err := in.Ring(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, a.rec.ringing, "Ringing at the caller")
	if err := in.Accept(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	wait(t, c.Established(), "caller established")
	if err := in.Accept(ctxT(t)); !errors.Is(err, ErrState) {
		t.Fatalf("second Accept: %v", err)
	}
	in.Hangup(ctxT(t))
	wait(t, c.Done(), "caller's call ended")
	if !errors.Is(c.Err(), ErrRemoteHangup) {
		t.Fatalf("caller: %v", c.Err())
	}

	// The caller gives up while the callee is alerting.
	c, err = a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatal(err)
	}
	in = recv(t, b.rec.incoming, "second incoming")
	c.Hangup(ctxT(t))
	wait(t, in.Done(), "alerting call canceled")
	if !errors.Is(in.Err(), ErrRemoteHangup) {
		t.Fatalf("callee: %v", in.Err())
	}
}

// Pipe carries one call: a second local call is refused with ErrBusy, and the
// core refuses a call to a busy Pipe terminal.
func TestPipeOneCall(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", Pipe, "")
	dial(t, addr, "200", Pipe, "accept")
	x := dial(t, addr, "300", MultiPipe, "")
	c, err := a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, c.Established(), "established")
	if _, err := a.Call(ctxT(t), "300"); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Pipe call: %v, want ErrBusy", err)
	}
	if _, err := a.TakeOver(ctxT(t), uuid.NewString()); !errors.Is(err, ErrBusy) {
		t.Fatalf("TakeOver while busy: %v, want ErrBusy", err)
	}
	busy, err := x.Call(ctxT(t), "100")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, busy.Done(), "call to the busy Pipe terminal ended")
	if !errors.Is(busy.Err(), ErrRejected) {
		t.Fatalf("call to busy Pipe: %v", busy.Err())
	}
	c.Hangup(ctxT(t))
	c2, err := a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatalf("Pipe call after the first ended: %v", err)
	}
	wait(t, c2.Established(), "second call established")
}

// MultiPipe: three concurrent calls, each with its own call_id, ended
// independently.
func TestMultiPipeThreeCalls(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "")
	b := dial(t, addr, "200", MultiPipe, "accept")
	var calls []*Call
	for range 3 {
		c, err := a.Call(ctxT(t), "200")
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, c)
	}
	in := map[string]*Call{}
	for range 3 {
		c := recv(t, b.rec.incoming, "incoming")
		in[c.ID()] = c
	}
	for _, c := range calls {
		wait(t, c.Established(), "established")
		if in[c.ID()] == nil {
			t.Fatalf("call %s not seen by the callee", c.ID())
		}
	}
	if n := len(a.Calls()); n != 3 {
		t.Fatalf("%d calls at the caller", n)
	}
	calls[1].Hangup(ctxT(t))
	wait(t, in[calls[1].ID()].Done(), "middle call ended")
	for _, i := range []int{0, 2} {
		if in[calls[i].ID()].State() != Active || calls[i].State() != Active {
			t.Fatalf("call %d affected by hanging up another", i)
		}
	}
	in[calls[2].ID()].Hangup(ctxT(t))
	wait(t, calls[2].Done(), "third call ended")
	if calls[0].State() != Active {
		t.Fatal("first call affected")
	}
	calls[0].Hangup(ctxT(t))
	wait(t, in[calls[0].ID()].Done(), "first call ended")
}
