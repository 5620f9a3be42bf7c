package sipp2p

import (
	"strings"
)

// Delayed offer (RFC 3261 §13.2.1, §13.3.1; RFC 3264 §5) runs the initial
// offer/answer exchange through the 2xx and the ACK:
//
//   - As UAS, an INVITE without a body makes an incoming call without an
//     offer (call.Agent.Incoming with nil): Accept makes our offer, sent in
//     the 200, and the answer in the ACK goes to call.Call.RemoteAnswer. An
//     ACK without an answer, or with one that cannot be used, ends the call
//     with a BYE (nothing else is left once the 2xx is acknowledged).
//   - As UAC (CallOptions.DelayedOffer) the INVITE has no body; the offer in
//     the 2xx goes to call.Call.RemoteOffer and its answer in the ACK. A 2xx
//     without an offer, or with one we cannot accept, is acknowledged with
//     an answer that rejects every offered m= line (port 0; no body when
//     there is nothing to answer) and the call ends with a BYE
//     (RFC 3261 §13.2.2.4).

// rejectingAnswer returns an answer to offer that rejects every m= line
// (port 0, RFC 3264 §6), or nil when offer has no m= line to answer.
func rejectingAnswer(offer []byte) []byte {
	_, sections := sdpLines(offer)
	if len(sections) == 0 {
		return nil
	}
	session := []string{"v=0", "o=- 0 0 IN IP4 0.0.0.0", "s=-", "c=IN IP4 0.0.0.0", "t=0 0"}
	out := make([][]string, 0, len(sections))
	for _, s := range sections {
		r := []string{zeroPort(s[0])}
		if mid := midOf(s); mid != "" && !strings.ContainsAny(mid, "\r\n") {
			r = append(r, "a=mid:"+mid)
		}
		out = append(out, r)
	}
	return joinSDP(session, out)
}
