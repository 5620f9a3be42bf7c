package sipp2p

import (
	"strings"

	"github.com/reflow-go/reflow/call/sdpx"
)

// RFC 3264 §6: an answerer rejects the offered streams it cannot use by
// setting their port to 0, and answers the rest. The SDP parser under the
// call core refuses a whole description when one m= line has a media type
// or transport it does not know (m=image ... udptl t38, an unknown
// profile), so such lines are taken out of the offer before the core sees
// it and put back, rejected, into the core's answer at their places.

// rejectedLine is an offered m= section taken out of the offer.
type rejectedLine struct {
	index int    // position among the offer's m= lines
	mline string // "m=<media> 0 <proto> <fmt...>"
	mid   string // the section's a=mid value, kept in the answer (RFC 9143 §7.3.3)
}

// sdpLines splits an SDP body into its session part and m= sections.
func sdpLines(body []byte) (session []string, sections [][]string) {
	for l := range strings.SplitSeq(string(body), "\n") {
		l = strings.TrimRight(l, "\r")
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, "m=") {
			sections = append(sections, []string{l})
			continue
		}
		if len(sections) == 0 {
			session = append(session, l)
		} else {
			sections[len(sections)-1] = append(sections[len(sections)-1], l)
		}
	}
	return session, sections
}

func joinSDP(session []string, sections [][]string) []byte {
	var b strings.Builder
	for _, l := range session {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	for _, s := range sections {
		for _, l := range s {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
	}
	return []byte(b.String())
}

// filterOffer takes out of offer the m= sections the parser cannot read and
// returns the rest with what was taken out. An offer whose session part
// does not parse is returned unchanged (the core refuses it).
func filterOffer(offer []byte) ([]byte, []rejectedLine) {
	session, sections := sdpLines(offer)
	if len(sections) == 0 || len(sections) > sdpx.MaxMedia {
		return offer, nil
	}
	if _, err := sdpx.Parse(joinSDP(session, nil)); err != nil {
		return offer, nil
	}
	var kept [][]string
	var rejected []rejectedLine
	for i, s := range sections {
		if _, err := sdpx.Parse(joinSDP(session, [][]string{s})); err == nil {
			kept = append(kept, s)
			continue
		}
		rejected = append(rejected, rejectedLine{index: i, mline: zeroPort(s[0]), mid: midOf(s)})
	}
	if len(rejected) == 0 {
		return offer, nil
	}
	return joinSDP(session, kept), rejected
}

// zeroPort rewrites an m= line with port 0 (and no port count).
func zeroPort(m string) string {
	f := strings.Fields(strings.TrimPrefix(m, "m="))
	if len(f) < 3 {
		return "m=" + strings.Join(append(f, "0", "-", "-")[:3], " ")
	}
	f[1] = "0"
	return "m=" + strings.Join(f, " ")
}

func midOf(section []string) string {
	for _, l := range section[1:] {
		if v, ok := strings.CutPrefix(l, "a=mid:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// restoreAnswer puts the rejected lines back into the core's answer, each
// at its offered position, so that the answer has one m= line per offered
// line in the same order (RFC 3264 §6).
func restoreAnswer(answer []byte, rejected []rejectedLine) []byte {
	if len(rejected) == 0 {
		return answer
	}
	session, sections := sdpLines(answer)
	out := make([][]string, 0, len(sections)+len(rejected))
	next := 0
	for _, r := range rejected {
		for len(out) < r.index && next < len(sections) {
			out = append(out, sections[next])
			next++
		}
		s := []string{r.mline}
		if r.mid != "" {
			s = append(s, "a=mid:"+r.mid)
		}
		out = append(out, s)
	}
	out = append(out, sections[next:]...)
	return joinSDP(session, out)
}
