package call

import "context"

// Signaling is the seam between the call core and a signalling binding (SIP,
// the gRPC terminal API, ...). A binding makes one Signaling value per call
// and hands it to Agent.Dial or Agent.Incoming; the core calls it to send
// what the offer/answer exchange and the application need, and the binding
// feeds what arrives back through the call's Remote* methods.
//
// The core never calls a Signaling method with a lock held, and calls them
// for one call one at a time except that SendHangup may overlap a pending
// SendOffer (to cancel it). Every method must return when ctx ends.
type Signaling interface {
	// SendOffer sends an SDP offer: the call request for a new outgoing call
	// (then it returns once the peer has acknowledged the request, so that
	// transport and TLS failures surface as its error), or a re-offer on an
	// established call. The outcome is reported later, or before SendOffer
	// returns, with Call.RemoteAnswer or Call.RemoteReject.
	//
	// A nil offer asks for a call request without one (delayed offer,
	// Params.DelayedOffer; SIP: an INVITE without a body): the peer makes
	// the offer in its answer, which the binding hands to Call.RemoteOffer
	// and answers with what that returns (SIP: in the ACK). When that
	// answer carries no offer the binding calls Call.RemoteOffer with nil,
	// which ends the call; when RemoteOffer fails the call has ended and
	// the binding closes the session itself (SIP: ACK, then BYE). A
	// refusal is reported with Call.RemoteReject as for any offer.
	SendOffer(ctx context.Context, offer []byte) error
	// SendRinging tells the caller that the call is ringing (SIP 180).
	SendRinging(ctx context.Context) error
	// SendAnswer answers the initial offer of an incoming call (SIP 200).
	// Answers to re-offers are returned by Call.RemoteOffer instead.
	//
	// For an incoming call made without an offer (Agent.Incoming with a nil
	// offer, not an empty one: delayed offer) the body is our offer, and the binding hands
	// the peer's answer (SIP: the ACK's body) to Call.RemoteAnswer, nil
	// when it carries none (which ends the call with a hangup). The binding
	// may call RemoteAnswer before SendAnswer returns.
	SendAnswer(ctx context.Context, answer []byte) error
	// SendReject refuses an incoming call that was not answered (SIP 4xx/6xx with r.Code).
	SendReject(ctx context.Context, r Reason) error
	// SendHangup ends an outgoing call not answered yet (SIP CANCEL) or an
	// established call (SIP BYE).
	SendHangup(ctx context.Context, r Reason) error
}

// Handler receives an agent's call events. Calls are made one at a time, in
// order, on a goroutine owned by the agent, never with a lock held; a
// handler may call any method of the call or the agent (actions that wait,
// such as Accept, are better started on another goroutine).
type Handler interface {
	// OnIncoming is called for a new incoming call, in state Incoming. The
	// application answers with Ring, Accept, Reject or Hangup.
	OnIncoming(c *Call)
	// OnState is called on every state change, with the reason when the
	// new state is Terminated.
	OnState(c *Call, from, to State, r Reason)
	// OnMedia is called after every completed offer/answer exchange with
	// what is now in force.
	OnMedia(c *Call, m MediaState)
}

// HandlerFuncs adapts functions to Handler; a nil function ignores its event.
type HandlerFuncs struct {
	// Incoming implements OnIncoming.
	Incoming func(c *Call)
	// State implements OnState.
	State func(c *Call, from, to State, r Reason)
	// Media implements OnMedia.
	Media func(c *Call, m MediaState)
}

// OnIncoming calls h.Incoming.
func (h HandlerFuncs) OnIncoming(c *Call) {
	if h.Incoming != nil {
		h.Incoming(c)
	}
}

// OnState calls h.State.
func (h HandlerFuncs) OnState(c *Call, from, to State, r Reason) {
	if h.State != nil {
		h.State(c, from, to, r)
	}
}

// OnMedia calls h.Media.
func (h HandlerFuncs) OnMedia(c *Call, m MediaState) {
	if h.Media != nil {
		h.Media(c, m)
	}
}
