package call

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/internal/udpgate"
	"github.com/reflow-go/reflow/natmode"
)

// TestTrickleOurCandidates: a caller in TURN-UDP mode with
// MediaConfig.Trickle sends its offer before its TURN allocation exists
// (a=ice-options:trickle, its host candidate, no relayed one, no
// a=end-of-candidates), the call connects on the host candidates, and the
// relayed candidate is trickled once the allocation is made (the TURN
// server is held back until the offer was sent), followed by the end of
// candidates; media still flows.
func TestTrickleOurCandidates(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	srv, err := testserver.StartTURN(testserver.TURNConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g := udpgate.Start(t, srv.UDP)

	m, err := flowmanager.New(flowmanager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	base := MediaConfig{LocalAddr: lo, Security: sdpx.DTLS, RTCPMux: true, ICE: true, FullICE: true, Trickle: true}
	ma := base
	// The allocation waits behind the gate until the call is up: give it
	// more than the default 10 s, in case that takes long on a loaded machine.
	ma.NAT = natmode.Config{Mode: natmode.TURNUDP, Server: g.Addr(), Username: testserver.DefaultUsername, Password: testserver.DefaultPassword,
		Timeout: 30 * time.Second}
	ea, eb := newEvents(), newEvents()
	a, err := New(Config{Manager: m, Media: ma, Handler: ea.handler()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{Manager: m, Media: base, Handler: eb.handler()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sa, sb := newPipeSigs(a, b, "trickle-1")

	ca, err := a.Dial(ctx, sa, Params{ID: "trickle-1"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	descs, cands, _ := sa.snapshot()
	if len(descs) != 1 {
		t.Fatalf("descriptions sent: %d", len(descs))
	}
	offer := descs[0]
	if !strings.Contains(offer, "a=ice-options:trickle") || !strings.Contains(offer, "typ host") ||
		strings.Contains(offer, "typ relay") || strings.Contains(offer, "a=end-of-candidates") {
		t.Fatalf("trickle offer:\n%s", offer)
	}
	if len(cands) != 0 {
		t.Fatalf("candidates trickled before the allocation: %v", cands)
	}
	var cb *Call
	select {
	case cb = <-eb.incoming:
	case <-ctx.Done():
		t.Fatal("no incoming call")
	}
	if err := cb.Accept(ctx); err != nil {
		t.Fatalf("accept: %v", err)
	}
	if d, _, _ := sb.snapshot(); len(d) != 1 || !strings.Contains(d[0], "a=ice-options:trickle") {
		t.Fatalf("answer: %q", d)
	}
	// ICE on host candidates, then DTLS: wait for the keys (bounded by ctx)
	// rather than for packets within bothWays' short window, which a loaded
	// machine may not give a full ICE agent.
	for _, c := range []*Call{ca, cb} {
		if _, err := c.Stream().WaitKeyed(ctx); err != nil {
			t.Fatalf("call %s not keyed on host candidates: %v", c.ID(), err)
		}
	}
	bothWays(t, ca, cb)
	if _, _, ended := sa.snapshot(); ended {
		t.Fatal("end of candidates before the allocation")
	}

	g.Open()
	sa.waitEnd(t, ctx)
	_, cands, _ = sa.snapshot()
	relayed := 0
	for _, c := range cands {
		if !strings.HasPrefix(c, "candidate:") {
			t.Errorf("trickled candidate without its prefix: %q", c)
		}
		if strings.Contains(c, " typ relay ") {
			relayed++
		}
		if strings.Contains(c, " typ host") {
			t.Errorf("host candidate trickled again: %q", c)
		}
	}
	if relayed != 1 {
		t.Fatalf("trickled candidates: %q", cands)
	}
	// The answerer's stream (no NAT step) was ready at once or soon after:
	// its end of candidates is in its answer or trickled.
	if d, _, _ := sb.snapshot(); !strings.Contains(d[0], "a=end-of-candidates") {
		sb.waitEnd(t, ctx)
	}
	bothWays(t, ca, cb)
	if ca.State() != Active || cb.State() != Active {
		t.Fatalf("states %v %v", ca.State(), cb.State())
	}
}

// TestTrickleOffNoSender: with MediaConfig.Trickle but a Signaling that
// cannot send candidates, descriptions wait for the stream and carry every
// candidate and a=end-of-candidates.
func TestTrickleOffNoSender(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	mc := MediaConfig{Security: sdpx.DTLS, RTCPMux: true, ICE: true, FullICE: true, Trickle: true}
	p := newPair(t, mc, mc)
	p.sa.noCandidates, p.sb.noCandidates = true, true
	var offer []byte
	p.sa.mangle = func(kind string, b []byte) []byte {
		if kind == "offer" {
			offer = append([]byte(nil), b...)
		}
		return b
	}
	ca, cb := p.connect(t, ctx)
	if strings.Contains(string(offer), "a=ice-options:trickle") || !strings.Contains(string(offer), "a=end-of-candidates") {
		t.Fatalf("offer:\n%s", offer)
	}
	bothWays(t, ca, cb)
}
