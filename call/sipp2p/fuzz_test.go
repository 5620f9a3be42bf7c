package sipp2p

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/internal/leak"
)

// fakeTx is a server transaction that records responses; its Done is
// closed, so a new call's INVITE handler returns at once (as if canceled).
type fakeTx struct {
	mu   sync.Mutex
	res  []*sip.Response
	done chan struct{}
	got  chan struct{} // a response was sent
}

func newFakeTx() *fakeTx {
	d := make(chan struct{})
	close(d)
	return &fakeTx{done: d, got: make(chan struct{}, 1)}
}

func (f *fakeTx) Terminate()                         {}
func (f *fakeTx) OnTerminate(sip.FnTxTerminate) bool { return false }
func (f *fakeTx) Done() <-chan struct{}              { return f.done }
func (f *fakeTx) Err() error                         { return nil }
func (f *fakeTx) Acks() <-chan *sip.Request          { return nil }
func (f *fakeTx) OnCancel(sip.FnTxCancel) bool       { return false }
func (f *fakeTx) Respond(res *sip.Response) error {
	f.mu.Lock()
	f.res = append(f.res, res)
	f.mu.Unlock()
	select {
	case f.got <- struct{}{}:
	default:
	}
	return nil
}

// FuzzInvite feeds INVITEs and re-INVITEs (in a live dialog) to the
// endpoint's INVITE handler: whatever arrives, it must not panic, must
// answer every request it does not drop, and must leave no goroutine.
func FuzzInvite(f *testing.F) {
	leak.Check(f)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, r, accepted := callee(f, ctx, Config{T1: time.Millisecond, T2: 4 * time.Millisecond, MaxCalls: 4})
	d, _ := r.establish(ctx, "fuzz")
	<-accepted
	seed := func(method string, dl dlg, body, ctype string, extra ...string) {
		f.Add([]byte(strings.ReplaceAll(r.request(method, dl, body, ctype, extra...), "\n", "\r\n")))
	}
	fresh := dlg{callID: "fresh@raw", ftag: "fr", seq: 1}
	seed("INVITE", fresh, r.sdp(40000, ""), "")
	seed("INVITE", fresh, r.sdp(40000, "m=image 5004 udptl t38\n"), "")
	seed("INVITE", fresh, r.sdp(40000, ""), "", "Require: timer")
	seed("INVITE", fresh, "hello", "text/plain")
	seed("INVITE", fresh, "", "")
	seed("INVITE", fresh, "v=0\no=- 1 1 IN IP4 x\n", "")
	seed("INVITE", fresh, r.sdp(40000, ""), "", "Expires: x")
	re := d
	re.seq = 2
	seed("INVITE", re, r.sdp(41000, ""), "")
	re.seq = 3
	seed("INVITE", re, r.sdp(41000, "a=sendonly\n"), "")
	seed("INVITE", re, "", "")
	foreign := d
	foreign.ftag, foreign.seq = "other", 9
	seed("INVITE", foreign, r.sdp(41000, ""), "")
	f.Add([]byte("INVITE sip:x SIP/2.0\r\nCSeq: 1 INVITE\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n\r\n"))

	h := b.handle(b.onInvite)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := sip.ParseMessage(append([]byte(nil), data...))
		if err != nil {
			return
		}
		req, ok := m.(*sip.Request)
		if !ok || req.Method != sip.INVITE {
			return
		}
		tx := newFakeTx()
		h(req, tx)
		// A 200 to a re-INVITE is sent by its retransmitter goroutine.
		select {
		case <-tx.got:
		case <-time.After(2 * time.Second):
			t.Fatalf("no response to\n%s", data)
		}
	})
	b.Endpoint.Close()
	b.agent.Close()
}
