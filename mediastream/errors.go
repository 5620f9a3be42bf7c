package mediastream

import (
	"errors"
	"fmt"
	"net"
)

// Errors returned by streams, matched with errors.Is.
var (
	// ErrClosed is returned by a closed stream; it matches net.ErrClosed too.
	ErrClosed = fmt.Errorf("mediastream: closed: %w", net.ErrClosed)
	// ErrInvalidConfig is returned by New for a configuration it cannot use.
	ErrInvalidConfig = errors.New("mediastream: invalid configuration")
	// ErrBind is returned by New when the RTP/RTCP port pair cannot be bound.
	ErrBind = errors.New("mediastream: cannot bind port pair")
)
