package sipp2p

import (
	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
)

// reasonFor maps a final SIP response to a call Reason.
func reasonFor(res *sip.Response) call.Reason {
	r := call.Reason{Code: res.StatusCode, Text: oneLine(res.Reason)}
	switch c := res.StatusCode; {
	case c == 486 || c == 600:
		r.Kind = call.Busy
	case c == 488 || c == 606:
		r.Kind = call.NotAcceptable
	case c == 491:
		r.Kind = call.Glare
	case c == 487:
		r.Kind = call.Canceled
	case c == 400:
		r.Kind = call.Malformed
	case c == 404 || c == 408 || c == 410 || c == 480 || c == 481 || c >= 500 && c < 600:
		r.Kind = call.Unavailable
	default:
		r.Kind = call.Declined
	}
	return r
}

// statusFor maps a call Reason to the SIP status and standard phrase of a
// rejection (the Reason's text is never sent: it is for the application).
func statusFor(r call.Reason) (int, string) {
	code := r.Code
	if code < 300 || code > 699 {
		switch r.Kind {
		case call.Busy:
			code = 486
		case call.NotAcceptable:
			code = 488
		case call.Malformed:
			code = 400
		case call.Glare:
			code = 491
		case call.Unavailable:
			code = 480
		case call.Canceled:
			code = 487
		case call.Declined, call.LocalHangup:
			code = 603
		default:
			code = 500
		}
	}
	return code, phrase(code)
}
