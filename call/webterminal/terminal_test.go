package webterminal

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/internal/leak"
)

// Seed scenario "Initiating a call from a WebRTC terminal", both modes:
// Offer -> (Ringing) -> Answer, then Bye from the caller. The calls are core
// calls: the caller's agent reports Ringing and Active, the callee's agent
// announces the incoming call once; the caller's hangup is recorded as local
// by its core call and as remote by the callee's.
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
			if c.Direction() != call.Outbound || Peer(c) != "200" || c.Remote().URI != "tel:200" || TerminalOf(c) != a.Terminal {
				t.Fatalf("caller's call: %v peer %q remote %q", c.Direction(), Peer(c), c.Remote().URI)
			}
			if got := recv(t, a.rec.ringing, "Ringing"); got != c {
				t.Fatalf("Ringing for %s, want %s", got.ID(), c.ID())
			}
			a.rec.up(t, c, "established")
			in := recv(t, b.rec.incoming, "incoming")
			if Peer(in) != "100" || in.Direction() != call.Inbound || in.State() != call.Active {
				t.Fatalf("callee sees peer %q %v %v", Peer(in), in.Direction(), in.State())
			}
			if mode == MultiPipe && (in.ID() != c.ID() || CallID(in) != c.ID()) {
				t.Fatalf("MultiPipe call_id %s at the callee, %s at the caller", in.ID(), c.ID())
			}
			if _, ok := in.MediaState(); !ok {
				t.Fatal("callee has no media in force")
			}
			if err := c.Hangup(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			reason(t, in, call.RemoteHangup, ErrRemoteHangup, "callee")
			reason(t, c, call.LocalHangup, nil, "caller")
		})
	}
}

// The callee rejects with Bye; a call to an msisdn without a terminal is
// rejected by the core: the caller's core call ends Declined with
// ErrRejected.
func TestOutgoingCallRejected(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "")
	b := dial(t, addr, "200", Pipe, "reject")
	for _, to := range []string{"200", "999"} {
		c, err := a.Call(ctxT(t), to)
		if err != nil {
			t.Fatal(err)
		}
		reason(t, c, call.Declined, ErrRejected, "call to "+to)
	}
	in := recv(t, b.rec.incoming, "rejected incoming")
	reason(t, in, call.Declined, nil, "rejecting callee")
}

// Seed scenario "Receiving an incoming call": Offer -> Ringing -> Answer, then
// Bye from the callee; and an incoming call the caller gives up (Bye while
// alerting: Canceled).
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
	if in.State() != call.Incoming {
		t.Fatalf("state %v", in.State())
	}
	if err := in.Ring(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, a.rec.ringing, "Ringing at the caller")
	if err := in.Accept(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	a.rec.up(t, c, "caller established")
	if err := in.Accept(ctxT(t)); !errors.Is(err, call.ErrState) {
		t.Fatalf("second Accept: %v", err)
	}
	in.Hangup(ctxT(t))
	reason(t, c, call.RemoteHangup, ErrRemoteHangup, "caller")

	// The caller gives up while the callee is alerting.
	c, err = a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatal(err)
	}
	in = recv(t, b.rec.incoming, "second incoming")
	if err := in.Ring(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, a.rec.ringing, "second Ringing at the caller")
	c.Hangup(ctxT(t))
	reason(t, in, call.Canceled, ErrRemoteHangup, "alerting callee")
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
	a.rec.up(t, c, "established")
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
	reason(t, busy, call.Declined, ErrRejected, "call to the busy Pipe terminal")
	c.Hangup(ctxT(t))
	c2, err := a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatalf("Pipe call after the first ended: %v", err)
	}
	a.rec.up(t, c2, "second call established")
}

// MultiPipe: three concurrent calls, each with its own call_id, ended
// independently.
func TestMultiPipeThreeCalls(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "")
	b := dial(t, addr, "200", MultiPipe, "accept")
	var calls []*call.Call
	for range 3 {
		c, err := a.Call(ctxT(t), "200")
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, c)
	}
	in := map[string]*call.Call{}
	for range 3 {
		c := recv(t, b.rec.incoming, "incoming")
		in[c.ID()] = c
	}
	for _, c := range calls {
		a.rec.up(t, c, "established")
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
		if in[calls[i].ID()].State() != call.Active || calls[i].State() != call.Active {
			t.Fatalf("call %d affected by hanging up another", i)
		}
	}
	in[calls[2].ID()].Hangup(ctxT(t))
	wait(t, calls[2].Done(), "third call ended")
	if calls[0].State() != call.Active {
		t.Fatal("first call affected")
	}
	calls[0].Hangup(ctxT(t))
	wait(t, in[calls[0].ID()].Done(), "first call ended")
	if n := len(a.Calls()); n != 0 {
		t.Fatalf("%d calls left at the caller", n)
	}
}
