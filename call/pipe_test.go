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

// pipeSig is an in-memory Signaling: each method delivers straight into the
// other agent's call with the same id. mangle, when set, rewrites what is sent.
type pipeSig struct {
	local, remote *Agent
	peer          *pipeSig
	id            string
	mu            sync.Mutex
	mangle        func(kind string, sdp []byte) []byte
	sent          []string
}

func (s *pipeSig) rewrite(kind string, b []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, kind)
	if s.mangle != nil {
		return s.mangle(kind, b)
	}
	return b
}

func (s *pipeSig) self() *Call { return s.local.Call(s.id) }

func (s *pipeSig) SendOffer(ctx context.Context, offer []byte) error {
	offer = s.rewrite("offer", offer)
	rc := s.remote.Call(s.id)
	if rc == nil {
		_, err := s.remote.Incoming(ctx, s.peer, Params{ID: s.id, Remote: Party{URI: "mem:caller"}}, offer)
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
	s.remote.Call(s.id).RemoteRinging()
	return nil
}

func (s *pipeSig) SendAnswer(_ context.Context, answer []byte) error {
	answer = s.rewrite("answer", answer)
	if rc := s.remote.Call(s.id); rc != nil {
		rc.RemoteAnswer(answer)
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

// pair is two agents wired by pipeSig.
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
	p.sa = &pipeSig{local: p.a, remote: p.b, id: "call-1"}
	p.sb = &pipeSig{local: p.b, remote: p.a, id: "call-1", peer: p.sa}
	p.sa.peer = p.sb
	return p
}

// connect dials from a and accepts on b.
func (p *pair) connect(t *testing.T, ctx context.Context) (ca, cb *Call) {
	t.Helper()
	ca, err := p.a.Dial(ctx, p.sa, Params{ID: "call-1", Remote: Party{URI: "mem:callee"}})
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
	if ca.State() != Active || cb.State() != Active {
		t.Fatalf("states %v %v", ca.State(), cb.State())
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
