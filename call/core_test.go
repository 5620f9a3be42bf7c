package call

import (
	"bytes"
	"context"
	"errors"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/srtp"
)

func TestCallModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		sec  sdpx.Security
		mux  bool
	}{
		{"plain", sdpx.Plain, false},
		{"plain-mux", sdpx.Plain, true},
		{"sdes", sdpx.SDES, false},
		{"dtls", sdpx.DTLS, true},
		{"dtls-rtcp", sdpx.DTLS, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			mc := MediaConfig{Security: tc.sec, RTCPMux: tc.mux, SecurityRequired: tc.sec != sdpx.Plain}
			p := newPair(t, mc, mc)
			ca, cb := p.connect(t, ctx)
			st, ok := ca.MediaState()
			if !ok || st.Security != tc.sec || st.RTCPMux != tc.mux || st.Direction != sdpx.SendRecv {
				t.Errorf("caller media %+v", st)
			}
			if tc.sec == sdpx.SDES && st.Suite != srtp.AESCM128HMACSHA1_80 {
				t.Errorf("suite %v", st.Suite)
			}
			// Both streams are made for the negotiated protection: a
			// secured one never carries clear media.
			want := map[sdpx.Security]mediastream.Security{sdpx.Plain: mediastream.Plain, sdpx.SDES: mediastream.SDES, sdpx.DTLS: mediastream.DTLS}[tc.sec]
			if a, b := ca.Stream().Config().Security, cb.Stream().Config().Security; a != want || b != want {
				t.Errorf("streams made for %v / %v, want %v", a, b, want)
			}
			bothWays(t, ca, cb)
			sa, sb := ca.Stream(), cb.Stream()
			if err := ca.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			if r := waitDone(t, ctx, cb); r.Kind != RemoteHangup {
				t.Errorf("callee reason %v", r)
			}
			if r := ca.Reason(); r.Kind != LocalHangup {
				t.Errorf("caller reason %v", r)
			}
			if _, err := sa.RTP().Write(rtpPacket(1)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("write after hangup: %v", err)
			}
			if _, err := sb.RTP().Write(rtpPacket(1)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("write after hangup: %v", err)
			}
		})
	}
}

func TestRejectUnacceptable(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cases := []struct {
		name   string
		a, b   MediaConfig
		reason string
	}{
		{"codec", MediaConfig{Codecs: []sdpx.Codec{sdpx.PCMU}}, MediaConfig{Codecs: []sdpx.Codec{sdpx.PCMA}}, "no common codec"},
		{"security", MediaConfig{}, MediaConfig{Security: sdpx.SDES, SecurityRequired: true}, "secure media required"},
		{"suite", MediaConfig{Security: sdpx.SDES, Suites: []srtp.Suite{srtp.AESCM128HMACSHA1_32}}, MediaConfig{Suites: []srtp.Suite{srtp.AESCM128HMACSHA1_80}}, "crypto suite"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, tc.a, tc.b)
			ca, err := p.a.Dial(ctx, p.sa, Params{ID: "call-1"})
			if err != nil {
				t.Fatal(err)
			}
			r := waitDone(t, ctx, ca)
			if r.Kind != NotAcceptable || r.Code != 488 || !bytes.Contains([]byte(r.Text), []byte(tc.reason)) {
				t.Errorf("reason %+v", r)
			}
			select {
			case c := <-p.eb.incoming:
				t.Errorf("callee saw call %s", c.ID())
			default:
			}
		})
	}
}

func TestMalformedOffer(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := newPair(t, MediaConfig{}, MediaConfig{})
	p.sa.mangle = func(kind string, b []byte) []byte { return b[:len(b)/2] }
	ca, err := p.a.Dial(ctx, p.sa, Params{ID: "call-1"})
	if err != nil {
		t.Fatal(err)
	}
	if r := waitDone(t, ctx, ca); r.Kind != Malformed || r.Code != 400 {
		t.Errorf("reason %+v", r)
	}
	if _, err := p.b.Incoming(ctx, p.sb, Params{ID: "x"}, []byte("v=0\r\nbogus")); !errors.As(err, new(Reason)) {
		t.Errorf("Incoming: %v", err)
	}
}

func TestRejectAndCancel(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := newPair(t, MediaConfig{}, MediaConfig{})
	ca, err := p.a.Dial(ctx, p.sa, Params{ID: "call-1"})
	if err != nil {
		t.Fatal(err)
	}
	cb := <-p.eb.incoming
	if err := cb.Ring(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cb.Reject(ctx, Reason{Kind: Busy, Code: 486}); err != nil {
		t.Fatal(err)
	}
	if r := waitDone(t, ctx, ca); r.Kind != Busy || r.Code != 486 {
		t.Errorf("caller reason %+v", r)
	}
	if ca.State() != Terminated || len(p.a.Calls()) != 0 {
		t.Errorf("caller state %v, calls %d", ca.State(), len(p.a.Calls()))
	}

	ca, err = p.a.Dial(ctx, p.sa, Params{ID: "call-1"})
	if err != nil {
		t.Fatal(err)
	}
	cb = <-p.eb.incoming
	if err := ca.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitDone(t, ctx, cb)
	if err := cb.Accept(ctx); !errors.Is(err, ErrState) {
		t.Errorf("accept after cancel: %v", err)
	}
}

func TestReoffer(t *testing.T) {
	for _, sec := range []sdpx.Security{sdpx.SDES, sdpx.DTLS} {
		t.Run(sec.String(), func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			mc := MediaConfig{Security: sec, RTCPMux: true}
			p := newPair(t, mc, mc)
			ca, cb := p.connect(t, ctx)
			bothWays(t, ca, cb)

			// Hold: a sends only, b receives only.
			if err := ca.Renegotiate(ctx, Change{Direction: sdpx.SendOnly}); err != nil {
				t.Fatal(err)
			}
			sa, _ := ca.MediaState()
			sb, _ := cb.MediaState()
			if sa.Direction != sdpx.SendOnly || sb.Direction != sdpx.RecvOnly || !sa.Renegotiated {
				t.Errorf("hold: %v / %v", sa.Direction, sb.Direction)
			}
			if err := ca.Renegotiate(ctx, Change{Direction: sdpx.SendRecv}); err != nil {
				t.Fatal(err)
			}
			if sb, _ = cb.MediaState(); sb.Direction != sdpx.SendRecv {
				t.Errorf("resume: %v", sb.Direction)
			}

			// New port from b: a's destination follows, media flows on the new stream.
			old := cb.Stream()
			oldLocal := sb.Local
			if err := cb.Renegotiate(ctx, Change{NewMedia: true}); err != nil {
				t.Fatal(err)
			}
			sb, _ = cb.MediaState()
			sa, _ = ca.MediaState()
			if sb.Local == oldLocal || sa.Remote != sb.Local {
				t.Errorf("new media: b local %v (was %v), a remote %v", sb.Local, oldLocal, sa.Remote)
			}
			// Closed: writes fail at once; Done follows its last handler call.
			if _, err := old.RTP().Write(rtpPacket(1)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("old stream still open: %v", err)
			}
			select {
			case <-old.Done():
			case <-ctx.Done():
				t.Error("old stream's Done not closed")
			}
			bothWays(t, ca, cb)

			// Rejected re-offer: rollback, media keeps flowing as before.
			before, _ := ca.MediaState()
			p.sa.mangle = func(kind string, b []byte) []byte {
				if kind != "offer" {
					return b
				}
				return regexp.MustCompile(`(?m)^m=audio (\d+) (\S+) .*$`).ReplaceAll(b, []byte("m=audio $1 $2 18"))
			}
			err := ca.Renegotiate(ctx, Change{Direction: sdpx.Inactive, NewMedia: true})
			var r Reason
			if !errors.As(err, &r) || r.Kind != NotAcceptable {
				t.Fatalf("rejected re-offer: %v", err)
			}
			p.sa.mangle = nil
			after, _ := ca.MediaState()
			if after.Local != before.Local || after.Direction != before.Direction || ca.State() != Active {
				t.Errorf("rollback: %+v -> %+v", before, after)
			}
			bothWays(t, ca, cb)
			if err := cb.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			waitDone(t, ctx, ca)
		})
	}
}

func TestTamperedFingerprint(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mc := MediaConfig{Security: sdpx.DTLS, RTCPMux: true}
	p := newPair(t, mc, mc)
	p.sb.mangle = func(kind string, b []byte) []byte {
		if kind != "answer" {
			return b
		}
		return regexp.MustCompile(`(a=fingerprint:sha-256 )([0-9A-F]{2})`).ReplaceAllFunc(b, func(m []byte) []byte {
			out := append([]byte(nil), m...)
			if out[len(out)-1] == '0' {
				out[len(out)-1] = '1'
			} else {
				out[len(out)-1] = '0'
			}
			return out
		})
	}
	// The handshake fails within milliseconds of the answer, so a call may
	// already have ended when Accept returns.
	ca, cb := p.dialAccept(t, ctx)
	sa, sb := ca.Stream(), cb.Stream()
	// The caller detects the mismatch; the callee (DTLS client) gets its
	// alert. Whichever reports first ends the call for both.
	ra, rb := waitDone(t, ctx, ca), waitDone(t, ctx, cb)
	if ra.Kind != SecurityFailed && rb.Kind != SecurityFailed {
		t.Errorf("reasons %+v / %+v, want a security failure", ra, rb)
	}
	for _, r := range []Reason{ra, rb} {
		if r.Kind != SecurityFailed && r.Kind != RemoteHangup {
			t.Errorf("reason %+v", r)
		}
	}
	if flows(sa, sb) || flows(sb, sa) {
		t.Error("media flowed")
	}
}

func TestAgentClose(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := newPair(t, MediaConfig{}, MediaConfig{})
	ca, cb := p.connect(t, ctx)
	if err := p.a.Close(); err != nil {
		t.Fatal(err)
	}
	if r := ca.Reason(); r.Kind != LocalHangup {
		t.Errorf("reason %+v", r)
	}
	waitDone(t, ctx, cb)
	if _, err := p.a.Dial(ctx, p.sa, Params{}); !errors.Is(err, ErrClosed) {
		t.Errorf("dial after close: %v", err)
	}
	if err := p.a.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestMuxMismatch(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := newPair(t, MediaConfig{RTCPMux: false}, MediaConfig{RTCPMux: true})
	var answer []byte
	p.sb.mangle = func(kind string, b []byte) []byte {
		if kind == "answer" {
			answer = append([]byte(nil), b...)
		}
		return b
	}
	ca, cb := p.connect(t, ctx)
	if bytes.Contains(answer, []byte("a=rtcp-mux")) || !bytes.Contains(answer, []byte("a=rtcp:")) {
		t.Errorf("answer adds rtcp-mux or lacks a=rtcp:\n%s", answer)
	}
	bothWays(t, ca, cb)
}
