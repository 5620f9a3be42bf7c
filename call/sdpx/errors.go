package sdpx

import "errors"

// Errors returned by Parse and the other helpers, matched with errors.Is.
var (
	// ErrMalformed means the SDP text does not follow the SDP grammar, or an
	// attribute the analyser needs (rtcp, rtpmap, connection address) is malformed.
	ErrMalformed = errors.New("sdpx: malformed SDP")
	// ErrUnsupported means the SDP is well formed but uses something this
	// package does not handle (such as a host name in c= or a non-IN network).
	ErrUnsupported = errors.New("sdpx: unsupported SDP")
	// ErrTooLarge means the SDP is longer than MaxSize or has more than
	// MaxMedia media descriptions.
	ErrTooLarge = errors.New("sdpx: SDP too large")
)
