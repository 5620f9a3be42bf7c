package sipp2p

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
)

// BenchmarkCallSetup: one call at a time between two endpoints over SIP/UDP
// on loopback: INVITE, 180, 200 and ACK, the media keyed (DTLS-SRTP, rtcp-mux,
// one handshake per call), an RTP packet through each way, then BYE and both
// sides ended. "plain" is the same call with plain RTP, measured in the same
// run as the baseline: the difference is what DTLS-SRTP costs a call. It
// reports calls/s and ms/call.
func BenchmarkCallSetup(b *testing.B) {
	for _, sec := range []sdpx.Security{sdpx.Plain, sdpx.DTLS} {
		b.Run(sec.String(), func(b *testing.B) {
			media := call.MediaConfig{Security: sec, SecurityRequired: sec != sdpx.Plain, RTCPMux: true}
			a := newEP(b, Config{URI: "sip:alice@example.test"}, media)
			callee := newEP(b, Config{URI: "sip:bob@example.test"}, media)
			if _, err := a.StartListening(context.Background(), UDP, netip.AddrPortFrom(loopback, 0)); err != nil {
				b.Fatal(err)
			}
			ap, err := callee.StartListening(context.Background(), UDP, netip.AddrPortFrom(loopback, 0))
			if err != nil {
				b.Fatal(err)
			}
			target := "sip:bob@" + ap.String() + ";transport=udp"
			one := func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				c, err := a.Call(ctx, target, nil)
				if err != nil {
					b.Fatalf("call: %v", err)
				}
				var cb *call.Call
				select {
				case cb = <-callee.incoming:
				case <-ctx.Done():
					b.Fatal("no incoming call")
				}
				if err := cb.Ring(ctx); err != nil {
					b.Fatalf("ring: %v", err)
				}
				if err := cb.Accept(ctx); err != nil {
					b.Fatalf("accept: %v", err)
				}
				benchWaitActive(b, ctx, c)
				benchWaitActive(b, ctx, cb)
				if sec == sdpx.DTLS {
					benchWaitSecure(b, ctx, c)
					benchWaitSecure(b, ctx, cb)
				}
				if !flows(c.Stream(), cb.Stream()) || !flows(cb.Stream(), c.Stream()) {
					b.Fatal("no media both ways")
				}
				if err := c.Hangup(ctx); err != nil {
					b.Fatal(err)
				}
				for _, x := range []*call.Call{c, cb} {
					select {
					case <-x.Done():
					case <-ctx.Done():
						b.Fatalf("call did not end (state %v)", x.State())
					}
				}
			}
			one() // warm up: certificates, listeners' connections
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				one()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/call")
		})
	}
}

// benchWaitActive waits (bounded by ctx) until c is Active.
func benchWaitActive(b *testing.B, ctx context.Context, c *call.Call) {
	b.Helper()
	for c.State() != call.Active {
		select {
		case <-ctx.Done():
			b.Fatalf("call state %v, want active", c.State())
		case <-c.Done():
			b.Fatalf("call ended (%v) before it was active", c.Reason())
		case <-time.After(time.Millisecond): // bounded poll of a state owned by another goroutine
		}
	}
}

// benchWaitSecure waits (bounded by ctx) until c's RTP flow is keyed both ways.
func benchWaitSecure(b *testing.B, ctx context.Context, c *call.Call) {
	b.Helper()
	for !c.Stream().RTP().IsSecure() {
		select {
		case <-ctx.Done():
			b.Fatal("media not keyed")
		case <-c.Done():
			b.Fatalf("call ended (%v) before its media was keyed", c.Reason())
		case <-time.After(time.Millisecond): // bounded poll
		}
	}
}
