package webrtcbench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flowmanager"
)

// reflowMedia is the media of both agents: DTLS-SRTP, full ICE with host
// candidates on 127.0.0.1, rtcp-mux (what a WebRTC peer offers).
var reflowMedia = call.MediaConfig{
	LocalAddr: netip.MustParseAddr("127.0.0.1"),
	Security:  sdpx.DTLS,
	RTCPMux:   true,
	ICE:       true,
	FullICE:   true,
}

// reflowPeers are two call agents, each on its own flow manager with its
// DTLS certificate made beforehand (like pion's Configuration.Certificates),
// joined by an in-memory Signaling (pipe). The callee accepts every call.
type reflowPeers struct {
	mA, mB   *flowmanager.Manager
	caller   *call.Agent
	callee   *call.Agent
	incoming chan *call.Call
	n        int
}

func newReflowPeers(tb testing.TB) *reflowPeers {
	tb.Helper()
	p := &reflowPeers{incoming: make(chan *call.Call, 1)}
	for _, m := range []struct {
		m   **flowmanager.Manager
		aor string
	}{{&p.mA, "a"}, {&p.mB, "b"}} {
		cert, err := dtlssrtp.GenerateCertificate(m.aor)
		if err != nil {
			tb.Fatal(err)
		}
		if *m.m, err = flowmanager.New(flowmanager.Config{AOR: m.aor, Certificate: &cert}); err != nil {
			tb.Fatal(err)
		}
	}
	var err error
	if p.caller, err = call.New(call.Config{Manager: p.mA, Media: reflowMedia}); err != nil {
		tb.Fatal(err)
	}
	if p.callee, err = call.New(call.Config{Manager: p.mB, Media: reflowMedia, Handler: call.HandlerFuncs{
		Incoming: func(c *call.Call) {
			p.incoming <- c
			go c.Accept(context.Background()) // Accept waits for the stream: not on the handler goroutine
		},
	}}); err != nil {
		tb.Fatal(err)
	}
	return p
}

func (p *reflowPeers) close() {
	p.caller.Close()
	p.callee.Close()
	<-p.caller.Done()
	<-p.callee.Done()
	p.mA.Close()
	p.mB.Close()
}

// pipe is the in-memory Signaling of one side of a call: each message is
// handed straight to the other agent's call with the same id.
type pipe struct {
	id     string
	remote *call.Agent
	peer   *pipe // the other side's pipe, for Incoming
}

// SendOffer hands the offer to the callee agent (a new incoming call).
func (s *pipe) SendOffer(ctx context.Context, offer []byte) error {
	if rc := s.remote.Call(s.id); rc != nil {
		return errors.New("re-offers are not used here")
	}
	_, err := s.remote.Incoming(ctx, s.peer, call.Params{ID: s.id}, offer)
	return err
}

// SendRinging is not used by the callee here.
func (s *pipe) SendRinging(context.Context) error { return nil }

// SendAnswer hands the answer to the caller's call.
func (s *pipe) SendAnswer(_ context.Context, answer []byte) error {
	if rc := s.remote.Call(s.id); rc != nil {
		return rc.RemoteAnswer(answer)
	}
	return nil
}

// SendReject hands a refusal to the caller's call.
func (s *pipe) SendReject(_ context.Context, r call.Reason) error {
	if rc := s.remote.Call(s.id); rc != nil {
		rc.RemoteReject(r)
	}
	return nil
}

// SendHangup ends the other side's call.
func (s *pipe) SendHangup(context.Context, call.Reason) error {
	if rc := s.remote.Call(s.id); rc != nil {
		rc.RemoteHangup(call.Reason{Kind: call.RemoteHangup})
	}
	return nil
}

// reflowCall is one call between the two agents.
type reflowCall struct {
	a, b *call.Call
	got  chan struct{} // closed by the first packet b reads
	done chan struct{} // closed when b's reader ends
}

// dial places a call from the caller to the callee (SDP offer, answer, full
// ICE checks and nomination, DTLS-SRTP in the background) and starts a
// reader on the callee's stream; every packet it reads counts in rx.
func (p *reflowPeers) dial(tb testing.TB, rx *counter) *reflowCall {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.n++
	id := fmt.Sprintf("call-%d", p.n)
	sa := &pipe{id: id, remote: p.callee}
	sa.peer = &pipe{id: id, remote: p.caller, peer: sa}
	a, err := p.caller.Dial(ctx, sa, call.Params{ID: id})
	if err != nil {
		tb.Fatal(err)
	}
	rc := &reflowCall{a: a, got: make(chan struct{}), done: make(chan struct{})}
	select {
	case rc.b = <-p.incoming:
	case <-ctx.Done():
		tb.Fatal("no incoming call")
	}
	f := rc.b.Stream().RTP()
	go func() {
		defer close(rc.done)
		buf := make([]byte, 1500)
		first := true
		for {
			if _, _, err := f.ReadFromAddrPort(buf); err != nil {
				return
			}
			if first {
				close(rc.got)
				first = false
			}
			rx.add()
		}
	}()
	return rc
}

// write sends one RTP packet from the caller.
func (rc *reflowCall) write(pkt []byte) error {
	_, err := rc.a.Stream().RTP().Write(pkt)
	return err
}

// hangup ends the call from the caller and waits until both sides' media
// is closed and the callee's reader has ended.
func (rc *reflowCall) hangup(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rc.a.Hangup(ctx); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-rc.b.Done():
	case <-ctx.Done():
		tb.Fatal("the callee's call did not end")
	}
	<-rc.done
}

// setup places one call and returns it once the callee has read the first
// RTP packet, with the time from Dial (which opens the caller's stream and
// makes the offer) to that packet; the caller writes one every 250 µs.
func (p *reflowPeers) setup(tb testing.TB, rx *counter) (*reflowCall, time.Duration, int) {
	tb.Helper()
	start := time.Now()
	rc := p.dial(tb, rx)
	d, n := firstPacket(tb, start, func(pkt []byte) { rc.write(pkt) }, rc.got)
	return rc, d, n
}

// benchReflowSetup: BenchmarkSetup/reflow, the time of setup per call
// (ns/op, ms/call); cpu-ms/call is the process's CPU time per whole cycle
// (call made, set up, first media, hung up).
func benchReflowSetup(b *testing.B) {
	p := newReflowPeers(b)
	defer p.close()
	b.ReportAllocs()
	var total time.Duration
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		rc, d, _ := p.setup(b, newCounter())
		total += d
		b.StopTimer()
		rc.hangup(b)
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/call")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/call")
}

// reflowPath is an established call, caller to callee.
func reflowPath(tb testing.TB) *path {
	tb.Helper()
	p := newReflowPeers(tb)
	rx := newCounter()
	rc, _, seq := p.setup(tb, rx)
	f := rc.a.Stream().RTP()
	return &path{
		write: func(pkt []byte) error { _, err := f.Write(pkt); return err },
		rx:    rx,
		seq:   seq,
		close: func() { rc.hangup(tb); p.close() },
	}
}

// benchReflowRate: BenchmarkRTPRate/reflow.
func benchReflowRate(b *testing.B) { measureRate(b, reflowPath(b)) }
