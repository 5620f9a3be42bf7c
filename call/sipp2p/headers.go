package sipp2p

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// allowed is the Allow header: the methods the endpoint implements.
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE"

// supported is the Supported header: the extensions we implement (none
// beyond RFC 3261 and RFC 3264); an empty list is valid (RFC 3261 §20.37)
// and tells peers not to require any.
const supported = ""

// phrases are the RFC 3261 §21 reason phrases of the statuses we send.
var phrases = map[int]string{
	100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK",
	400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
	408: "Request Timeout", 415: "Unsupported Media Type", 420: "Bad Extension",
	480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
	486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending",
	500: "Server Internal Error", 501: "Not Implemented", 503: "Service Unavailable",
	600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}

// phrase returns the standard reason phrase of code.
func phrase(code int) string {
	if p, ok := phrases[code]; ok {
		return p
	}
	switch {
	case code < 200:
		return "Session Progress"
	case code < 300:
		return "OK"
	case code < 400:
		return "Redirection"
	case code < 500:
		return "Client Error"
	case code < 600:
		return "Server Error"
	}
	return "Global Failure"
}

// addCommon adds User-Agent, Allow and Supported to a request we send.
func (e *Endpoint) addCommon(req *sip.Request) {
	req.AppendHeader(sip.NewHeader("User-Agent", e.cfg.UserAgent))
	if req.Method == sip.INVITE || req.Method == sip.OPTIONS {
		req.AppendHeader(sip.NewHeader("Allow", allowed))
		req.AppendHeader(sip.NewHeader("Supported", supported))
	}
}

// newResponse builds a response to req with the standard phrase, our
// Server, Allow and Supported headers, and extra headers.
func (e *Endpoint) newResponse(req *sip.Request, code int, body []byte, extra ...sip.Header) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, phrase(code), body)
	if code > 100 {
		res.AppendHeader(sip.NewHeader("Server", e.cfg.UserAgent))
	}
	if code >= 200 && code < 300 && (req.Method == sip.INVITE || req.Method == sip.OPTIONS) || code == 405 {
		res.AppendHeader(sip.NewHeader("Allow", allowed))
		res.AppendHeader(sip.NewHeader("Supported", supported))
	}
	for _, h := range extra {
		res.AppendHeader(h)
	}
	return res
}

// respond sends a response without body; failures are logged.
func (e *Endpoint) respond(tx sip.ServerTransaction, req *sip.Request, code int, body []byte, extra ...sip.Header) {
	if err := tx.Respond(e.newResponse(req, code, body, extra...)); err != nil {
		e.log.Debug("respond", "code", code, "err", err)
	}
}

// retryAfter is a Retry-After header of d seconds.
func retryAfter(secs int) sip.Header {
	return sip.NewHeader("Retry-After", strconv.Itoa(secs))
}

// headerValues returns every value of the header name, split at commas
// where the header is a list.
func headerValues(m sip.Message, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		for _, v := range strings.Split(h.Value(), ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}
