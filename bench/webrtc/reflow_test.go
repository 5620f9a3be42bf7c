package webrtcbench

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/mediastream"
)

// readyHandler hands OnReady's tuples (or the first error) to channels.
type readyHandler struct {
	ready chan [2]flow.Tuple
	errs  chan error
}

func newReadyHandler() *readyHandler {
	return &readyHandler{ready: make(chan [2]flow.Tuple, 1), errs: make(chan error, 4)}
}

func (h *readyHandler) OnReady(_ *mediastream.Stream, rtp, rtcp flow.Tuple) {
	h.ready <- [2]flow.Tuple{rtp, rtcp}
}

func (h *readyHandler) OnError(_ *mediastream.Stream, err error) {
	select {
	case h.errs <- err:
	default:
	}
}

// reflowPeers are two managers (each with its certificate made beforehand,
// like the pion side's Configuration.Certificates).
type reflowPeers struct {
	mA, mB   *flowmanager.Manager
	fpA, fpB dtlssrtp.Fingerprint
}

func newReflowPeers(b *testing.B) *reflowPeers {
	b.Helper()
	p := &reflowPeers{}
	var err error
	if p.mA, err = flowmanager.New(flowmanager.Config{AOR: "a"}); err != nil {
		b.Fatal(err)
	}
	if p.mB, err = flowmanager.New(flowmanager.Config{AOR: "b"}); err != nil {
		b.Fatal(err)
	}
	if p.fpA, err = p.mA.Fingerprint(); err != nil {
		b.Fatal(err)
	}
	if p.fpB, err = p.mB.Fingerprint(); err != nil {
		b.Fatal(err)
	}
	return p
}

func (p *reflowPeers) close() { p.mA.Close(); p.mB.Close() }

// reflowPair is one stream on each manager, pointed at each other, with
// DTLS-SRTP started (a is the DTLS client) when dtls is set.
type reflowPair struct {
	a, b *mediastream.Stream
}

func (p *reflowPeers) pair(b *testing.B, rtcp, dtls bool) reflowPair {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := mediastream.Config{LocalAddr: netip.MustParseAddr("127.0.0.1"), RTCP: rtcp}
	hA, hB := newReadyHandler(), newReadyHandler()
	a, err := p.mA.NewStream(ctx, cfg, hA)
	if err != nil {
		b.Fatal(err)
	}
	s, err := p.mB.NewStream(ctx, cfg, hB)
	if err != nil {
		b.Fatal(err)
	}
	var tA, tB [2]flow.Tuple
	for _, w := range []struct {
		h *readyHandler
		t *[2]flow.Tuple
	}{{hA, &tA}, {hB, &tB}} {
		select {
		case *w.t = <-w.h.ready:
		case err := <-w.h.errs:
			b.Fatal(err)
		}
	}
	point := func(s *mediastream.Stream, t [2]flow.Tuple) {
		if err := s.RTP().SetActiveDestination(t[0].Addr); err != nil {
			b.Fatal(err)
		}
		if s.RTCP() != nil {
			if err := s.RTCP().SetActiveDestination(t[1].Addr); err != nil {
				b.Fatal(err)
			}
		}
	}
	point(a, tB)
	point(s, tA)
	if dtls {
		if err := s.SetRemoteFingerprint(p.fpA); err != nil {
			b.Fatal(err)
		}
		if err := s.StartDTLS(dtlssrtp.Server); err != nil {
			b.Fatal(err)
		}
		if err := a.SetRemoteFingerprint(p.fpB); err != nil {
			b.Fatal(err)
		}
		if err := a.StartDTLS(dtlssrtp.Client); err != nil {
			b.Fatal(err)
		}
	}
	return reflowPair{a: a, b: s}
}

func (rp reflowPair) close() {
	var wg sync.WaitGroup
	for _, s := range []*mediastream.Stream{rp.a, rp.b} {
		wg.Add(1)
		go func() { defer wg.Done(); s.Close() }()
	}
	wg.Wait()
}

// receive starts a reader on the b side's RTP flow; got is closed by the
// first packet, every packet counts in rx.
func (rp reflowPair) receive(rx *counter) (got chan struct{}, done chan struct{}) {
	got, done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		first := true
		for {
			if _, _, err := rp.b.RTP().ReadFromAddrPort(buf); err != nil {
				return
			}
			if first {
				close(got)
				first = false
			}
			rx.add()
		}
	}()
	return got, done
}

// benchReflowSetup: two streams from NewStream to the first RTP packet
// received over DTLS-SRTP (time per pair in ns/op, and as ms/setup).
func benchReflowSetup(b *testing.B, rtcp bool) {
	p := newReflowPeers(b)
	defer p.close()
	b.ReportAllocs()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		rp := p.pair(b, rtcp, true)
		got, done := rp.receive(newCounter())
		total += firstPacket(b, start, func(pkt []byte) { rp.a.RTP().Write(pkt) }, got)
		rp.close()
		<-done
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/setup")
}

// benchReflowRate: packets/s from one stream to the other.
func benchReflowRate(b *testing.B, dtls bool) {
	p := newReflowPeers(b)
	defer p.close()
	rp := p.pair(b, false, dtls)
	rx := newCounter()
	got, done := rp.receive(rx)
	if dtls {
		firstPacket(b, time.Now(), func(pkt []byte) { rp.a.RTP().Write(pkt) }, got)
	}
	f := rp.a.RTP()
	measureRate(b, func(pkt []byte) error { _, err := f.Write(pkt); return err }, rx)
	rp.close()
	<-done
}
