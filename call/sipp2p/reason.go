package sipp2p

import (
	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
)

// reasonFor maps a final SIP response to a call Reason.
func reasonFor(res *sip.Response) call.Reason {
	r := call.Reason{Code: res.StatusCode, Text: res.Reason}
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

// statusFor maps a call Reason to the SIP status and phrase of a rejection.
func statusFor(r call.Reason) (int, string) {
	code := r.Code
	if code == 0 {
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
		case call.Declined, call.LocalHangup:
			code = 603
		default:
			code = 500
		}
	}
	phrase := map[int]string{400: "Bad Request", 403: "Forbidden", 480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
		486: "Busy Here", 488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error", 600: "Busy Everywhere",
		603: "Decline", 606: "Not Acceptable"}[code]
	if phrase == "" {
		phrase = "Rejected"
	}
	return code, phrase
}
