package call

import (
	"fmt"
	"strconv"
)

// Kind classifies why a call ended, or why an offer was refused.
type Kind int

// The kinds of reasons.
const (
	// Normal is no reason (a call still running).
	Normal Kind = iota
	// LocalHangup: the application hung up (or closed the agent).
	LocalHangup
	// RemoteHangup: the peer hung up (SIP BYE).
	RemoteHangup
	// Canceled: the caller gave up before the call was answered (SIP CANCEL).
	Canceled
	// Busy: the callee is busy (SIP 486, 600).
	Busy
	// Declined: the callee refused the call (SIP 603, 403 and other 4xx/6xx).
	Declined
	// Unavailable: the callee cannot be reached or does not exist (SIP 404, 408, 410, 480, 5xx).
	Unavailable
	// NotAcceptable: the offer or answer was unacceptable, e.g. no common
	// codec or secure media required but not offered (SIP 488, 606).
	NotAcceptable
	// Malformed: the peer's SDP could not be parsed (SIP 400).
	Malformed
	// Glare: an offer crossed the peer's offer (SIP 491); Renegotiate retries.
	Glare
	// MediaFailed: the media stream failed (NAT setup, lost allocation, socket).
	MediaFailed
	// SecurityFailed: DTLS-SRTP failed (fingerprint mismatch, handshake timeout or alert).
	SecurityFailed
	// SignalingFailed: the signalling could not be sent or was lost (including TLS failures).
	SignalingFailed
	// MediaLost: the peer's media went away: it closed its DTLS association
	// (close_notify) without a hangup, ICE consent was lost (RFC 7675) or
	// ICE failed. Reason.Err matches dtlssrtp.ErrPeerClosed,
	// flow.ErrConsentLost or flow.ErrICEFailed.
	MediaLost
)

var kindNames = [...]string{"normal", "local hangup", "remote hangup", "canceled", "busy", "declined",
	"unavailable", "not acceptable", "malformed", "glare", "media failed", "security failed", "signaling failed", "media lost"}

// String returns a short lower-case name, e.g. "remote hangup".
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Reason says why a call ended or an offer was refused. It is also an error
// (returned by Incoming, Renegotiate and Dial); match it with errors.As.
type Reason struct {
	// Kind classifies the reason.
	Kind Kind
	// Code is the SIP status code when one was sent or received, else 0.
	Code int
	// Text is a human-readable detail, e.g. "no common codec".
	Text string
	// Err is the underlying failure, if any (e.g. a *flow.Error or a TLS error).
	Err error
}

// Error implements error.
func (r Reason) Error() string {
	s := "call: " + r.Kind.String()
	if r.Code != 0 {
		s += fmt.Sprintf(" (%d)", r.Code)
	}
	if r.Text != "" {
		s += ": " + r.Text
	}
	if r.Err != nil {
		s += ": " + r.Err.Error()
	}
	return s
}

// Unwrap returns r.Err.
func (r Reason) Unwrap() error { return r.Err }

// State is a call's state as the application sees it.
type State int

// The call states.
const (
	// Offering: an outgoing call whose offer was sent, not yet answered.
	Offering State = iota + 1
	// Ringing: an outgoing call the callee reports as ringing.
	Ringing
	// Incoming: an incoming call the application has not answered yet.
	Incoming
	// Alerting: an incoming call the application reported as ringing (Ring).
	Alerting
	// Active: the call is established; media flows as negotiated.
	Active
	// Terminated: the call has ended; Reason tells why.
	Terminated
)

var stateNames = [...]string{"", "offering", "ringing", "incoming", "alerting", "active", "terminated"}

// String returns the state's lower-case name.
func (s State) String() string {
	if s > 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Direction tells who placed a call.
type Direction int

// The call directions.
const (
	// Outbound calls were placed by us.
	Outbound Direction = iota + 1
	// Inbound calls were placed by the peer.
	Inbound
)

// String returns "outbound" or "inbound".
func (d Direction) String() string {
	if d == Inbound {
		return "inbound"
	}
	return "outbound"
}
