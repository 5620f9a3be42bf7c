package call

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/mediastream"
)

// newDlyPair is a pair whose signalling carries delayed offers as SIP
// does (pipeSig.delayed).
func newDlyPair(t *testing.T, ma, mb MediaConfig) *pair {
	t.Helper()
	p := newPair(t, ma, mb)
	p.sa.delayed, p.sb.delayed = true, true
	return p
}

// dial places a delayed-offer call from a and returns both calls, the
// callee's not yet accepted.
func (p *pair) dial(t *testing.T, ctx context.Context) (ca, cb *Call) {
	t.Helper()
	ca, err := p.a.Dial(ctx, p.sa, Params{ID: "call-1", Remote: Party{URI: "mem:callee"}, DelayedOffer: true})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if got := p.sa.lastSent("offer"); len(got) != 0 {
		t.Fatalf("delayed call request carries an offer:\n%s", got)
	}
	select {
	case cb = <-p.eb.incoming:
	case <-ctx.Done():
		t.Fatal("no incoming call")
	}
	if ca.State() != Offering || cb.State() != Incoming {
		t.Fatalf("states %v %v", ca.State(), cb.State())
	}
	return ca, cb
}

// TestDelayedOffer: a call dialled without an offer (Params.DelayedOffer)
// reaches the callee as an incoming call without one (Agent.Incoming with
// nil); Accept offers in the answer and the caller answers it through
// RemoteOffer, for plain RTP, SDES and DTLS-SRTP (and DTLS with full ICE
// both ways). The callee's offer is the one Dial makes (DTLS actpass and
// fingerprint, SDES keys, ICE credentials and candidates), RTP flows both
// ways and the roles follow the exchange: the callee offered, so it is
// the DTLS actpass side and the controlling ICE agent.
func TestDelayedOffer(t *testing.T) {
	for _, tc := range []struct {
		name string
		mc   MediaConfig
		want []string // in the callee's offer
	}{
		{"plain", MediaConfig{}, []string{"RTP/AVP", "a=rtcp:"}},
		{"plain-mux", MediaConfig{RTCPMux: true}, []string{"RTP/AVP", "a=rtcp-mux"}},
		{"sdes", MediaConfig{Security: sdpx.SDES, SecurityRequired: true}, []string{"RTP/SAVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80", "a=crypto:2 AES_CM_128_HMAC_SHA1_32"}},
		{"dtls", MediaConfig{Security: sdpx.DTLS, RTCPMux: true, SecurityRequired: true}, []string{"UDP/TLS/RTP/SAVP", "a=setup:actpass", "a=fingerprint:sha-256", "a=tls-id:"}},
		{"dtls-full-ice", MediaConfig{Security: sdpx.DTLS, RTCPMux: true, ICE: true, FullICE: true}, []string{"a=ice-ufrag:", "a=ice-pwd:", "a=candidate:", "a=setup:actpass"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			p := newDlyPair(t, tc.mc, tc.mc)
			ca, cb := p.dial(t, ctx)
			if err := cb.Ring(ctx); err != nil {
				t.Fatal(err)
			}
			if err := cb.Accept(ctx); err != nil {
				t.Fatalf("accept: %v", err)
			}
			offer, answer := string(p.sb.lastSent("answer")), string(p.sa.lastSent("ack"))
			for _, w := range tc.want {
				if !strings.Contains(offer, w) {
					t.Errorf("callee's offer lacks %q:\n%s", w, offer)
				}
			}
			if tc.mc.Security == sdpx.DTLS && !strings.Contains(answer, "a=setup:active") {
				t.Errorf("caller's answer to actpass:\n%s", answer)
			}
			if ca.State() != Active || cb.State() != Active {
				t.Fatalf("states %v %v", ca.State(), cb.State())
			}
			sa, oka := ca.MediaState()
			sb, okb := cb.MediaState()
			if !oka || !okb || sa.Security != tc.mc.Security || sb.Security != tc.mc.Security || sa.Renegotiated || sb.Renegotiated {
				t.Fatalf("media %+v / %+v", sa, sb)
			}
			want := map[sdpx.Security]mediastream.Security{sdpx.Plain: mediastream.Plain, sdpx.SDES: mediastream.SDES, sdpx.DTLS: mediastream.DTLS}[tc.mc.Security]
			if a, b := ca.Stream().Config().Security, cb.Stream().Config().Security; a != want || b != want {
				t.Errorf("streams made for %v / %v, want %v", a, b, want)
			}
			bothWays(t, ca, cb)
			if tc.mc.FullICE {
				if !cb.Stream().RTP().ICEControlling() || ca.Stream().RTP().ICEControlling() {
					t.Error("the callee (the offerer) is not the controlling agent")
				}
				if !sa.ICE || !sb.ICE {
					t.Error("ICE not in use")
				}
			}
			// A re-offer on the established call still works both ways.
			if err := ca.Renegotiate(ctx, Change{Direction: sdpx.SendOnly}); err != nil {
				t.Fatalf("re-offer: %v", err)
			}
			if err := cb.Renegotiate(ctx, Change{Direction: sdpx.SendRecv}); err != nil {
				t.Fatalf("re-offer from the callee: %v", err)
			}
			if err := cb.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			if r := waitDone(t, ctx, ca); r.Kind != RemoteHangup {
				t.Errorf("caller reason %v", r)
			}
		})
	}
}

// TestDelayedOfferShape: the offer in the answer decides the caller's media
// as for an incoming call: a caller configured for plain RTP that gets a
// DTLS-SRTP (or SDES) offer replaces its stream with one made for it.
func TestDelayedOfferShape(t *testing.T) {
	for _, sec := range []sdpx.Security{sdpx.DTLS, sdpx.SDES} {
		t.Run(sec.String(), func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			p := newDlyPair(t, MediaConfig{}, MediaConfig{Security: sec, RTCPMux: true})
			ca, cb := p.dial(t, ctx)
			first := ca.Stream()
			if err := cb.Accept(ctx); err != nil {
				t.Fatalf("accept: %v", err)
			}
			if ca.Stream() == first {
				t.Error("the caller kept the plain stream")
			}
			if s := ca.Stream().Config().Security; s.String() != sec.String() {
				t.Errorf("caller stream %v, want %v", s, sec)
			}
			if !strings.Contains(string(p.sa.lastSent("ack")), "a=rtcp-mux") {
				t.Errorf("answer without rtcp-mux:\n%s", p.sa.lastSent("ack"))
			}
			bothWays(t, ca, cb)
			ca.Hangup(ctx)
			waitDone(t, ctx, cb)
		})
	}
}

// TestDelayedOfferFailures: every way a delayed exchange fails ends both
// calls with a reason that says why.
func TestDelayedOfferFailures(t *testing.T) {
	setup := func(t *testing.T, ma, mb MediaConfig) (context.Context, *pair, *Call, *Call) {
		leak.Check(t)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		t.Cleanup(cancel)
		p := newDlyPair(t, ma, mb)
		ca, cb := p.dial(t, ctx)
		return ctx, p, ca, cb
	}
	t.Run("no-offer-in-answer", func(t *testing.T) {
		ctx, p, ca, cb := setup(t, MediaConfig{}, MediaConfig{})
		p.sb.mangle = func(kind string, b []byte) []byte {
			if kind == "answer" {
				return nil
			}
			return b
		}
		if err := cb.Accept(ctx); err == nil {
			t.Error("accept succeeded")
		}
		if r := waitDone(t, ctx, ca); r.Kind != NotAcceptable || !strings.Contains(r.Text, "no offer") {
			t.Errorf("caller reason %+v", r)
		}
		if r := waitDone(t, ctx, cb); r.Kind != RemoteHangup {
			t.Errorf("callee reason %+v", r)
		}
	})
	t.Run("unacceptable-offer", func(t *testing.T) {
		ctx, _, ca, cb := setup(t, MediaConfig{SecurityRequired: true}, MediaConfig{})
		cb.Accept(ctx)
		if r := waitDone(t, ctx, ca); r.Kind != NotAcceptable || r.Code != 488 {
			t.Errorf("caller reason %+v", r)
		}
		if r := waitDone(t, ctx, cb); r.Kind != RemoteHangup {
			t.Errorf("callee reason %+v", r)
		}
	})
	t.Run("malformed-offer", func(t *testing.T) {
		ctx, p, ca, cb := setup(t, MediaConfig{}, MediaConfig{})
		p.sb.mangle = func(kind string, b []byte) []byte {
			if kind == "answer" {
				return []byte("v=0\r\nm=garbage\r\n")
			}
			return b
		}
		cb.Accept(ctx)
		if r := waitDone(t, ctx, ca); r.Kind != Malformed {
			t.Errorf("caller reason %+v", r)
		}
		waitDone(t, ctx, cb)
	})
	t.Run("unusable-answer", func(t *testing.T) {
		ctx, p, ca, cb := setup(t, MediaConfig{}, MediaConfig{})
		p.sa.mangle = func(kind string, b []byte) []byte {
			if kind == "ack" {
				return []byte("not sdp")
			}
			return b
		}
		err := cb.Accept(ctx)
		var r Reason
		if !errors.As(err, &r) || r.Kind != Malformed {
			t.Errorf("accept: %v", err)
		}
		if r := waitDone(t, ctx, cb); r.Kind != Malformed {
			t.Errorf("callee reason %+v", r)
		}
		// The callee sends the hangup (SIP: BYE after the ACK).
		if r := waitDone(t, ctx, ca); r.Kind != RemoteHangup {
			t.Errorf("caller reason %+v", r)
		}
		if !p.sb.did("hangup") {
			t.Error("no hangup sent")
		}
	})
	t.Run("no-answer", func(t *testing.T) {
		_, p, ca, cb := setup(t, MediaConfig{}, MediaConfig{})
		p.sa.mu.Lock()
		p.sa.drop = true
		p.sa.mu.Unlock()
		short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err := cb.Accept(short)
		var r Reason
		if !errors.As(err, &r) || r.Kind != SignalingFailed || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("accept: %v", err)
		}
		ctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel2()
		waitDone(t, ctx, cb)
		// A hangup, not a rejection: our offer was sent in the 200.
		if r := waitDone(t, ctx, ca); r.Kind != RemoteHangup {
			t.Errorf("caller reason %+v", r)
		}
	})
	t.Run("empty-offer-is-malformed", func(t *testing.T) {
		// Only a nil offer asks us to offer: an empty one (a binding's
		// message with no SDP) is refused as before.
		leak.Check(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p := newDlyPair(t, MediaConfig{}, MediaConfig{})
		_, err := p.b.Incoming(ctx, p.sb, Params{ID: "empty"}, []byte{})
		var r Reason
		if !errors.As(err, &r) || r.Kind != Malformed || r.Code != 400 {
			t.Errorf("empty offer: %v", err)
		}
	})
	t.Run("rejected", func(t *testing.T) {
		ctx, _, ca, cb := setup(t, MediaConfig{}, MediaConfig{})
		if err := cb.Reject(ctx, Reason{Kind: Busy, Code: 486}); err != nil {
			t.Fatal(err)
		}
		if r := waitDone(t, ctx, ca); r.Kind != Busy {
			t.Errorf("caller reason %+v", r)
		}
	})
	t.Run("caller-hangs-up", func(t *testing.T) {
		ctx, p, ca, cb := setup(t, MediaConfig{}, MediaConfig{})
		if err := ca.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		if r := waitDone(t, ctx, cb); r.Kind != RemoteHangup {
			t.Errorf("callee reason %+v", r)
		}
		if !p.sa.did("hangup") {
			t.Error("no hangup (CANCEL) sent")
		}
	})
}
