package flowmanager_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/mediastream"
)

var (
	loop4 = netip.MustParseAddr("127.0.0.1")
	loop6 = netip.IPv6Loopback()
)

// recorder is a Handler that records events in order and checks that calls
// never overlap.
type recorder struct {
	ready   chan [2]flow.Tuple
	errs    chan error
	mu      sync.Mutex
	events  []string
	inCall  int
	overlap bool
}

func newRecorder() *recorder {
	return &recorder{ready: make(chan [2]flow.Tuple, 4), errs: make(chan error, 16)}
}

func (r *recorder) enter(ev string) {
	r.mu.Lock()
	r.inCall++
	if r.inCall > 1 {
		r.overlap = true
	}
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) leave() {
	r.mu.Lock()
	r.inCall--
	r.mu.Unlock()
}

func (r *recorder) OnReady(s *mediastream.Stream, rtp, rtcp flow.Tuple) {
	r.enter("ready")
	defer r.leave()
	select { // never block: a blocked handler would keep Done open
	case r.ready <- [2]flow.Tuple{rtp, rtcp}:
	default:
	}
}

func (r *recorder) OnError(s *mediastream.Stream, err error) {
	r.enter("error")
	defer r.leave()
	select {
	case r.errs <- err:
	default:
	}
}

func (r *recorder) waitReady(t testing.TB) [2]flow.Tuple {
	t.Helper()
	select {
	case tu := <-r.ready:
		return tu
	case err := <-r.errs:
		t.Fatalf("stream failed: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("stream not ready after 20 s")
	}
	return [2]flow.Tuple{}
}

func (r *recorder) waitError(t testing.TB, within time.Duration) error {
	t.Helper()
	select {
	case err := <-r.errs:
		return err
	case tu := <-r.ready:
		t.Fatalf("stream ready (%v) where an error was expected", tu)
	case <-time.After(within):
		t.Fatalf("no error within %v", within)
	}
	return nil
}

func newManager(t testing.TB, cfg flowmanager.Config) *flowmanager.Manager {
	t.Helper()
	m, err := flowmanager.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// readyStream creates a stream and waits for it to be ready.
func readyStream(t testing.TB, m *flowmanager.Manager, cfg mediastream.Config) (*mediastream.Stream, [2]flow.Tuple) {
	t.Helper()
	r := newRecorder()
	s, err := m.NewStream(context.Background(), cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	tu := r.waitReady(t)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// A failed test names what the stream reported after it was ready
		// (a refused permission, a lost allocation), which the failing
		// check itself may not see.
		for {
			select {
			case err := <-r.errs:
				t.Logf("stream %v reported: %v", tu[0], err)
			default:
				return
			}
		}
	})
	return s, tu
}

// connect points each stream's flows at the other's session tuples.
func connect(t testing.TB, a *mediastream.Stream, ta [2]flow.Tuple, b *mediastream.Stream, tb [2]flow.Tuple) {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.RTP().SetActiveDestination(tb[0].Addr))
	must(b.RTP().SetActiveDestination(ta[0].Addr))
	if a.RTCP() != nil && b.RTCP() != nil {
		must(a.RTCP().SetActiveDestination(tb[1].Addr))
		must(b.RTCP().SetActiveDestination(ta[1].Addr))
	}
}

func rtpPacket(seq uint16, size int) []byte {
	p := make([]byte, size)
	p[0], p[1] = 0x80, 0
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[8:], 0xCAFEF00D)
	for i := 12; i < size; i++ {
		p[i] = byte(i ^ int(seq))
	}
	return p
}

func rtcpPacket(ssrc uint32) []byte {
	// An empty receiver report: V=2, RC=0, PT=201, length=1.
	p := []byte{0x80, 201, 0, 1, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(p[4:], ssrc)
	return p
}

// expect reads from f until it gets want from wantFrom (the peer's session
// address). Packets sent before the path was open may be lost, so the sender
// resends until one arrives, bounded in count and time.
func expect(t testing.TB, send func() error, f *flow.Flow, want []byte, wantFrom netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 2048)
	for try := 0; try < 50; try++ {
		if err := send(); err != nil {
			t.Fatalf("send: %v", err)
		}
		f.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, from, err := f.ReadFromAddrPort(buf)
		if err != nil {
			continue
		}
		if !bytes.Equal(buf[:n], want) {
			t.Fatalf("%v flow got %d bytes %x, want %x", f.Component(), n, buf[:min(n, 16)], want[:16])
		}
		if wantFrom.IsValid() && from != wantFrom {
			t.Fatalf("%v flow got the packet from %v, want %v", f.Component(), from, wantFrom)
		}
		f.SetReadDeadline(time.Time{})
		return
	}
	al, _ := f.Allocation()
	t.Fatalf("%v flow received nothing after 50 sends (receiver stats %+v, allocation %+v)", f.Component(), f.Stats(), al)
}

// exchange sends RTP both ways (and RTCP, on the RTCP flows or multiplexed)
// and checks every packet arrives intact from the right address.
func exchange(t testing.TB, a *mediastream.Stream, ta [2]flow.Tuple, b *mediastream.Stream, tb [2]flow.Tuple, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		p := rtpPacket(uint16(i), 172)
		expect(t, func() error { _, err := a.RTP().Write(p); return err }, b.RTP(), p, ta[0].Addr)
		expect(t, func() error { _, err := b.RTP().Write(p); return err }, a.RTP(), p, tb[0].Addr)
	}
	ra, rb := a.RTCP(), b.RTCP()
	fromA, fromB := ta[1].Addr, tb[1].Addr
	if ra == nil {
		ra, rb, fromA, fromB = a.RTP(), b.RTP(), ta[0].Addr, tb[0].Addr
	}
	r := rtcpPacket(1)
	expect(t, func() error { _, err := ra.Write(r); return err }, rb, r, fromA)
	expect(t, func() error { _, err := rb.Write(r); return err }, ra, r, fromB)
}

// testLogger returns a logger that writes records at level and above to
// t's log (shown when the test fails) until t's cleanup, and drops what
// comes later: a server's goroutines may still log after the test ended.
// Created before the server, it sees the server's Close too.
func testLogger(t testing.TB, level slog.Level) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
