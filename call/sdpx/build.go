package sdpx

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/srtp"
)

// Session is a session description to write: an offer or an answer.
type Session struct {
	// Username is the o= user name; "" writes "-".
	Username string
	// SessionID and Version are the o= session id and version; the version
	// must grow with every changed description (RFC 3264 §8).
	SessionID, Version uint64
	// Addr is the o= address and the session-level c= address. Required.
	Addr netip.Addr
	// Media are the m= lines, in order.
	Media []Line
	// ICELite writes a session-level a=ice-lite (RFC 8839 §5.3): we are a
	// lite ICE agent.
	ICELite bool
	// Bundle writes a=group:BUNDLE with these mids (RFC 9143) when not empty.
	Bundle []string
}

// Line is one m= line to write. A Line with a zero RTP port is written as a
// rejected line: "m=<type> 0 <proto> <formats>" and its a=mid, nothing else.
type Line struct {
	// Type is the media type; "" means "audio".
	Type string
	// RTP is the RTP session address: the m= port, and a media-level c= when
	// its address differs from Session.Addr.
	RTP netip.AddrPort
	// RTCP is written as a=rtcp (RFC 3605) unless RTCPMux is set.
	RTCP netip.AddrPort
	// RTCPMux writes a=rtcp-mux.
	RTCPMux bool
	// Security selects the protocol when Proto is "".
	Security Security
	// Proto overrides the protocol (an answer repeats the offer's).
	Proto string
	// Formats are written on a rejected line (the offer's); ignored otherwise.
	Formats []string
	// Codecs are the payload formats, in preference order.
	Codecs []Codec
	// Direction is written explicitly, sendrecv included.
	Direction Direction
	// Crypto are written as a=crypto lines (SDES).
	Crypto []srtp.Crypto
	// Fingerprint is written as a=fingerprint when set (DTLS-SRTP).
	Fingerprint dtlssrtp.Fingerprint
	// Setup is written as a=setup when non-zero.
	Setup dtlssrtp.Setup
	// TLSID is written as a=tls-id (RFC 8842) when non-empty (with
	// Fingerprint).
	TLSID string
	// Mid is written as a=mid when non-empty.
	Mid string
	// ICEUfrag and ICEPwd are written as a=ice-ufrag and a=ice-pwd when
	// ICEUfrag is non-empty (RFC 8839 §5.4).
	ICEUfrag, ICEPwd string
	// Candidates are written as a=candidate lines, followed by
	// a=end-of-candidates (RFC 8840: we gather before we send) unless
	// MoreCandidates is set.
	Candidates []Candidate
	// Trickle writes a=ice-options:trickle (RFC 8840 §5.1): we take the
	// peer's candidates trickled after its description (with ICEUfrag).
	Trickle bool
	// MoreCandidates leaves a=end-of-candidates out: more of our candidates
	// follow, trickled through the signalling (RFC 8838).
	MoreCandidates bool
}

func addrType(a netip.Addr) string {
	if a.Is4() || a.Is4In6() {
		return "IP4"
	}
	return "IP6"
}

func conn(a netip.Addr) *sdp.ConnectionInformation {
	return &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType(a), Address: &sdp.Address{Address: a.Unmap().String()}}
}

// Marshal writes the description as SDP text with CRLF line ends.
func (s Session) Marshal() ([]byte, error) {
	if !s.Addr.IsValid() {
		return nil, fmt.Errorf("%w: session address missing", ErrMalformed)
	}
	user := s.Username
	if user == "" {
		user = "-"
	}
	d := sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: user, SessionID: s.SessionID, SessionVersion: s.Version,
			NetworkType: "IN", AddressType: addrType(s.Addr), UnicastAddress: s.Addr.Unmap().String(),
		},
		SessionName:           "-",
		ConnectionInformation: conn(s.Addr),
		TimeDescriptions:      []sdp.TimeDescription{{}},
	}
	if len(s.Bundle) > 0 {
		d.Attributes = append(d.Attributes, sdp.NewAttribute("group", "BUNDLE "+strings.Join(s.Bundle, " ")))
	}
	if s.ICELite {
		d.Attributes = append(d.Attributes, sdp.NewPropertyAttribute("ice-lite"))
	}
	for _, l := range s.Media {
		d.MediaDescriptions = append(d.MediaDescriptions, l.description(s.Addr))
	}
	return d.Marshal()
}

func (l Line) description(sess netip.Addr) *sdp.MediaDescription {
	typ := l.Type
	if typ == "" {
		typ = "audio"
	}
	proto := l.Proto
	if proto == "" {
		proto = l.Security.Proto()
	}
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{Media: typ, Port: sdp.RangedPort{Value: int(l.RTP.Port())}, Protos: splitProto(proto)}}
	if l.RTP.Port() == 0 {
		md.MediaName.Formats = append([]string(nil), l.Formats...)
		if len(md.MediaName.Formats) == 0 {
			md.MediaName.Formats = []string{"0"}
		}
		if l.Mid != "" { // RFC 9143 §7.3.3: a rejected line keeps its mid
			md.Attributes = append(md.Attributes, sdp.NewAttribute("mid", l.Mid))
		}
		return md
	}
	for _, c := range l.Codecs {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(c.PT)))
	}
	if l.RTP.Addr().Unmap() != sess.Unmap() {
		md.ConnectionInformation = conn(l.RTP.Addr())
	}
	for _, c := range l.Codecs {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", c.RTPMap()))
		if c.Fmtp != "" {
			md.Attributes = append(md.Attributes, sdp.NewAttribute("fmtp", strconv.Itoa(int(c.PT))+" "+c.Fmtp))
		}
	}
	if l.RTCPMux {
		md.Attributes = append(md.Attributes, sdp.NewPropertyAttribute("rtcp-mux"))
	} else if l.RTCP.IsValid() {
		a := l.RTCP.Addr().Unmap()
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtcp", fmt.Sprintf("%d IN %s %s", l.RTCP.Port(), addrType(a), a)))
	}
	for _, c := range l.Crypto {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("crypto", c.Value()))
	}
	if len(l.Fingerprint.Value) > 0 {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("fingerprint", l.Fingerprint.String()))
	}
	if l.Setup != 0 {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("setup", l.Setup.String()))
	}
	if l.TLSID != "" {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("tls-id", l.TLSID))
	}
	if l.Mid != "" {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("mid", l.Mid))
	}
	if l.ICEUfrag != "" {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("ice-ufrag", l.ICEUfrag), sdp.NewAttribute("ice-pwd", l.ICEPwd))
		if l.Trickle {
			md.Attributes = append(md.Attributes, sdp.NewAttribute("ice-options", "trickle"))
		}
	}
	for _, c := range l.Candidates {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("candidate", c.Value()))
	}
	if len(l.Candidates) > 0 && !l.MoreCandidates {
		md.Attributes = append(md.Attributes, sdp.NewPropertyAttribute("end-of-candidates"))
	}
	md.Attributes = append(md.Attributes, sdp.NewPropertyAttribute(l.Direction.String()))
	return md
}

func splitProto(p string) []string {
	var out []string
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}
