package webterminal

import (
	"errors"
	"fmt"
	"net"
)

// Errors returned by terminals, calls and the core, matched with errors.Is. A
// call's end reason (Call.Err) matches one of them too.
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
	// ErrState is returned by a Call method not allowed in the call's state.
	ErrState = errors.New("webterminal: not allowed in this call state")
	// ErrUnknownCall is returned by Core methods naming a call the core does not
	// have.
	ErrUnknownCall = errors.New("webterminal: unknown call")

	// ErrRejected ends an outgoing call answered with Bye.
	ErrRejected = errors.New("webterminal: call rejected")
	// ErrRemoteHangup ends a call the other side ended with Bye.
	ErrRemoteHangup = errors.New("webterminal: remote hangup")
	// ErrLocalHangup ends a call this side ended (Hangup or Reject).
	ErrLocalHangup = errors.New("webterminal: local hangup")
	// ErrTransferred ends a call that moved away from this terminal: to the
	// phone (Action{ToPhone}) or taken over elsewhere (InCall with its call_id).
	ErrTransferred = errors.New("webterminal: call transferred")
	// ErrStreamLost ends every call of a registration stream that broke.
	ErrStreamLost = errors.New("webterminal: registration stream lost")
	// ErrMedia ends a call whose media could not make or take SDP.
	ErrMedia = errors.New("webterminal: media failure")
)
