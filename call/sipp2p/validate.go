package sipp2p

import (
	"mime"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// validate checks what RFC 3261 §8.2 requires of every request before it is
// processed and sends the refusal itself: 400 for missing dialog headers or
// a CSeq method that differs from the request's (§8.1.1.5), 420 with
// Unsupported for an option we do not implement in Require (§8.2.2.3), and,
// when sdp is set, 415 with Accept for a body that is not SDP (§8.2.3).
func (e *Endpoint) validate(req *sip.Request, tx sip.ServerTransaction, sdp bool) bool {
	cseq := req.CSeq()
	if req.CallID() == nil || req.From() == nil || req.To() == nil || cseq == nil || cseq.MethodName != req.Method {
		e.respond(tx, req, 400, nil)
		return false
	}
	if req.Method != sip.ACK && req.Method != sip.CANCEL {
		if tags := headerValues(req, "Require"); len(tags) > 0 {
			e.respond(tx, req, 420, nil, sip.NewHeader("Unsupported", strings.Join(tags, ", ")))
			return false
		}
	}
	if sdp && len(req.Body()) > 0 && !isSDP(req) {
		e.respond(tx, req, 415, nil, sip.NewHeader("Accept", "application/sdp"),
			sip.NewHeader("Accept-Encoding", "identity"))
		return false
	}
	return true
}

// isSDP reports whether m's body is an uncompressed application/sdp body.
func isSDP(m sip.Message) bool {
	for _, enc := range headerValues(m, "Content-Encoding") {
		if !strings.EqualFold(enc, "identity") {
			return false
		}
	}
	ct := m.GetHeaders("Content-Type")
	if len(ct) != 1 {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct[0].Value())
	return err == nil && mt == "application/sdp"
}
