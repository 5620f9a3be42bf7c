package webterminal

import (
	"errors"
	"fmt"
	"net"
)

// Errors returned by terminals and the core, matched with errors.Is. The
// call.Reason of a call that ended for a terminal-specific cause wraps one of
// ErrRejected, ErrRemoteHangup, ErrTransferred or ErrStreamLost in its Err.
var (
	// ErrClosed is returned by a closed Terminal or Core; it matches
	// net.ErrClosed too.
	ErrClosed = fmt.Errorf("webterminal: closed: %w", net.ErrClosed)
	// ErrInvalidConfig is returned by Dial and NewCore for a configuration they
	// cannot use.
	ErrInvalidConfig = errors.New("webterminal: invalid configuration")
	// ErrNotRegistered is returned when the terminal has no registration
	// stream open right now (it is re-registering).
	ErrNotRegistered = errors.New("webterminal: not registered")
	// ErrBusy is returned by Terminal.Call on Pipe while a call exists: Pipe
	// carries one call at a time.
	ErrBusy = errors.New("webterminal: Pipe already has a call")
	// ErrInvalidCallID reports a MultiPipe message whose call_id is not a UUID.
	// Such a message is rejected; the stream goes on.
	ErrInvalidCallID = errors.New("webterminal: call_id is not a UUID")
	// ErrState is returned by an action the call's state does not allow
	// (TransferToPhone on a call that is not active, Core.Renegotiate on a
	// call not answered yet).
	ErrState = errors.New("webterminal: not allowed in this call state")
	// ErrNotTerminalCall is returned for a call.Call a Terminal does not carry.
	ErrNotTerminalCall = errors.New("webterminal: not a call of this terminal")
	// ErrUnknownCall is returned by Core methods naming a call the core does not
	// have.
	ErrUnknownCall = errors.New("webterminal: unknown call")

	// ErrRejected is the Err of the call.Reason (Kind call.Declined) of an
	// outgoing call answered with Bye.
	ErrRejected = errors.New("webterminal: call rejected")
	// ErrRemoteHangup is the Err of the call.Reason of a call the other side
	// ended with Bye: Kind call.RemoteHangup once answered, call.Canceled
	// for an incoming call not answered yet.
	ErrRemoteHangup = errors.New("webterminal: remote hangup")
	// ErrTransferred is the Err of the call.Reason (Kind call.RemoteHangup)
	// of a call that moved away from this terminal: to the phone
	// (Action{ToPhone}, confirmed by InCall) or taken over elsewhere (InCall
	// with its call_id on MultiPipe).
	ErrTransferred = errors.New("webterminal: call transferred")
	// ErrStreamLost is the Err (wrapping the stream's error) of the
	// call.Reason (Kind call.SignalingFailed) of every call of a
	// registration stream that broke.
	ErrStreamLost = errors.New("webterminal: registration stream lost")
)
