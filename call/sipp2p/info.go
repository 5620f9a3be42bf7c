package sipp2p

import (
	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
)

// Header is one header field of a SIP request, as received.
type Header struct {
	// Name is the header's name as sipgo spells it (e.g. "Call-ID").
	Name string
	// Value is the header's value.
	Value string
}

// CallInfo is what the initial INVITE of an incoming call said: who is
// called (the Request-URI, e.g. to route by the number dialled), who calls,
// and every header.
type CallInfo struct {
	// RequestURI is the INVITE's Request-URI.
	RequestURI string
	// From and To are the URIs of the From and To headers.
	From, To string
	// FromDisplayName and ToDisplayName are their display names, or "".
	FromDisplayName, ToDisplayName string
	// Headers are the INVITE's header fields in order.
	Headers []Header
}

// Get returns the value of the first header named name (case-insensitive), or "".
func (i CallInfo) Get(name string) string {
	for _, h := range i.Headers {
		if equalFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Info returns the INVITE facts of an incoming call this package made, and
// false for any other call.
func Info(c *call.Call) (CallInfo, bool) {
	if c == nil {
		return CallInfo{}, false
	}
	d, ok := c.Signaling().(*dialog)
	if !ok || d.uac {
		return CallInfo{}, false
	}
	return d.info, true
}

func infoOf(req *sip.Request) CallInfo {
	i := CallInfo{RequestURI: req.Recipient.String()}
	if f := req.From(); f != nil {
		i.From, i.FromDisplayName = f.Address.String(), f.DisplayName
	}
	if t := req.To(); t != nil {
		i.To, i.ToDisplayName = t.Address.String(), t.DisplayName
	}
	for _, h := range req.Headers() {
		i.Headers = append(i.Headers, Header{Name: h.Name(), Value: h.Value()})
	}
	return i
}
