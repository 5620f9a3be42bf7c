package webterminal

import (
	"errors"
	"testing"

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
			wait(t, c.Established(), "established")
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
			wait(t, taken.Established(), "takeover established")
			wait(t, first.Done(), "first terminal's call ended")
			if !errors.Is(first.Err(), ErrRemoteHangup) {
				t.Fatalf("first terminal: %v", first.Err())
			}
			st = recv(t, b1.rec.status, "InCall on the first terminal")
			if !st.InCall || st.MSISDN != "200" {
				t.Fatalf("first terminal status %+v", st)
			}
			// The caller answered a renegotiation carrying the new terminal's SDP.
			offers, _ := a.media.of(c).seen()
			_, answers := b2.media.of(taken).seen()
			if len(offers) != 1 || offers[0] != "offer:200" || len(answers) != 1 || answers[0] != "answer:100" {
				t.Fatalf("renegotiation: caller answered %v, taker got %v", offers, answers)
			}
			if c.State() != Active {
				t.Fatalf("caller's call %v", c.State())
			}
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
			c, err := a.Call(ctxT(t), "200")
			if err != nil {
				t.Fatal(err)
			}
			wait(t, c.Established(), "established")
			in := recv(t, b.rec.incoming, "incoming")
			if err := in.TransferToPhone(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			st := recv(t, b.rec.status, "InCall after ToPhone")
			if !st.InCall || st.MSISDN != "200" || st.CallID != in.ID() {
				t.Fatalf("status %+v", st)
			}
			wait(t, in.Done(), "transferred call ended locally")
			if !errors.Is(in.Err(), ErrTransferred) {
				t.Fatalf("reason %v", in.Err())
			}
			calls := core.Calls()
			if len(calls) != 1 || len(calls[0].OnPhone) != 1 || calls[0].OnPhone[0] != "200" {
				t.Fatalf("core calls %+v", calls)
			}
			if c.State() != Active {
				t.Fatalf("caller's call %v after the transfer", c.State())
			}
			c.Hangup(ctxT(t))
			st = recv(t, b.rec.status, "Idle")
			if st.InCall || st.CallID != in.ID() {
				t.Fatalf("status %+v, want Idle", st)
			}
			if err := c.TransferToPhone(ctxT(t)); !errors.Is(err, ErrState) {
				t.Fatalf("TransferToPhone on an ended call: %v", err)
			}
		})
	}
}
