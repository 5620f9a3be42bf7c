package webterminal

import (
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
)

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

// Handler receives what a terminal reports beyond its calls: the calls
// themselves are call.Call values of the terminal's call.Agent, reported by
// the agent's call.Handler (OnIncoming, OnState with a call.Reason,
// OnMedia). Calls are made one at a time, in order, on a goroutine owned by
// the terminal, never with a lock held; a Handler may call any method of the
// terminal, Close included.
type Handler interface {
	// OnRegistered is called each time a registration stream is open (the core
	// acknowledged it), also after a re-registration.
	OnRegistered(t *Terminal)
	// OnUnregistered is called when the registration stream is lost, after its
	// calls ended (call.SignalingFailed wrapping ErrStreamLost); the terminal
	// re-registers with backoff.
	OnUnregistered(t *Terminal, err error)
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

// HandlerFuncs adapts functions to Handler; a nil function ignores its event.
type HandlerFuncs struct {
	// Registered implements OnRegistered.
	Registered func(t *Terminal)
	// Unregistered implements OnUnregistered.
	Unregistered func(t *Terminal, err error)
	// Status implements OnStatus.
	Status func(t *Terminal, s Status)
	// ProtocolError implements OnProtocolError.
	ProtocolError func(t *Terminal, err error)
	// Message implements OnMessage.
	Message func(t *Terminal, sent bool, m *pb.WebTerminalMessage)
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
