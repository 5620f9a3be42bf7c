package sipp2p

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
)

func TestReinvite(t *testing.T) {
	leak.Check(t)
	for _, sec := range []sdpx.Security{sdpx.SDES, sdpx.DTLS} {
		t.Run(sec.String(), func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			media := call.MediaConfig{Security: sec, RTCPMux: sec == sdpx.DTLS}
			a := newEP(t, Config{URI: "sip:alice@example.test"}, media)
			b := newEP(t, Config{URI: "sip:bob@example.test"}, media)
			a.listen(t, UDP)
			target := b.listen(t, TCP)
			c, err := a.Call(ctx, target, nil)
			if err != nil {
				t.Fatal(err)
			}
			cb := b.answer(t, ctx)
			waitState(t, ctx, c, call.Active)
			bothWays(t, c, cb)

			// The callee moves to a new port (re-INVITE from the UAS side).
			before, _ := cb.MediaState()
			if err := cb.Renegotiate(ctx, call.Change{NewMedia: true}); err != nil {
				t.Fatal(err)
			}
			after, _ := cb.MediaState()
			sa, _ := c.MediaState()
			if after.Local == before.Local || sa.Remote != after.Local {
				t.Errorf("new port: callee %v -> %v, caller sends to %v", before.Local, after.Local, sa.Remote)
			}
			bothWays(t, c, cb)

			// The caller holds and resumes (re-INVITE from the UAC side).
			if err := c.Renegotiate(ctx, call.Change{Direction: sdpx.SendOnly}); err != nil {
				t.Fatal(err)
			}
			sa, _ = c.MediaState()
			sb, _ := cb.MediaState()
			if sa.Direction != sdpx.SendOnly || sb.Direction != sdpx.RecvOnly {
				t.Errorf("hold: %v / %v", sa.Direction, sb.Direction)
			}
			if !flows(c.Stream(), cb.Stream()) {
				t.Error("no RTP from the holding side")
			}
			if err := c.Renegotiate(ctx, call.Change{Direction: sdpx.SendRecv}); err != nil {
				t.Fatal(err)
			}
			if sb, _ = cb.MediaState(); sb.Direction != sdpx.SendRecv {
				t.Errorf("resume: %v", sb.Direction)
			}
			bothWays(t, c, cb)
			if err := cb.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			if r := waitDone(t, ctx, c); r.Kind != call.RemoteHangup {
				t.Errorf("caller reason %v", r)
			}
		})
	}
}

func TestGlare(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := newEP(t, Config{URI: "sip:alice@example.test"}, call.MediaConfig{})
	b := newEP(t, Config{URI: "sip:bob@example.test"}, call.MediaConfig{})
	a.listen(t, UDP)
	target := b.listen(t, UDP)
	c, err := a.Call(ctx, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	cb := b.answer(t, ctx)
	waitState(t, ctx, c, call.Active)
	// Both sides re-offer at once until the offers have crossed (bounded).
	for attempt := 0; attempt < 5 && a.glare.Load()+b.glare.Load() == 0; attempt++ {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, 2)
		for i, cc := range []*call.Call{c, cb} {
			wg.Go(func() {
				<-start
				errs[i] = cc.Renegotiate(ctx, call.Change{Direction: sdpx.SendRecv})
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("attempt %d side %d: %v", attempt, i, err)
			}
		}
	}
	if a.glare.Load()+b.glare.Load() == 0 {
		t.Fatal("the re-offers never crossed")
	}
	if c.State() != call.Active || cb.State() != call.Active {
		t.Errorf("states %v %v", c.State(), cb.State())
	}
	bothWays(t, c, cb)
}

func TestTamperedFingerprint(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newProxy(t)
	fp := regexp.MustCompile(`a=fingerprint:sha-256 ([0-9A-F])`)
	p.setMangle(func(res *sip.Response) {
		body := fp.ReplaceAllFunc(res.Body(), func(m []byte) []byte {
			out := append([]byte(nil), m...)
			if out[len(out)-1] == '0' {
				out[len(out)-1] = '1'
			} else {
				out[len(out)-1] = '0'
			}
			return out
		})
		res.SetBody(body)
	})
	media := call.MediaConfig{Security: sdpx.DTLS, RTCPMux: true}
	a := newEP(t, Config{URI: "sip:alice@example.test", OutboundProxy: p.addr}, media)
	b := newEP(t, Config{URI: "sip:bob@example.test"}, media)
	a.listen(t, UDP)
	target := b.listen(t, UDP)
	c, err := a.Call(ctx, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cb *call.Call
	select {
	case cb = <-b.incoming:
	case <-ctx.Done():
		t.Fatal("no incoming call")
	}
	// The callee is the DTLS client and starts at once: the caller's alert
	// may end the call before the ACK reaches Accept, which then fails.
	if err := cb.Accept(ctx); err != nil && !errors.Is(err, call.ErrClosed) {
		t.Fatalf("accept: %v", err)
	}
	sa, sb := c.Stream(), cb.Stream()
	// Both sides try to send while the association fails.
	var wg sync.WaitGroup
	for _, s := range []*call.Call{c, cb} {
		st := s.Stream()
		wg.Go(func() {
			for i := range 200 {
				if _, err := st.RTP().Write(rtpPacket(uint16(i))); err != nil && s.State() == call.Terminated {
					return
				}
				select {
				case <-s.Done():
					return
				case <-time.After(5 * time.Millisecond): // pacing of the sender
				}
			}
		})
	}
	// The caller detects the mismatch, the callee (DTLS client) gets its
	// alert; whichever reports first ends the call for both.
	ra, rb := waitDone(t, ctx, c), waitDone(t, ctx, cb)
	if ra.Kind != call.SecurityFailed && rb.Kind != call.SecurityFailed {
		t.Errorf("reasons %+v / %+v, want a security failure", ra, rb)
	}
	for _, r := range []call.Reason{ra, rb} {
		if r.Kind != call.SecurityFailed && r.Kind != call.RemoteHangup {
			t.Errorf("reason %+v", r)
		}
	}
	wg.Wait()
	if n := sa.RTP().Stats().PacketsIn + sb.RTP().Stats().PacketsIn; n != 0 {
		t.Errorf("%d media packets delivered", n)
	}
	if len(p.requests()) != 1 {
		t.Errorf("proxy saw %v", p.requests())
	}
}
