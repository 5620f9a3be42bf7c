package flow

import (
	"errors"
	"fmt"
	"net"
)

// Errors reported by flows, matched with errors.Is. Errors that reach a stream's
// handler are wrapped in *Error, which names the component.
var (
	// ErrClosed is returned by every method of a closed flow; it matches net.ErrClosed too.
	ErrClosed = fmt.Errorf("flow closed: %w", net.ErrClosed)
	// ErrNoDestination is returned by Write before SetActiveDestination.
	ErrNoDestination = errors.New("flow: no active destination")
	// ErrNotReady is returned by writes before the flow's NAT setup has finished.
	ErrNotReady = errors.New("flow: not ready")
	// ErrSTUNTimeout means the STUN server did not answer a Binding request in time.
	ErrSTUNTimeout = errors.New("flow: STUN binding timed out")
	// ErrSTUNFailed means the STUN server answered a Binding request with an error or without an address.
	ErrSTUNFailed = errors.New("flow: STUN binding failed")
	// ErrSocket means the flow's socket failed while reading or writing.
	ErrSocket = errors.New("flow: socket error")
	// ErrPacketTooLarge is returned for a write larger than MaxPacketSize.
	ErrPacketTooLarge = errors.New("flow: packet too large")
	// ErrInvalidAddress is returned for an address the flow cannot send to.
	ErrInvalidAddress = errors.New("flow: invalid address")
)

// Error is a failure of one flow, naming its component and the step that failed.
type Error struct {
	Component Component
	Op        string // e.g. "stun binding", "turn allocate", "receive"
	Err       error
}

// Error implements error.
func (e *Error) Error() string { return e.Component.String() + " flow: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }
