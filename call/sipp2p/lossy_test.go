package sipp2p

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
)

// lossyPC sits between an endpoint and its UDP socket and loses, for each
// INVITE transaction (Call-ID and CSeq), the first 2xx the endpoint sends and
// the first ACK it receives.
type lossyPC struct {
	net.PacketConn
	mu      sync.Mutex
	seen    map[string]bool
	dropped map[string]int // "2xx" and "ACK"
}

func newLossy(pc net.PacketConn) *lossyPC {
	return &lossyPC{PacketConn: pc, seen: make(map[string]bool), dropped: make(map[string]int)}
}

// lose reports whether b is the first message of kind for its transaction.
func (l *lossyPC) lose(b []byte, outgoing bool) bool {
	m, err := sip.ParseMessage(append([]byte(nil), b...))
	if err != nil || m.CallID() == nil || m.CSeq() == nil || m.CSeq().MethodName != sip.INVITE && m.CSeq().MethodName != sip.ACK {
		return false
	}
	kind := ""
	switch m := m.(type) {
	case *sip.Response:
		if outgoing && m.IsSuccess() {
			kind = "2xx"
		}
	case *sip.Request:
		if !outgoing && m.IsAck() {
			kind = "ACK"
		}
	}
	if kind == "" {
		return false
	}
	key := kind + " " + m.CallID().Value() + " " + itoa(uint16(m.CSeq().SeqNo))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[key] {
		return false
	}
	l.seen[key] = true
	l.dropped[kind]++
	return true
}

func (l *lossyPC) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := l.PacketConn.ReadFrom(b)
		if err != nil || !l.lose(b[:n], false) {
			return n, a, err
		}
	}
}

func (l *lossyPC) WriteTo(b []byte, a net.Addr) (int, error) {
	if l.lose(b, true) {
		return len(b), nil
	}
	return l.PacketConn.WriteTo(b, a)
}

func (l *lossyPC) drops() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return map[string]int{"2xx": l.dropped["2xx"], "ACK": l.dropped["ACK"]}
}

// TestLossyUDP: both endpoints lose the first 2xx they send and the first
// ACK they receive of every INVITE transaction; calls and re-INVITEs both
// ways still complete: the UAS retransmits its 2xx (RFC 3261 §13.3.1.4) and
// the UAC acknowledges each retransmission again (§13.2.2.4).
func TestLossyUDP(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var la, lb *lossyPC
	cfg := Config{T1: 50 * time.Millisecond, T2: 200 * time.Millisecond}
	a := newEP(t, cfg, call.MediaConfig{Security: sdpx.SDES})
	b := newEP(t, cfg, call.MediaConfig{Security: sdpx.SDES})
	a.wrapPC = func(pc net.PacketConn) net.PacketConn { la = newLossy(pc); return la }
	b.wrapPC = func(pc net.PacketConn) net.PacketConn { lb = newLossy(pc); return lb }
	a.listen(t, UDP)
	target := b.listen(t, UDP)

	start := time.Now()
	c, err := a.Call(ctx, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	cb := b.answer(t, ctx)
	waitState(t, ctx, c, call.Active)
	t.Logf("call set up in %v despite the losses", time.Since(start))
	bothWays(t, c, cb)
	if got := c.Signaling().(*dialog).reacks.Load(); got == 0 {
		t.Error("the caller never acknowledged a retransmitted 2xx")
	}
	// re-INVITE from the callee, then from the caller.
	if err := cb.Renegotiate(ctx, call.Change{Direction: sdpx.SendOnly}); err != nil {
		t.Fatal(err)
	}
	if err := c.Renegotiate(ctx, call.Change{NewMedia: true}); err != nil {
		t.Fatal(err)
	}
	if err := cb.Renegotiate(ctx, call.Change{Direction: sdpx.SendRecv}); err != nil {
		t.Fatal(err)
	}
	bothWays(t, c, cb)
	// The callee's re-INVITEs are answered once the retransmitted 2xx came;
	// the caller loses the ACK and retransmits again: the callee re-ACKs.
	for cb.Signaling().(*dialog).reacks.Load() < 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("the callee acknowledged %d retransmitted 2xx to its re-INVITEs, want 2", cb.Signaling().(*dialog).reacks.Load())
		case <-time.After(5 * time.Millisecond): // bounded poll of the dialog's counter
		}
	}
	da, db := la.drops(), lb.drops()
	t.Logf("lost by the caller: %v, by the callee: %v", da, db)
	// Each side answered two INVITE transactions: one 2xx and one ACK lost each.
	if db["2xx"] != 2 || db["ACK"] != 2 || da["2xx"] != 2 || da["ACK"] != 2 {
		t.Errorf("losses: caller %v callee %v, want 2 2xx and 2 ACKs each", da, db)
	}
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitDone(t, ctx, cb)
}
