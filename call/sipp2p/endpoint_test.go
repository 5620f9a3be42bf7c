package sipp2p

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
)

func TestListenAllAndProxy(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := newProxy(t)
	b := newEP(t, Config{URI: "sip:bob@example.test", Advertise: loopback}, call.MediaConfig{})
	bound, err := b.StartListening(ctx, UDP, netip.MustParseAddrPort("0.0.0.0:0"))
	if err != nil {
		t.Fatal(err)
	}
	if !bound.Addr().IsUnspecified() || bound.Port() == 0 {
		t.Fatalf("bound %v", bound)
	}
	a := newEP(t, Config{URI: "sip:alice@example.test", OutboundProxy: p.addr}, call.MediaConfig{})
	a.listen(t, UDP)
	target := "sip:bob@127.0.0.1:" + itoa(bound.Port())

	if err := a.SendMessage(ctx, target, "text/plain", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-b.messages:
		if string(m.Body) != "hello" || m.ContentType != "text/plain" || !strings.Contains(m.From, "alice") {
			t.Errorf("message %+v", m)
		}
	case <-ctx.Done():
		t.Fatal("no message")
	}

	c, err := a.Call(ctx, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	cb := b.answer(t, ctx)
	waitState(t, ctx, c, call.Active)
	bothWays(t, c, cb)
	if err := cb.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if r := waitDone(t, ctx, c); r.Kind != call.RemoteHangup {
		t.Errorf("caller reason %v", r)
	}
	got := p.requests()
	if len(got) != 2 || !strings.HasPrefix(got[0], "MESSAGE ") || !strings.HasPrefix(got[1], "INVITE ") {
		t.Errorf("proxy saw %v", got)
	}
	b.mu.Lock()
	states := slices.Clone(b.states)
	b.mu.Unlock()
	if !slices.Equal(states, []State{Establishing, Established}) {
		t.Errorf("states %v", states)
	}
}

func itoa(p uint16) string {
	return strings.TrimPrefix(netip.AddrPortFrom(netip.IPv4Unspecified(), p).String(), "0.0.0.0:")
}

func TestModes(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in := newEP(t, Config{Mode: InboundOnly}, call.MediaConfig{})
	target := in.listen(t, TCP)
	if _, err := in.Call(ctx, target, nil); !errors.Is(err, ErrOutboundDisabled) {
		t.Errorf("inbound-only call: %v", err)
	}
	out := newEP(t, Config{Mode: OutboundOnly, Transport: TCP}, call.MediaConfig{})
	if _, err := out.StartListening(ctx, TCP, netip.AddrPortFrom(loopback, 0)); !errors.Is(err, ErrInboundDisabled) {
		t.Errorf("outbound-only listen: %v", err)
	}
	c, err := out.Call(ctx, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	cb := in.answer(t, ctx)
	waitState(t, ctx, c, call.Active)
	bothWays(t, c, cb)
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitDone(t, ctx, cb)
	if out.State() != Established {
		t.Errorf("outbound-only state %v", out.State())
	}
	out.Close()
	if out.State() != Terminated {
		t.Errorf("closed state %v", out.State())
	}
}

func TestCancelAndReject(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := newEP(t, Config{}, call.MediaConfig{})
	b := newEP(t, Config{}, call.MediaConfig{})
	a.listen(t, UDP)
	target := b.listen(t, UDP)

	// CANCEL while ringing.
	c, err := a.Call(ctx, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	cb := <-b.incoming
	if err := cb.Ring(ctx); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, call.Ringing)
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if r := waitDone(t, ctx, cb); r.Kind != call.Canceled {
		t.Errorf("callee reason %+v", r)
	}

	// Rejections map to reasons.
	for _, tc := range []struct {
		r    call.Reason
		kind call.Kind
		code int
	}{
		{call.Reason{Kind: call.Busy}, call.Busy, 486},
		{call.Reason{}, call.Declined, 603},
		{call.Reason{Kind: call.Unavailable, Code: 480}, call.Unavailable, 480},
	} {
		c, err := a.Call(ctx, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		cb := <-b.incoming
		if err := cb.Reject(ctx, tc.r); err != nil {
			t.Fatal(err)
		}
		if r := waitDone(t, ctx, c); r.Kind != tc.kind || r.Code != tc.code {
			t.Errorf("reject %+v: caller reason %+v", tc.r, r)
		}
	}

	// An unacceptable offer is refused with 488 before the application sees it.
	c, err = a.Call(ctx, target, &call.MediaConfig{LocalAddr: loopback, Codecs: []sdpx.Codec{{PT: 18, Name: "G729", Rate: 8000}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := waitDone(t, ctx, c); r.Kind != call.NotAcceptable || r.Code != 488 {
		t.Errorf("unacceptable offer: %+v", r)
	}
	select {
	case c := <-b.incoming:
		t.Errorf("callee saw %s", c.ID())
	default:
	}
}

func TestCallSilentPeer(t *testing.T) {
	leak.Check(t)
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	a := newEP(t, Config{}, call.MediaConfig{})
	a.listen(t, UDP)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = a.Call(ctx, "sip:nobody@"+silent.LocalAddr().String(), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	a.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("call and close took %v", d)
	}
}
