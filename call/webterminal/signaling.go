package webterminal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/reflow-go/reflow/call"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
)

// signal is the call.Signaling of one call carried by a terminal's
// registration stream: what the call core sends becomes a message on the
// stream; what the stream brings for the call is fed into the core call by
// the terminal's reader (Terminal.dispatch).
type signal struct {
	t      *Terminal
	s      *session
	id     string // call_id on the wire (on Pipe a local name)
	coreID string // the core call's ID: id, unless the agent already had a call with it
	peer   string // the other party's msisdn
	to     string // the msisdn of our initial Offer (the callee; ours for a takeover)

	mu           sync.Mutex
	cc           *call.Call // nil until Dial or Incoming returned
	gone         bool       // never became a call (Dial or Incoming failed)
	transferring bool       // Action{ToPhone} sent
	offered      bool       // our initial Offer is out
}

var _ call.Signaling = (*signal)(nil)

// call returns the core call, also while Dial or Incoming has not returned
// it yet (the agent knows it by then), or nil.
func (g *signal) call() *call.Call {
	g.mu.Lock()
	cc := g.cc
	g.mu.Unlock()
	if cc == nil {
		if x := g.t.agent.Call(g.coreID); x != nil && x.Signaling() == call.Signaling(g) {
			return x
		}
	}
	return cc
}

func (g *signal) setCall(cc *call.Call) {
	g.mu.Lock()
	g.cc = cc
	g.mu.Unlock()
}

// ended reports whether the call is over (or never was); the terminal then
// forgets it.
func (g *signal) ended() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gone {
		return true
	}
	if g.cc == nil {
		return false
	}
	select {
	case <-g.cc.Done():
		return true
	default:
		return false
	}
}

func (g *signal) isTransferring() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.transferring
}

// send queues m for the call on its stream, failing when the stream is gone.
func (g *signal) send(m *pb.WebTerminalMessage) error {
	if err := g.s.ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrStreamLost, err)
	}
	m.CallId = g.id
	g.t.send(g.s, m)
	return nil
}

func byeMessage() *pb.WebTerminalMessage {
	return &pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Bye{Bye: &pb.Bye{}}}
}

// SendOffer implements call.Signaling: Offer{sdp, msisdn}, the callee's
// msisdn for the initial offer (ours for a takeover), ours for a re-offer.
func (g *signal) SendOffer(_ context.Context, offer []byte) error {
	g.mu.Lock()
	to := g.t.cfg.MSISDN
	if !g.offered {
		to, g.offered = g.to, true
	}
	g.mu.Unlock()
	return g.send(&pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Offer{Offer: &pb.Offer{Sdp: string(offer), Msisdn: to}}})
}

// SendRinging implements call.Signaling: Ringing{}.
func (g *signal) SendRinging(context.Context) error {
	return g.send(&pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Ringing{Ringing: &pb.Ringing{}}})
}

// SendAnswer implements call.Signaling: Answer{sdp}.
func (g *signal) SendAnswer(_ context.Context, answer []byte) error {
	return g.send(&pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Answer{Answer: &pb.Answer{Sdp: string(answer)}}})
}

// SendReject implements call.Signaling: Bye{} (the API carries no reason).
func (g *signal) SendReject(context.Context, call.Reason) error { return g.send(byeMessage()) }

// SendHangup implements call.Signaling: Bye{} (the API carries no reason).
func (g *signal) SendHangup(context.Context, call.Reason) error { return g.send(byeMessage()) }

// onBye records the other side's Bye on the core call as what it means:
// a refusal of our unanswered call (Declined, ErrRejected), the caller
// giving up on an unanswered incoming call (Canceled), else a remote hangup.
func (g *signal) onBye(cc *call.Call) {
	switch cc.State() {
	case call.Offering, call.Ringing:
		cc.RemoteReject(call.Reason{Kind: call.Declined, Text: "Bye before Answer", Err: ErrRejected})
	case call.Incoming, call.Alerting:
		cc.RemoteHangup(call.Reason{Kind: call.Canceled, Text: "Bye before Answer", Err: ErrRemoteHangup})
	default:
		cc.RemoteHangup(call.Reason{Kind: call.RemoteHangup, Text: "Bye", Err: ErrRemoteHangup})
	}
}

// onReoffer answers an Offer on an active call. The API has no way to
// refuse a re-offer but Bye: one the core cannot accept ends the call (Bye
// sent, the refusal recorded as the reason). A re-offer crossing one of ours
// wins (the terminal is the polite peer): ours is withdrawn as a glare, and
// Call.Renegotiate retries it.
func (g *signal) onReoffer(cc *call.Call, sdp string) {
	ans, err := cc.RemoteOffer(g.s.ctx, []byte(sdp))
	var r call.Reason
	if errors.As(err, &r) && r.Kind == call.Glare && cc.State() == call.Active {
		cc.RemoteReject(call.Reason{Kind: call.Glare, Code: 491, Text: "crossing Offer from the core"})
		ans, err = cc.RemoteOffer(g.s.ctx, []byte(sdp))
	}
	if err == nil {
		_ = g.send(&pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Answer{Answer: &pb.Answer{Sdp: string(ans)}}})
		return
	}
	if errors.Is(err, call.ErrClosed) {
		return
	}
	if !errors.As(err, &r) {
		r = call.Reason{Kind: call.MediaFailed, Err: err}
	}
	_ = g.send(byeMessage())
	r.Text = strings.TrimPrefix(r.Text+"; re-offer refused with Bye", "; ")
	cc.RemoteHangup(r)
}

// TerminalOf returns the terminal carrying c, or nil for a call of another
// binding.
func TerminalOf(c *call.Call) *Terminal {
	if g, ok := c.Signaling().(*signal); ok {
		return g.t
	}
	return nil
}

// Peer returns the other party's msisdn of a terminal call (the callee of
// an outgoing call, the caller of an incoming one, our own msisdn for a
// takeover), or "". The call's Remote().URI is "tel:" followed by it.
func Peer(c *call.Call) string {
	if g, ok := c.Signaling().(*signal); ok {
		return g.peer
	}
	return ""
}

// CallID returns the call_id a terminal call has on the wire (on Pipe the
// terminal's own name for it), or "". It is c.ID() unless the agent already
// had a call with that ID (two terminals on one agent in the same call).
func CallID(c *call.Call) string {
	if g, ok := c.Signaling().(*signal); ok {
		return g.id
	}
	return ""
}

// Call places a call to msisdn on the terminal's agent: the core opens the
// media stream, and once it is ready the Offer leaves. It returns the core
// call (state call.Offering, ID the call_id) once the Offer is queued; the
// agent's Handler reports the rest (call.Ringing, call.Active, or
// call.Terminated with a call.Reason). On Pipe a second call while one
// exists returns ErrBusy.
func (t *Terminal) Call(ctx context.Context, msisdn string) (*call.Call, error) {
	return t.place(ctx, uuid.NewString(), msisdn)
}

// TakeOver moves a call observed with InCall to this terminal: it sends an
// Offer carrying the InCall's call_id and the terminal's msisdn.
func (t *Terminal) TakeOver(ctx context.Context, callID string) (*call.Call, error) {
	if !validCallID(callID) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidCallID, callID)
	}
	c, err := t.place(ctx, callID, t.cfg.MSISDN)
	if err == nil {
		t.mu.Lock()
		for k, o := range t.observed { // it is ours now, no Idle will come
			if o.CallID == callID {
				delete(t.observed, k)
			}
		}
		t.mu.Unlock()
	}
	return c, err
}

// TransferToPhone asks the core to move an active call of this terminal to
// the user's mobile phone (Action{ToPhone}). The call ends when the core
// confirms with InCall: call.Terminated with Kind call.RemoteHangup and Err
// ErrTransferred.
func (t *Terminal) TransferToPhone(ctx context.Context, c *call.Call) error {
	g, ok := c.Signaling().(*signal)
	if !ok || g.t != t {
		return ErrNotTerminalCall
	}
	if st := c.State(); st != call.Active {
		return fmt.Errorf("%w: TransferToPhone in state %v", ErrState, st)
	}
	g.mu.Lock()
	g.transferring = true
	g.mu.Unlock()
	return g.send(&pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Action{
		Action: &pb.Action{Action: &pb.Action_ToPhone{ToPhone: &pb.ToPhone{}}}}})
}

// params are the core call's parameters: the terminal's media configuration
// and the peer as a tel: URI.
func (t *Terminal) params(g *signal) call.Params {
	mc := t.media
	return call.Params{ID: g.coreID, Remote: call.Party{URI: "tel:" + g.peer}, Media: &mc}
}

func (t *Terminal) newSignal(s *session, id, peer, to string) *signal {
	g := &signal{t: t, s: s, id: id, coreID: id, peer: peer, to: to}
	if t.agent.Call(id) != nil {
		g.coreID = uuid.NewString()
	}
	return g
}

func (t *Terminal) place(ctx context.Context, id, msisdn string) (*call.Call, error) {
	t.mu.Lock()
	s := t.sess
	if s != nil {
		s.prune()
	}
	switch {
	case t.closed:
		t.mu.Unlock()
		return nil, ErrClosed
	case s == nil:
		t.mu.Unlock()
		return nil, ErrNotRegistered
	case t.cfg.Mode == Pipe && len(s.calls) > 0:
		t.mu.Unlock()
		return nil, ErrBusy
	case s.calls[id] != nil:
		t.mu.Unlock()
		return nil, fmt.Errorf("%w: call %s exists", ErrState, id)
	}
	g := t.newSignal(s, id, msisdn, msisdn)
	s.calls[id] = g
	t.mu.Unlock()
	cc, err := t.agent.Dial(ctx, g, t.params(g))
	if err != nil {
		g.mu.Lock()
		g.gone = true
		g.mu.Unlock()
		t.forget(s, g)
		return nil, err
	}
	g.setCall(cc)
	return cc, nil
}

// forget drops g from its session.
func (t *Terminal) forget(s *session, g *signal) {
	t.mu.Lock()
	if s.calls[g.id] == g {
		delete(s.calls, g.id)
	}
	t.mu.Unlock()
}

// onOffer handles an Offer from the core: a renegotiation of a known call or
// a new incoming call, which the agent reports with Handler.OnIncoming (its
// one owner).
func (t *Terminal) onOffer(s *session, id string, o *pb.Offer) {
	if g := t.lookup(s, id); g != nil {
		cc := g.call()
		if cc == nil || cc.State() != call.Active {
			t.log.Debug("Offer ignored: call not active", "call_id", id)
			return
		}
		g.onReoffer(cc, o.GetSdp())
		return
	}
	if id == "" {
		id = uuid.NewString() // Pipe: call_id is ignored; name the call locally
	}
	t.mu.Lock()
	if t.closed || t.sess != s {
		t.mu.Unlock()
		return
	}
	g := t.newSignal(s, id, o.GetMsisdn(), "")
	g.offered = true
	s.calls[id] = g
	t.mu.Unlock()
	cc, err := t.agent.Incoming(s.ctx, g, t.params(g), []byte(o.GetSdp()))
	if err != nil {
		t.log.Info("incoming Offer refused", "call_id", id, "err", err)
		g.mu.Lock()
		g.gone = true
		g.mu.Unlock()
		t.forget(s, g)
		_ = g.send(byeMessage())
		return
	}
	g.setCall(cc)
}
