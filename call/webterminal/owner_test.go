package webterminal

import (
	"errors"
	"sync"
	"testing"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
	"github.com/reflow-go/reflow/internal/leak"
)

// byeCounter counts the Byes the core receives, per msisdn.
type byeCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (b *byeCounter) onMessage(msisdn string, _ Mode, in bool, m *pb.WebTerminalMessage) {
	if in && m.GetBye() != nil {
		b.mu.Lock()
		if b.n == nil {
			b.n = map[string]int{}
		}
		b.n[msisdn]++
		b.mu.Unlock()
	}
}

func (b *byeCounter) of(msisdn string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n[msisdn]
}

// A Bye from the other side is recorded by the core call as a remote
// hangup (Kind call.RemoteHangup, Err ErrRemoteHangup) and nothing is sent
// back; our own hangup is a local one and sends exactly one Bye; a hangup
// by the core itself is remote for both parties.
func TestRemoteByeRecordedAsRemote(t *testing.T) {
	leak.Check(t)
	var byes byeCounter
	core, addr := startCore(t, CoreConfig{OnMessage: byes.onMessage})
	a := dial(t, addr, "100", MultiPipe, "")
	b := dial(t, addr, "200", Pipe, "accept")

	c, in := establish(t, a, b, "200")
	if err := in.Hangup(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	reason(t, c, call.RemoteHangup, ErrRemoteHangup, "caller")
	reason(t, in, call.LocalHangup, nil, "callee")

	// The core hangs up: both ends record a remote hangup, neither sends Bye.
	c, in = establish(t, a, b, "200")
	if err := core.Hangup(c.ID()); err != nil {
		t.Fatal(err)
	}
	reason(t, c, call.RemoteHangup, ErrRemoteHangup, "caller")
	reason(t, in, call.RemoteHangup, ErrRemoteHangup, "callee")

	// A call ended by the caller, then one the callee places and ends: each
	// Bye reached the core before the other side's call ended.
	c, in = establish(t, a, b, "200")
	c.Hangup(ctxT(t))
	reason(t, in, call.RemoteHangup, ErrRemoteHangup, "callee")
	in2, err := b.Call(ctxT(t), "100") // Pipe is free again: its messages follow the above
	if err != nil {
		t.Fatal(err)
	}
	back := recv(t, a.rec.incoming, "call back")
	if err := back.Accept(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	b.rec.up(t, in2, "call back established")
	in2.Hangup(ctxT(t))
	reason(t, back, call.RemoteHangup, ErrRemoteHangup, "called back") // the core had the Bye before
	if n, m := byes.of("100"), byes.of("200"); n != 1 || m != 2 {
		t.Errorf("Byes received by the core: %d from 100, %d from 200; want 1 and 2 (only local hangups send Bye)", n, m)
	}
}

// An incoming call has one owner: the agent announces it once (OnIncoming),
// whoever answers it; the callee's Ringing reaches the caller's core call.
// When the media dies (the peer's DTLS association closes) the core ends the
// call with MediaLost and sends Bye, which the other side records as a
// remote hangup.
func TestIncomingOneOwner(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "", withSecurity(sdpx.DTLS))
	b := dial(t, addr, "200", Pipe, "ring+accept", withSecurity(sdpx.DTLS))

	for i := range 2 {
		c, err := a.Call(ctxT(t), "200")
		if err != nil {
			t.Fatal(err)
		}
		recv(t, a.rec.ringing, "Ringing reported by the caller's core call")
		a.rec.up(t, c, "established")
		in := recv(t, b.rec.incoming, "incoming")
		if n := b.rec.timesAnnounced(in.ID()); n != 1 {
			t.Fatalf("call %d announced %d times", i, n)
		}
		if n := a.rec.timesAnnounced(c.ID()); n != 0 {
			t.Fatalf("the caller's outgoing call announced %d times", n)
		}
		select {
		case x := <-b.rec.incoming:
			t.Fatalf("a second incoming call %s", x.ID())
		default:
		}
		if i == 0 {
			c.Hangup(ctxT(t))
			reason(t, in, call.RemoteHangup, ErrRemoteHangup, "callee")
			continue
		}
		// The callee's media dies without a word on the stream.
		flows(t, c.Stream(), in.Stream(), "caller -> callee")
		in.Stream().Close()
		reason(t, c, call.MediaLost, nil, "caller (media lost)")
		reason(t, in, call.RemoteHangup, ErrRemoteHangup, "callee (caller's Bye)")
	}
}

// A terminal call renegotiates like any core call: Renegotiate sends an
// Offer on the stream, the core routes it, the other terminal answers, and
// both sides report the renegotiation.
func TestTerminalRenegotiates(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "")
	b := dial(t, addr, "200", Pipe, "accept")
	c, in := establish(t, a, b, "200")
	if err := c.Renegotiate(ctxT(t), call.Change{Direction: sdpx.SendOnly}); err != nil {
		t.Fatal(err)
	}
	b.rec.renegotiated(t, in, "callee renegotiated")
	st, _ := in.MediaState()
	if st.Direction != sdpx.RecvOnly {
		t.Fatalf("callee's direction %v, want recvonly (held)", st.Direction)
	}
	if err := c.Renegotiate(ctxT(t), call.Change{Direction: sdpx.SendRecv, NewMedia: true}); err != nil {
		t.Fatal(err)
	}
	flows(t, c.Stream(), in.Stream(), "caller's new stream -> callee")
	flows(t, in.Stream(), c.Stream(), "callee -> caller's new stream")
	c.Hangup(ctxT(t))
	reason(t, in, call.RemoteHangup, ErrRemoteHangup, "callee")
	if !errors.Is(in.Reason(), ErrRemoteHangup) {
		t.Fatal(in.Reason())
	}
}

// A re-offer the core call cannot accept (here unparsable SDP) ends the call
// with the refusal as its reason and Bye sent (the API has no other way to
// refuse); the other side records a remote hangup. Closing the agent ends a
// terminal call as a local hangup with Bye too.
func TestRefusalsAndAgentClose(t *testing.T) {
	leak.Check(t)
	core, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "")
	b := dial(t, addr, "200", MultiPipe, "accept")
	c, in := establish(t, a, b, "200")
	core.Send("200", &pb.WebTerminalMessage{CallId: in.ID(), Message: &pb.WebTerminalMessage_Offer{
		Offer: &pb.Offer{Sdp: "not sdp", Msisdn: "100"}}})
	reason(t, in, call.Malformed, nil, "callee refusing the re-offer")
	reason(t, c, call.RemoteHangup, ErrRemoteHangup, "caller")

	c, in = establish(t, a, b, "200")
	if err := b.Agent().Close(); err != nil {
		t.Fatal(err)
	}
	reason(t, in, call.LocalHangup, nil, "callee (agent closed)")
	reason(t, c, call.RemoteHangup, ErrRemoteHangup, "caller")
	if _, err := Dial(ctxT(t), Config{Target: addr, MSISDN: "300"}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Dial without an agent: %v", err)
	}
}

// Two terminals on one agent call each other: the call_id is the caller's
// core call ID, so the callee's core call gets an ID of its own (CallID
// still tells the call_id); the agent announces only the incoming side, once.
func TestSharedAgent(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	r := newRec("accept")
	agent := newAgent(t, sdpx.Plain, r)
	shared := func(c *Config) { c.Agent = agent }
	a := dial(t, addr, "100", MultiPipe, "", shared)
	b := dial(t, addr, "200", MultiPipe, "", shared)
	c, err := a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatal(err)
	}
	r.up(t, c, "established")
	in := recv(t, r.incoming, "incoming")
	if in.ID() == c.ID() || CallID(in) != c.ID() || CallID(c) != c.ID() || TerminalOf(in) != b.Terminal || TerminalOf(c) != a.Terminal {
		t.Fatalf("callee's call %s (call_id %s) on %p, caller's %s", in.ID(), CallID(in), TerminalOf(in), c.ID())
	}
	if n, m := r.timesAnnounced(in.ID()), r.timesAnnounced(c.ID()); n != 1 || m != 0 {
		t.Fatalf("announced %d times (callee) and %d (caller)", n, m)
	}
	if n := len(agent.Calls()); n != 2 {
		t.Fatalf("agent has %d calls", n)
	}
	in.Hangup(ctxT(t))
	reason(t, c, call.RemoteHangup, ErrRemoteHangup, "caller")
}

// Both terminals re-offer at once (the core passes each Offer on): each
// side's crossing Offer wins over its own (the terminal is the polite peer),
// both Renegotiate calls retry after the RFC 3261 glare timer and succeed,
// and the media follows the last exchange (new streams on both sides).
func TestTerminalGlare(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "")
	b := dial(t, addr, "200", Pipe, "accept")
	c, in := establish(t, a, b, "200")
	errs := make(chan error, 2)
	for _, x := range []*call.Call{c, in} {
		go func() { errs <- x.Renegotiate(ctxT(t), call.Change{Direction: sdpx.SendRecv, NewMedia: true}) }()
	}
	for range 2 {
		if err := recv(t, errs, "Renegotiate"); err != nil {
			t.Fatal(err)
		}
	}
	if c.State() != call.Active || in.State() != call.Active {
		t.Fatalf("calls %v / %v", c.Reason(), in.Reason())
	}
	flows(t, c.Stream(), in.Stream(), "caller -> callee")
	flows(t, in.Stream(), c.Stream(), "callee -> caller")
	c.Hangup(ctxT(t))
	reason(t, in, call.RemoteHangup, ErrRemoteHangup, "callee")
}
