package call

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/mediastream"
)

// pipeSig is an in-memory Signaling and CandidateSender: each method
// delivers straight into the other agent's call with the same id.
//
// With delayed set, the callee's answer carries its offer and the caller's
// answer comes straight back, as SIP carries a delayed offer (the 200 and
// the ACK); a caller that cannot use that offer ends the callee's call with
// a hangup (SIP: ACK, then BYE), and drop (on the caller's side) loses its
// answer. mangle, when set, rewrites what is sent; noCandidates hands out
// this side as a plain Signaling, without CandidateSender.
type pipeSig struct {
	local, remote *Agent
	peer          *pipeSig
	id            string
	delayed       bool
	noCandidates  bool

	mu     sync.Mutex
	mangle func(kind string, sdp []byte) []byte
	drop   bool
	last   map[string][]byte // the last body sent of each kind
	descs  []string          // offers and answers sent, in order
	cands  []string          // candidates trickled, in order
	ended  bool              // SendEndOfCandidates was called
	notify chan struct{}
}

// newPipeSigs wires two agents' calls with id.
func newPipeSigs(a, b *Agent, id string) (sa, sb *pipeSig) {
	sa = &pipeSig{local: a, remote: b, id: id, notify: make(chan struct{}, 64)}
	sb = &pipeSig{local: b, remote: a, id: id, notify: make(chan struct{}, 64), peer: sa}
	sa.peer = sb
	return sa, sb
}

// rewrite applies mangle to what is sent of kind and records it.
func (s *pipeSig) rewrite(kind string, b []byte) []byte {
	s.mu.Lock()
	if s.mangle != nil {
		b = s.mangle(kind, b)
	}
	if s.last == nil {
		s.last = make(map[string][]byte)
	}
	s.last[kind] = append([]byte(nil), b...)
	if kind == "offer" || kind == "answer" {
		s.descs = append(s.descs, string(b))
	}
	s.mu.Unlock()
	s.wake()
	return b
}

func (s *pipeSig) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// lastSent is the last body of kind sent; did reports whether any was.
func (s *pipeSig) lastSent(kind string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[kind]
}

func (s *pipeSig) did(kind string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.last[kind]
	return ok
}

// sig is this side as handed to the core.
func (s *pipeSig) sig() Signaling {
	if s.noCandidates {
		return plainSig{s}
	}
	return s
}

func (s *pipeSig) self() *Call { return s.local.Call(s.id) }

func (s *pipeSig) SendOffer(ctx context.Context, offer []byte) error {
	offer = s.rewrite("offer", offer)
	rc := s.remote.Call(s.id)
	if rc == nil {
		_, err := s.remote.Incoming(ctx, s.peer.sig(), Params{ID: s.id, Remote: Party{URI: "mem:caller"}}, offer)
		if err != nil {
			var r Reason
			errors.As(err, &r)
			s.self().RemoteReject(r)
		}
		return nil
	}
	ans, err := rc.RemoteOffer(ctx, offer)
	if err != nil {
		var r Reason
		errors.As(err, &r)
		s.self().RemoteReject(r)
		return nil
	}
	return s.self().RemoteAnswer(s.peer.rewrite("reanswer", ans))
}

func (s *pipeSig) SendRinging(context.Context) error {
	s.rewrite("ringing", nil)
	if rc := s.remote.Call(s.id); rc != nil {
		rc.RemoteRinging()
	}
	return nil
}

// SendAnswer answers the caller; with delayed, the body is the callee's
// offer and the caller's answer (the ACK) comes straight back.
func (s *pipeSig) SendAnswer(ctx context.Context, answer []byte) error {
	answer = s.rewrite("answer", answer)
	rc := s.remote.Call(s.id)
	if !s.delayed {
		if rc != nil {
			rc.RemoteAnswer(answer) // the peer's trouble with it is not a sending error
		}
		return nil
	}
	if rc == nil {
		return ErrClosed
	}
	ack, err := rc.RemoteOffer(ctx, answer)
	if err != nil {
		// The caller's call ended: it ACKs and sends BYE.
		s.self().RemoteHangup(Reason{Kind: RemoteHangup, Text: "BYE"})
		return nil
	}
	ack = s.peer.rewrite("ack", ack)
	s.peer.mu.Lock()
	drop := s.peer.drop
	s.peer.mu.Unlock()
	if !drop {
		s.self().RemoteAnswer(ack)
	}
	return nil
}

func (s *pipeSig) SendReject(_ context.Context, r Reason) error {
	s.rewrite("reject", nil)
	if rc := s.remote.Call(s.id); rc != nil {
		rc.RemoteReject(r)
	}
	return nil
}

func (s *pipeSig) SendHangup(_ context.Context, r Reason) error {
	s.rewrite("hangup", nil)
	if rc := s.remote.Call(s.id); rc != nil {
		rc.RemoteHangup(Reason{Kind: RemoteHangup})
	}
	return nil
}

func (s *pipeSig) SendCandidate(_ context.Context, v string) error {
	s.mu.Lock()
	s.cands = append(s.cands, v)
	s.mu.Unlock()
	s.wake()
	if rc := s.remote.Call(s.id); rc != nil {
		return rc.RemoteCandidate(v)
	}
	return nil
}

func (s *pipeSig) SendEndOfCandidates(context.Context) error {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
	s.wake()
	if rc := s.remote.Call(s.id); rc != nil {
		return rc.RemoteEndOfCandidates()
	}
	return nil
}

// snapshot returns the descriptions and candidates sent so far.
func (s *pipeSig) snapshot() (descs, cands []string, ended bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.descs...), append([]string(nil), s.cands...), s.ended
}

// waitEnd waits until the end of candidates was sent.
func (s *pipeSig) waitEnd(t *testing.T, ctx context.Context) {
	t.Helper()
	for {
		if _, _, ended := s.snapshot(); ended {
			return
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			t.Fatal("no end of candidates trickled")
		}
	}
}

// plainSig is a pipeSig without its CandidateSender methods.
type plainSig struct{ p *pipeSig }

func (s plainSig) SendOffer(ctx context.Context, b []byte) error  { return s.p.SendOffer(ctx, b) }
func (s plainSig) SendRinging(ctx context.Context) error          { return s.p.SendRinging(ctx) }
func (s plainSig) SendAnswer(ctx context.Context, b []byte) error { return s.p.SendAnswer(ctx, b) }
func (s plainSig) SendReject(ctx context.Context, r Reason) error { return s.p.SendReject(ctx, r) }
func (s plainSig) SendHangup(ctx context.Context, r Reason) error { return s.p.SendHangup(ctx, r) }

// events records an agent's handler calls.
type events struct {
	mu       sync.Mutex
	incoming chan *Call
	states   []State
	reasons  []Reason
	media    []MediaState
	changed  chan struct{}
}

func newEvents() *events {
	return &events{incoming: make(chan *Call, 4), changed: make(chan struct{}, 64)}
}

func (e *events) handler() Handler {
	return HandlerFuncs{
		Incoming: func(c *Call) { e.incoming <- c },
		State: func(c *Call, from, to State, r Reason) {
			e.mu.Lock()
			e.states = append(e.states, to)
			e.reasons = append(e.reasons, r)
			e.mu.Unlock()
			e.changed <- struct{}{}
		},
		Media: func(c *Call, m MediaState) {
			e.mu.Lock()
			e.media = append(e.media, m)
			e.mu.Unlock()
			e.changed <- struct{}{}
		},
	}
}

// pair is two agents wired by pipeSig (a calls b).
type pair struct {
	a, b   *Agent
	ea, eb *events
	sa, sb *pipeSig
}

func newPair(t *testing.T, ma, mb MediaConfig) *pair {
	t.Helper()
	m, err := flowmanager.New(flowmanager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	p := &pair{ea: newEvents(), eb: newEvents()}
	if ma.LocalAddr == (netip.Addr{}) {
		ma.LocalAddr = netip.MustParseAddr("127.0.0.1")
	}
	if mb.LocalAddr == (netip.Addr{}) {
		mb.LocalAddr = netip.MustParseAddr("127.0.0.1")
	}
	if p.a, err = New(Config{Manager: m, Media: ma, Handler: p.ea.handler()}); err != nil {
		t.Fatal(err)
	}
	if p.b, err = New(Config{Manager: m, Media: mb, Handler: p.eb.handler()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.a.Close(); p.b.Close() })
	p.sa, p.sb = newPipeSigs(p.a, p.b, "call-1")
	return p
}

// connect dials from a and accepts on b.
func (p *pair) connect(t *testing.T, ctx context.Context) (ca, cb *Call) {
	t.Helper()
	ca, cb = p.dialAccept(t, ctx)
	if ca.State() != Active || cb.State() != Active {
		t.Fatalf("states %v %v", ca.State(), cb.State())
	}
	return ca, cb
}

// dialAccept is connect without the check that both calls are still
// active: for calls whose media is meant to fail at once (and may already
// have ended them when Accept returns).
func (p *pair) dialAccept(t *testing.T, ctx context.Context) (ca, cb *Call) {
	t.Helper()
	ca, err := p.a.Dial(ctx, p.sa.sig(), Params{ID: "call-1", Remote: Party{URI: "mem:callee"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	select {
	case cb = <-p.eb.incoming:
	case <-ctx.Done():
		t.Fatal("no incoming call")
	}
	if err := cb.Ring(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cb.Accept(ctx); err != nil {
		t.Fatalf("accept: %v", err)
	}
	return ca, cb
}

// rtpPacket returns a minimal RTP packet with sequence number seq.
func rtpPacket(seq uint16) []byte {
	return []byte{0x80, 0, byte(seq >> 8), byte(seq), 0, 0, 0, 1, 0, 0, 0, 42, 0xde, 0xad, 0xbe, 0xef}
}

// flows sends RTP from one stream until the other receives it, bounded by
// 100 attempts of 30 ms reads; it reports whether a packet got through.
func flows(from, to *mediastream.Stream) bool {
	buf := make([]byte, 1500)
	for i := range 100 {
		if _, err := from.RTP().Write(rtpPacket(uint16(i))); err != nil && errors.Is(err, mediastream.ErrClosed) {
			return false
		}
		to.RTP().SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		n, _, err := to.RTP().ReadFromAddrPort(buf)
		if err == nil && n == 16 && buf[12] == 0xde {
			return true
		}
	}
	return false
}

// bothWays checks that RTP flows in both directions.
func bothWays(t *testing.T, ca, cb *Call) {
	t.Helper()
	if !flows(ca.Stream(), cb.Stream()) {
		t.Error("no RTP from caller to callee")
	}
	if !flows(cb.Stream(), ca.Stream()) {
		t.Error("no RTP from callee to caller")
	}
}

// waitDone waits for a call to end.
func waitDone(t *testing.T, ctx context.Context, c *Call) Reason {
	t.Helper()
	select {
	case <-c.Done():
		return c.Reason()
	case <-ctx.Done():
		t.Fatalf("call %s did not end (state %v)", c.ID(), c.State())
		return Reason{}
	}
}
