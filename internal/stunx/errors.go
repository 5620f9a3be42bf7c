package stunx

import "errors"

// Errors returned by this package.
var (
	// ErrMalformed is wrapped by every error about a datagram that is not a
	// well-formed STUN message.
	ErrMalformed = errors.New("stunx: malformed STUN message")
	// ErrPanic is wrapped by the error returned when pion code panicked and the
	// panic was recovered.
	ErrPanic = errors.New("stunx: recovered panic")
)
