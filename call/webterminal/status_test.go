package webterminal

import (
	"errors"
	"testing"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/internal/leak"
)

// Seed scenarios "Observing status" and "Transferring call to Terminal":
// msisdn 200 has two terminals; a call answered on the first makes the second
// see InCall; the second takes the call over with an Offer carrying that
// call_id; the first gets Bye and InCall; the caller is renegotiated to the
// new terminal; when the call ends the first sees Idle.
func TestStatusAndTakeOver(t *testing.T) {
	for _, mode := range []Mode{MultiPipe, Pipe} {
		t.Run(mode.String(), func(t *testing.T) {
			leak.Check(t)
			core, addr := startCore(t, CoreConfig{})
			a := dial(t, addr, "100", MultiPipe, "")
			b1 := dial(t, addr, "200", mode, "accept")
			b2 := dial(t, addr, "200", mode, "")
			c, err := a.Call(ctxT(t), "200")
			if err != nil {
				t.Fatal(err)
			}
			a.rec.up(t, c, "established")
			first := recv(t, b1.rec.incoming, "incoming on the first terminal")

			st := recv(t, b2.rec.status, "InCall on the second terminal")
			if !st.InCall || st.MSISDN != "200" || st.CallID != c.ID() {
				t.Fatalf("status %+v, want InCall 200 %s", st, c.ID())
			}
			if obs := b2.Observed(); len(obs) != 1 || obs[0] != st {
				t.Fatalf("Observed %+v", obs)
			}

			taken, err := b2.TakeOver(ctxT(t), st.CallID)
			if err != nil {
				t.Fatal(err)
			}
			b2.rec.up(t, taken, "takeover established")
			reason(t, first, call.RemoteHangup, ErrRemoteHangup, "first terminal")
			st = recv(t, b1.rec.status, "InCall on the first terminal")
			if !st.InCall || st.MSISDN != "200" {
				t.Fatalf("first terminal status %+v", st)
			}
			// The caller answered a renegotiation carrying the new terminal's SDP,
			// and its media now goes to the new terminal.
			a.rec.renegotiated(t, c, "caller renegotiated")
			if c.State() != call.Active {
				t.Fatalf("caller's call %v", c.State())
			}
			flows(t, c.Stream(), taken.Stream(), "caller -> taker")
			flows(t, taken.Stream(), c.Stream(), "taker -> caller")
			if n := len(b2.Observed()); n != 0 {
				t.Fatalf("taker still observes %d calls", n)
			}

			c.Hangup(ctxT(t))
			wait(t, taken.Done(), "taken call ended")
			st = recv(t, b1.rec.status, "Idle on the first terminal")
			if st.InCall || st.MSISDN != "200" {
				t.Fatalf("first terminal status %+v, want Idle", st)
			}
			if want := map[Mode]string{Pipe: "", MultiPipe: c.ID()}[mode]; st.CallID != want {
				t.Fatalf("Idle call_id %q, want %q", st.CallID, want)
			}
			if len(core.Calls()) != 0 {
				t.Fatalf("core calls left: %+v", core.Calls())
			}
		})
	}
}

// Seed scenario "Transferring call to the mobile terminal": Action{ToPhone}
// -> InCall (the call leaves the terminal) -> Idle when it ends.
func TestTransferToPhone(t *testing.T) {
	for _, mode := range []Mode{MultiPipe, Pipe} {
		t.Run(mode.String(), func(t *testing.T) {
			leak.Check(t)
			core, addr := startCore(t, CoreConfig{})
			a := dial(t, addr, "100", mode, "")
			b := dial(t, addr, "200", MultiPipe, "accept")
			c, in := establish(t, a, b, "200")
			if err := a.TransferToPhone(ctxT(t), in); !errors.Is(err, ErrNotTerminalCall) {
				t.Fatalf("TransferToPhone of another terminal's call: %v", err)
			}
			if err := b.TransferToPhone(ctxT(t), in); err != nil {
				t.Fatal(err)
			}
			st := recv(t, b.rec.status, "InCall after ToPhone")
			if !st.InCall || st.MSISDN != "200" || st.CallID != in.ID() {
				t.Fatalf("status %+v", st)
			}
			reason(t, in, call.RemoteHangup, ErrTransferred, "transferred callee")
			calls := core.Calls()
			if len(calls) != 1 || len(calls[0].OnPhone) != 1 || calls[0].OnPhone[0] != "200" {
				t.Fatalf("core calls %+v", calls)
			}
			if c.State() != call.Active {
				t.Fatalf("caller's call %v after the transfer", c.State())
			}
			c.Hangup(ctxT(t))
			st = recv(t, b.rec.status, "Idle")
			if st.InCall || st.CallID != in.ID() {
				t.Fatalf("status %+v, want Idle", st)
			}
			wait(t, c.Done(), "caller's call ended")
			if err := a.TransferToPhone(ctxT(t), c); !errors.Is(err, ErrState) {
				t.Fatalf("TransferToPhone on an ended call: %v", err)
			}
		})
	}
}
