package webterminal

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/mediastream"
	"google.golang.org/grpc"
)

// BenchmarkTerminalCall: one call at a time between two terminals registered
// with a Core over gRPC on loopback, with real media on the call core: Call,
// the callee's terminal accepting, Established, the media keyed (DTLS-SRTP)
// and an RTP packet through each way, then Hangup and both calls ended.
// "plain" is the same call with plain RTP, measured in the same run as the
// baseline. It reports calls/s and ms/call.
func BenchmarkTerminalCall(b *testing.B) {
	for _, sec := range []sdpx.Security{sdpx.Plain, sdpx.DTLS} {
		b.Run(sec.String(), func(b *testing.B) {
			core, err := NewCore(CoreConfig{})
			if err != nil {
				b.Fatal(err)
			}
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := grpc.NewServer()
			pb.RegisterWebTerminalServer(srv, core)
			served := make(chan struct{})
			go func() { defer close(served); _ = srv.Serve(lis) }()
			defer func() { core.Close(); srv.Stop(); <-served }()

			caller := benchTerminal(b, lis.Addr().String(), "100", MultiPipe, "", sec)
			callee := benchTerminal(b, lis.Addr().String(), "200", Pipe, "accept", sec)
			one := func() {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				c, err := caller.Call(ctx, "200")
				if err != nil {
					b.Fatal(err)
				}
				caller.rec.mu.Lock()
				active := signalOf(caller.rec.active, c.ID())
				caller.rec.mu.Unlock()
				select {
				case <-active:
				case <-ctx.Done():
					b.Fatalf("not established: %v %v", c.State(), c.Reason())
				}
				caller.rec.mu.Lock()
				delete(caller.rec.active, c.ID())
				caller.rec.mu.Unlock()
				var in *call.Call
				select {
				case in = <-callee.rec.incoming:
				case <-ctx.Done():
					b.Fatal("no incoming call")
				}
				sa, sb := c.Stream(), in.Stream()
				benchRTP(b, ctx, sa, sb)
				benchRTP(b, ctx, sb, sa)
				if err := c.Hangup(ctx); err != nil {
					b.Fatal(err)
				}
				benchWait(b, ctx, c.Done(), "caller's call ended")
				benchWait(b, ctx, in.Done(), "callee's call ended")
			}
			one() // warm up
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

// benchTerminal registers a terminal whose calls run on a call core agent
// with media on loopback secured with sec; closed when the benchmark ends.
func benchTerminal(b *testing.B, addr, msisdn string, mode Mode, auto string, sec sdpx.Security) *term {
	b.Helper()
	r := newRec(auto)
	agent := newAgent(b, sec, r)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tm, err := Dial(ctx, Config{Target: addr, MSISDN: msisdn, Mode: mode, Agent: agent, Handler: r,
		ReconnectMin: 10 * time.Millisecond})
	if err != nil {
		b.Fatalf("Dial %s: %v", msisdn, err)
	}
	b.Cleanup(func() { tm.Close() })
	benchWait(b, ctx, nil, msisdn+" registered", r.registered)
	// The recorder's channels are bounded and its handler blocks on a full
	// one: drain what a run of many calls reports, but incoming calls.
	stop := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case <-r.ended:
			case <-r.status:
			case <-r.ringing:
			case <-r.registered:
			case <-r.unregistered:
			case <-r.protoErr:
			case <-stop:
				return
			}
		}
	}()
	b.Cleanup(func() { close(stop); <-drained })
	return &term{Terminal: tm, rec: r}
}

// benchWait waits for ch to close (or, with ready, for a value on it).
func benchWait(b *testing.B, ctx context.Context, ch <-chan struct{}, what string, ready ...chan struct{}) {
	b.Helper()
	if len(ready) > 0 {
		ch = nil
		select {
		case <-ready[0]:
			return
		case <-ctx.Done():
			b.Fatalf("timed out waiting for %s", what)
		}
	}
	select {
	case <-ch:
	case <-ctx.Done():
		b.Fatalf("timed out waiting for %s", what)
	}
}

// benchRTP sends RTP on from until one packet arrives on to (the first ones
// may precede the keying), bounded by ctx.
func benchRTP(b *testing.B, ctx context.Context, from, to *mediastream.Stream) {
	b.Helper()
	pkt := []byte{0x80, 0x00, 0x00, 0x01, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 'w', 't'}
	buf := make([]byte, flow.MaxPacketSize)
	for ctx.Err() == nil {
		if !from.RTP().IsSecure() && from.Config().Security != mediastream.Plain {
			select { // keying: bounded poll
			case <-time.After(time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		_, _ = from.RTP().Write(pkt)
		_ = to.RTP().SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, _, err := to.RTP().ReadFromAddrPort(buf)
		if err == nil && bytes.Equal(buf[:n], pkt) {
			_ = to.RTP().SetReadDeadline(time.Time{})
			return
		}
	}
	b.Fatal("no RTP")
}
