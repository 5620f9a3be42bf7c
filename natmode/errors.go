package natmode

import "errors"

// Errors returned by this package.
var (
	// ErrUnknownMode is returned for a mode value or name that does not exist.
	ErrUnknownMode = errors.New("natmode: unknown mode")
	// ErrInvalidConfig is returned by Config.Validate for an incomplete configuration.
	ErrInvalidConfig = errors.New("natmode: invalid configuration")
)
