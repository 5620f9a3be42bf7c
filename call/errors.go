package call

import (
	"errors"
	"fmt"
	"net"
)

// Errors returned by agents and calls, matched with errors.Is.
var (
	// ErrClosed is returned by a closed agent or an ended call; it matches net.ErrClosed too.
	ErrClosed = fmt.Errorf("call: closed: %w", net.ErrClosed)
	// ErrInvalidConfig is returned by New and Dial for a configuration they cannot use.
	ErrInvalidConfig = errors.New("call: invalid configuration")
	// ErrState is returned by an action the call's state does not allow, such
	// as Accept on an outgoing call.
	ErrState = errors.New("call: not allowed in this state")
	// ErrPending is returned by Renegotiate while another offer/answer
	// exchange of the call is in progress.
	ErrPending = errors.New("call: offer/answer in progress")
)
