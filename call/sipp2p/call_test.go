package sipp2p

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
)

func TestCall(t *testing.T) {
	leak.Check(t)
	ca := newCA(t)
	for _, tc := range []struct {
		name   string
		tr     Transport
		mutual bool
		sec    sdpx.Security
	}{
		{"udp-plain", UDP, false, sdpx.Plain},
		{"udp-sdes", UDP, false, sdpx.SDES},
		{"udp-dtls", UDP, false, sdpx.DTLS},
		{"tcp-sdes", TCP, false, sdpx.SDES},
		{"tcp-dtls", TCP, false, sdpx.DTLS},
		{"tls-sdes", TLS, false, sdpx.SDES},
		{"tls-dtls", TLS, false, sdpx.DTLS},
		{"mtls-sdes", TLS, true, sdpx.SDES},
		{"mtls-dtls", TLS, true, sdpx.DTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var tlsA, tlsB *TLSConfig
			if tc.tr == TLS {
				tlsA = &TLSConfig{Certificate: ca.leaf(t, loopback, time.Now().Add(time.Hour)), RootCAs: ca.pool, NeedMutualTLS: tc.mutual}
				tlsB = &TLSConfig{Certificate: ca.leaf(t, loopback, time.Now().Add(time.Hour)), RootCAs: ca.pool, NeedMutualTLS: tc.mutual}
			}
			media := call.MediaConfig{Security: tc.sec, SecurityRequired: tc.sec != sdpx.Plain, RTCPMux: tc.sec == sdpx.DTLS}
			a := newEP(t, Config{URI: "sip:alice@example.test", TLS: tlsA}, media)
			b := newEP(t, Config{URI: "sip:bob@example.test", TLS: tlsB}, media)
			a.listen(t, tc.tr)
			target := b.listen(t, tc.tr)

			c, err := a.Call(ctx, target, nil)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			cb := b.answer(t, ctx)
			waitState(t, ctx, c, call.Active)
			st, _ := c.MediaState()
			if st.Security != tc.sec {
				t.Errorf("security %v", st.Security)
			}
			if cb.Remote().URI == "" || cb.ID() != c.ID() {
				t.Errorf("callee sees %q, call id %q vs %q", cb.Remote().URI, cb.ID(), c.ID())
			}
			bothWays(t, c, cb)
			sa, sb := c.Stream(), cb.Stream()
			if err := c.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			if r := waitDone(t, ctx, cb); r.Kind != call.RemoteHangup {
				t.Errorf("callee reason %v", r)
			}
			if _, err := sa.RTP().Write(rtpPacket(9)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("caller write after BYE: %v", err)
			}
			if _, err := sb.RTP().Write(rtpPacket(9)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("callee write after BYE: %v", err)
			}
		})
	}
}
