package webterminal

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
	"github.com/reflow-go/reflow/internal/notify"
)

// Direction tells who placed a call.
type Direction int

const (
	// Outgoing calls were placed by this terminal (Call, TakeOver).
	Outgoing Direction = iota
	// Incoming calls were offered by the core.
	Incoming
)

// String returns "outgoing" or "incoming".
func (d Direction) String() string {
	if d == Incoming {
		return "incoming"
	}
	return "outgoing"
}

// State is a call's progress.
type State int

const (
	// Offering: our Offer is out (or being made), no Answer yet.
	Offering State = iota
	// Ringing: our Offer is out and the callee is alerting (Ringing received).
	Ringing
	// Alerting: an incoming Offer waits for Ring, Accept or Reject.
	Alerting
	// Active: the first offer/answer completed.
	Active
	// Ended: the call is over; Err gives the reason.
	Ended
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case Offering:
		return "offering"
	case Ringing:
		return "ringing"
	case Alerting:
		return "alerting"
	case Active:
		return "active"
	case Ended:
		return "ended"
	}
	return "State(?)"
}

// Call is one call carried by a terminal's registration stream. All methods
// are safe for concurrent use.
type Call struct {
	t    *Terminal
	s    *session
	id   string
	peer string
	dir  Direction

	ctx    context.Context // ends with the call
	cancel context.CancelFunc
	work   notify.Queue // media operations of the call, in order; closed when it ends

	mu           sync.Mutex
	state        State
	offer        string // remote offer while Alerting
	media        Media
	offerSent    bool
	transferring bool
	err          error
	established  chan struct{}
	done         chan struct{}
}

func newCall(t *Terminal, s *session, id, peer string, dir Direction, st State) *Call {
	c := &Call{t: t, s: s, id: id, peer: peer, dir: dir, state: st,
		established: make(chan struct{}), done: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	return c
}

// ID returns the call's UUID (the call_id on MultiPipe).
func (c *Call) ID() string { return c.id }

// Peer returns the other party's msisdn: the callee of an outgoing call, the
// caller of an incoming one.
func (c *Call) Peer() string { return c.peer }

// Direction tells who placed the call.
func (c *Call) Direction() Direction { return c.dir }

// Terminal returns the terminal carrying the call.
func (c *Call) Terminal() *Terminal { return c.t }

// State returns the call's progress.
func (c *Call) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Media returns the call's media, nil before it was made.
func (c *Call) Media() Media {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.media
}

// Established is closed when the first offer/answer completed.
func (c *Call) Established() <-chan struct{} { return c.established }

// Done is closed when the call ended.
func (c *Call) Done() <-chan struct{} { return c.done }

// Err returns why the call ended (matching ErrRejected, ErrRemoteHangup,
// ErrLocalHangup, ErrTransferred, ErrStreamLost, ErrMedia or ErrClosed), or
// nil while it goes on.
func (c *Call) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Ring tells the caller of an incoming call that the user is alerted.
func (c *Call) Ring(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != Alerting {
		return fmt.Errorf("%w: Ring in state %v", ErrState, c.state)
	}
	c.t.send(c.s, c.msg(&pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Ringing{Ringing: &pb.Ringing{}}}))
	return nil
}

// Accept answers an incoming call: it makes the media, answers the offer and
// sends the Answer. ctx bounds the media setup.
func (c *Call) Accept(ctx context.Context) error {
	c.mu.Lock()
	if c.state != Alerting || c.media != nil {
		defer c.mu.Unlock()
		return fmt.Errorf("%w: Accept in state %v", ErrState, c.state)
	}
	offer := c.offer
	c.mu.Unlock()
	m, err := c.t.cfg.Media(ctx, c)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrMedia, err)
		c.end(err, true)
		return err
	}
	if err := c.setMedia(m); err != nil {
		return err
	}
	sdp, err := m.Answer(ctx, offer)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrMedia, err)
		c.end(err, true)
		return err
	}
	c.mu.Lock()
	if c.state != Alerting {
		defer c.mu.Unlock()
		return fmt.Errorf("%w: call %v while accepting: %w", ErrState, c.state, c.err)
	}
	c.state = Active
	c.offer = ""
	close(c.established)
	c.t.send(c.s, c.msg(answerMsg(sdp)))
	c.mu.Unlock()
	c.t.emit(func(h Handler) { h.OnEstablished(c) })
	return nil
}

// Reject refuses an incoming call with Bye.
func (c *Call) Reject(ctx context.Context) error {
	if st := c.State(); st != Alerting {
		return fmt.Errorf("%w: Reject in state %v", ErrState, st)
	}
	c.end(ErrLocalHangup, true)
	return nil
}

// Hangup ends the call with Bye, in any state; it does nothing on an ended
// call.
func (c *Call) Hangup(ctx context.Context) error {
	c.end(ErrLocalHangup, true)
	return nil
}

// TransferToPhone asks the core to move the active call to the user's mobile
// phone (Action{ToPhone}). The call ends with ErrTransferred when the core
// confirms with InCall.
func (c *Call) TransferToPhone(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != Active {
		return fmt.Errorf("%w: TransferToPhone in state %v", ErrState, c.state)
	}
	c.transferring = true
	c.t.send(c.s, c.msg(&pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Action{
		Action: &pb.Action{Action: &pb.Action_ToPhone{ToPhone: &pb.ToPhone{}}}}}))
	return nil
}

func (c *Call) isTransferring() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transferring
}

// msg fills in the call_id.
func (c *Call) msg(m *pb.WebTerminalMessage) *pb.WebTerminalMessage {
	m.CallId = c.id
	return m
}

func answerMsg(sdp string) *pb.WebTerminalMessage {
	return &pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Answer{Answer: &pb.Answer{Sdp: sdp}}}
}

func (c *Call) setMedia(m Media) error {
	c.mu.Lock()
	if c.state == Ended {
		err := c.err
		c.mu.Unlock()
		_ = m.Close()
		return err
	}
	c.media = m
	c.mu.Unlock()
	return nil
}

// end finishes the call once: Bye if asked (and anything was said), media
// closed, Handler told.
func (c *Call) end(reason error, bye bool) {
	c.mu.Lock()
	if c.state == Ended {
		c.mu.Unlock()
		return
	}
	said := c.dir == Incoming || c.offerSent
	c.state = Ended
	c.err = reason
	m := c.media
	c.cancel()
	c.mu.Unlock()
	c.work.Close() // pending media work is moot; a running one sees ctx end
	c.t.retire(c)
	defer close(c.done) // after the media is closed
	c.t.mu.Lock()
	if c.s.calls[c.id] == c {
		delete(c.s.calls, c.id)
	}
	c.t.mu.Unlock()
	if bye && said {
		c.t.send(c.s, c.msg(&pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Bye{Bye: &pb.Bye{}}}))
	}
	if rc, ok := m.(reasonCloser); ok {
		_ = rc.closeFor(reason) // the call core records who ended the call
	} else if m != nil {
		_ = m.Close()
	}
	c.t.emit(func(h Handler) { h.OnCallEnded(c, reason) })
}

// offerOut makes the media and sends the Offer of an outgoing call.
func (c *Call) offerOut(ctx context.Context, msisdn string) error {
	m, err := c.t.cfg.Media(ctx, c)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrMedia, err)
		c.end(err, false)
		return err
	}
	if err := c.setMedia(m); err != nil {
		return err
	}
	sdp, err := m.Offer(ctx)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrMedia, err)
		c.end(err, false)
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Ended {
		return c.err
	}
	c.offerSent = true
	c.t.send(c.s, c.msg(&pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Offer{
		Offer: &pb.Offer{Sdp: sdp, Msisdn: msisdn}}}))
	return nil
}

func (c *Call) onRinging() {
	c.mu.Lock()
	if c.state != Offering || !c.offerSent {
		c.mu.Unlock()
		return
	}
	c.state = Ringing
	m := c.media
	c.mu.Unlock()
	if rr, ok := m.(remoteRinger); ok {
		rr.remoteRinging()
	}
	c.t.emit(func(h Handler) { h.OnRinging(c) })
}

func (c *Call) onAnswer(sdp string) {
	c.mu.Lock()
	if (c.state != Offering && c.state != Ringing) || !c.offerSent {
		c.mu.Unlock()
		c.t.log.Debug("Answer ignored", "call_id", c.id, "state", c.state)
		return
	}
	c.state = Active // a renegotiation Offer right after is answered after this
	m := c.media
	c.mu.Unlock()
	c.work.Post(func() {
		if err := m.SetAnswer(c.ctx, sdp); err != nil {
			c.end(fmt.Errorf("%w: %w", ErrMedia, err), true)
			return
		}
		c.mu.Lock()
		if c.state == Ended {
			c.mu.Unlock()
			return
		}
		close(c.established)
		c.mu.Unlock()
		c.t.emit(func(h Handler) { h.OnEstablished(c) })
	})
}

func (c *Call) onBye() {
	var reason error
	switch c.State() {
	case Offering, Ringing:
		reason = ErrRejected
	default:
		reason = ErrRemoteHangup
	}
	c.end(reason, false)
}

// onReoffer answers a renegotiation Offer of an active call.
func (c *Call) onReoffer(sdp string) {
	c.mu.Lock()
	m := c.media
	c.mu.Unlock()
	c.work.Post(func() {
		ans, err := m.Answer(c.ctx, sdp)
		if err != nil {
			c.end(fmt.Errorf("%w: renegotiation: %w", ErrMedia, err), true)
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.state == Ended {
			return
		}
		c.t.send(c.s, c.msg(answerMsg(ans)))
	})
}

// Call places a call to msisdn: it makes the media and sends an Offer. The
// call is returned in state Offering; wait for Established or Done. On Pipe a
// second call while one exists returns ErrBusy.
func (t *Terminal) Call(ctx context.Context, msisdn string) (*Call, error) {
	return t.place(ctx, uuid.NewString(), msisdn, Outgoing)
}

// TakeOver moves a call observed with InCall to this terminal: it sends an
// Offer carrying the InCall's call_id and the terminal's msisdn.
func (t *Terminal) TakeOver(ctx context.Context, callID string) (*Call, error) {
	if !validCallID(callID) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidCallID, callID)
	}
	c, err := t.place(ctx, callID, t.cfg.MSISDN, Outgoing)
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

func (t *Terminal) place(ctx context.Context, id, msisdn string, dir Direction) (*Call, error) {
	t.mu.Lock()
	s := t.sess
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
	c := newCall(t, s, id, msisdn, dir, Offering)
	s.calls[id] = c
	t.mu.Unlock()
	if err := c.offerOut(ctx, msisdn); err != nil {
		return nil, err
	}
	return c, nil
}

// onOffer handles an Offer from the core: a renegotiation of a known call or
// a new incoming call.
func (t *Terminal) onOffer(s *session, id string, o *pb.Offer) {
	if c := t.lookup(s, id); c != nil {
		if st := c.State(); st == Active {
			c.onReoffer(o.GetSdp())
		} else {
			t.log.Debug("Offer ignored", "call_id", id, "state", st)
		}
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
	c := newCall(t, s, id, o.GetMsisdn(), Incoming, Alerting)
	c.offer = o.GetSdp()
	s.calls[id] = c
	t.mu.Unlock()
	t.emit(func(h Handler) { h.OnIncomingCall(c) })
}
