package webterminal

import (
	"context"

	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
)

// Media is the media side of one call: it makes and takes the SDP of the
// offer/answer exchanges (RFC 3264). The call core satisfies it; StreamMedia
// is an implementation over flowmanager streams. A terminal calls one method
// at a time per call.
type Media interface {
	// Offer returns a new local offer (the first of a call, or a takeover).
	Offer(ctx context.Context) (sdp string, err error)
	// Answer applies a remote offer (the first of a call or a renegotiation)
	// and returns the local answer.
	Answer(ctx context.Context, offer string) (sdp string, err error)
	// SetAnswer applies the remote answer to the last local offer.
	SetAnswer(ctx context.Context, answer string) error
	// Close releases the media; the terminal calls it when the call ends.
	Close() error
}

// reasonCloser is a Media that records why the call ended (CoreMedia: the
// call core tells a remote hangup from a local one).
type reasonCloser interface{ closeFor(reason error) error }

// remoteRinger is a Media that records the callee's Ringing (CoreMedia).
type remoteRinger interface{ remoteRinging() }

// MediaFunc makes the Media of a new call; c is the call being set up (its
// ID, Peer and Direction are known).
type MediaFunc func(ctx context.Context, c *Call) (Media, error)

// Status is an observation the core reported: msisdn is (InCall) or is no
// longer (Idle) a participant of call CallID on another terminal or the phone.
type Status struct {
	// CallID names the call; empty in Idle on Pipe.
	CallID string
	// MSISDN is the subscriber the status is about.
	MSISDN string
	// InCall is true for InCall, false for Idle.
	InCall bool
}

// Handler receives a terminal's events. Calls are made one at a time, in
// order, on a goroutine owned by the terminal, never with a lock held; a
// Handler may call any method of the terminal or its calls, Close included.
// A blocking method (Call.Accept waits for media) delays later events.
type Handler interface {
	// OnRegistered is called each time a registration stream is open (the core
	// acknowledged it), also after a re-registration.
	OnRegistered(t *Terminal)
	// OnUnregistered is called when the registration stream is lost, after its
	// calls ended with ErrStreamLost; the terminal re-registers with backoff.
	OnUnregistered(t *Terminal, err error)
	// OnIncomingCall is called for a new incoming Offer; answer it with
	// c.Ring, c.Accept or c.Reject (from any goroutine).
	OnIncomingCall(c *Call)
	// OnRinging is called when the callee of an outgoing call alerts its user.
	OnRinging(c *Call)
	// OnEstablished is called when a call's first offer/answer completed.
	OnEstablished(c *Call)
	// OnCallEnded is called once per call with the reason (see Call.Err).
	OnCallEnded(c *Call, reason error)
	// OnStatus is called for every InCall and Idle received.
	OnStatus(t *Terminal, s Status)
	// OnProtocolError is called for a message that was rejected, such as a
	// MultiPipe message without a UUID call_id (ErrInvalidCallID). The stream
	// goes on.
	OnProtocolError(t *Terminal, err error)
	// OnMessage is called for every message sent (sent true) and received, in
	// order per direction; useful for tracing.
	OnMessage(t *Terminal, sent bool, m *pb.WebTerminalMessage)
}

// HandlerFuncs adapts functions to Handler; a nil function ignores its event,
// and a nil Incoming rejects incoming calls.
type HandlerFuncs struct {
	Registered    func(t *Terminal)
	Unregistered  func(t *Terminal, err error)
	Incoming      func(c *Call)
	Ringing       func(c *Call)
	Established   func(c *Call)
	Ended         func(c *Call, reason error)
	Status        func(t *Terminal, s Status)
	ProtocolError func(t *Terminal, err error)
	Message       func(t *Terminal, sent bool, m *pb.WebTerminalMessage)
}

// OnRegistered calls h.Registered.
func (h HandlerFuncs) OnRegistered(t *Terminal) {
	if h.Registered != nil {
		h.Registered(t)
	}
}

// OnUnregistered calls h.Unregistered.
func (h HandlerFuncs) OnUnregistered(t *Terminal, err error) {
	if h.Unregistered != nil {
		h.Unregistered(t, err)
	}
}

// OnIncomingCall calls h.Incoming, or rejects the call when it is nil.
func (h HandlerFuncs) OnIncomingCall(c *Call) {
	if h.Incoming != nil {
		h.Incoming(c)
		return
	}
	_ = c.Reject(context.Background())
}

// OnRinging calls h.Ringing.
func (h HandlerFuncs) OnRinging(c *Call) {
	if h.Ringing != nil {
		h.Ringing(c)
	}
}

// OnEstablished calls h.Established.
func (h HandlerFuncs) OnEstablished(c *Call) {
	if h.Established != nil {
		h.Established(c)
	}
}

// OnCallEnded calls h.Ended.
func (h HandlerFuncs) OnCallEnded(c *Call, reason error) {
	if h.Ended != nil {
		h.Ended(c, reason)
	}
}

// OnStatus calls h.Status.
func (h HandlerFuncs) OnStatus(t *Terminal, s Status) {
	if h.Status != nil {
		h.Status(t, s)
	}
}

// OnProtocolError calls h.ProtocolError.
func (h HandlerFuncs) OnProtocolError(t *Terminal, err error) {
	if h.ProtocolError != nil {
		h.ProtocolError(t, err)
	}
}

// OnMessage calls h.Message.
func (h HandlerFuncs) OnMessage(t *Terminal, sent bool, m *pb.WebTerminalMessage) {
	if h.Message != nil {
		h.Message(t, sent, m)
	}
}
