package sdpx

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/srtp"
)

// Limits of Parse.
const (
	// MaxSize is the longest SDP Parse accepts, in bytes.
	MaxSize = 64 << 10
	// MaxMedia is the largest number of m= lines Parse accepts.
	MaxMedia = 32
)

// Description is an analysed session description: the session-level facts
// and one Media per m= line, in order. Media-level attributes win over
// session-level ones.
type Description struct {
	// SessionID and Version are the o= line's session id and version.
	SessionID, Version uint64
	// Media are the m= lines in order.
	Media []Media
	// ICELite is set by a session-level a=ice-lite (RFC 8839 §5.3): the
	// peer is a lite ICE agent.
	ICELite bool
	// Bundles are the a=group:BUNDLE groups (RFC 9143), each a list of
	// a=mid values; the first mid of a group is its tagged m= line.
	Bundles [][]string
	// SDP is the pion/sdp form, for attributes this package does not type.
	SDP *sdp.SessionDescription
}

// Media is one analysed m= line.
type Media struct {
	// Type is the media type, e.g. "audio".
	Type string
	// Proto is the transport protocol as written, e.g. "RTP/SAVP".
	Proto string
	// Formats are the m= line's formats as written.
	Formats []string
	// Port is the m= port; 0 means the line is rejected or disabled.
	Port uint16
	// RTP is where to send RTP: the connection address and the m= port. Its
	// address is unspecified (0.0.0.0) for RFC 2543 style hold.
	RTP netip.AddrPort
	// RTCP is where to send RTCP: a=rtcp (RFC 3605) or the RTP port + 1. It is
	// the zero AddrPort when RTCPMux is set.
	RTCP netip.AddrPort
	// RTCPMux is set by a=rtcp-mux (RFC 5761).
	RTCPMux bool
	// Codecs are the RTP formats in the order of the m= line; dynamic types
	// without a=rtpmap are left out.
	Codecs []Codec
	// Direction is the media direction (sendrecv when absent).
	Direction Direction
	// Security is what Proto says about protection; RTP is false for non-RTP lines.
	Security Security
	// RTPProto is true when Proto is an RTP profile this package understands.
	RTPProto bool
	// Crypto are the usable a=crypto lines (RFC 4568) in order; lines with
	// unknown suites or refused parameters are left out (see BadCrypto).
	Crypto []srtp.Crypto
	// BadCrypto counts a=crypto lines that could not be used.
	BadCrypto int
	// Fingerprints are the a=fingerprint values (RFC 8122), media level
	// first, else session level.
	Fingerprints []dtlssrtp.Fingerprint
	// Setup is the a=setup role (RFC 4145), 0 when absent.
	Setup dtlssrtp.Setup
	// Mid is the a=mid value, or "".
	Mid string
	// ICEUfrag and ICEPwd are the a=ice-ufrag and a=ice-pwd values (RFC 8839
	// §5.4), media level else session level, or ""; CheckICE validates them.
	ICEUfrag, ICEPwd string
	// Candidates are the usable a=candidate lines (RFC 8839 §5.1) in order;
	// lines that do not parse are left out (see BadCandidates).
	Candidates []Candidate
	// BadCandidates counts a=candidate lines that could not be used.
	BadCandidates int
	// EndOfCandidates is set by a=end-of-candidates (RFC 8840).
	EndOfCandidates bool
	// Trickle is set by a=ice-options with "trickle" (RFC 8840 §5.1), media
	// level or session level: the peer takes trickled candidates.
	Trickle bool
	// TLSID is the a=tls-id value (RFC 8842), media level else session
	// level, or "": a new value on a known transport means a new DTLS
	// association.
	TLSID string
	// SSRCs are the a=ssrc ids (RFC 5576) in order of first appearance:
	// the RTP sources the peer sends on this line (demultiplexing a BUNDLE
	// transport).
	SSRCs []uint32
	// BundleOnly is set by a=bundle-only (RFC 9143 §6): the line is only
	// usable inside a BUNDLE group.
	BundleOnly bool
}

// Parse parses and analyses an SDP body. It never panics: malformed input
// gives an error matching ErrMalformed, ErrUnsupported or ErrTooLarge.
// Lines may end in CRLF or LF, and a session-level c= or b= written after
// t= (as some SIP equipment does) is moved into place first.
func Parse(b []byte) (d *Description, err error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	if strings.Count(string(b), "m=") > MaxMedia*4 {
		return nil, fmt.Errorf("%w: too many lines", ErrTooLarge)
	}
	if !strings.HasPrefix(string(b), "v=") {
		return nil, fmt.Errorf("%w: does not start with v=", ErrMalformed)
	}
	var s sdp.SessionDescription
	if err := unmarshal(&s, normalise(b)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(s.MediaDescriptions) > MaxMedia {
		return nil, fmt.Errorf("%w: %d media descriptions", ErrTooLarge, len(s.MediaDescriptions))
	}
	d = &Description{SessionID: s.Origin.SessionID, Version: s.Origin.SessionVersion, SDP: &s}
	_, d.ICELite = s.Attribute("ice-lite")
	for _, a := range s.Attributes {
		if a.Key != "group" {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) > 1 && strings.EqualFold(f[0], "BUNDLE") {
			d.Bundles = append(d.Bundles, f[1:])
		}
	}
	for i, md := range s.MediaDescriptions {
		m, err := analyse(&s, md)
		if err != nil {
			return nil, fmt.Errorf("m-line %d: %w", i, err)
		}
		d.Media = append(d.Media, m)
	}
	return d, nil
}

// Bundle returns the BUNDLE group that holds mid, or nil.
func (d *Description) Bundle(mid string) []string {
	if mid == "" {
		return nil
	}
	for _, g := range d.Bundles {
		for _, m := range g {
			if m == mid {
				return g
			}
		}
	}
	return nil
}

// unmarshal calls pion/sdp, turning a panic into an error.
func unmarshal(s *sdp.SessionDescription, b []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parser panic: %v", r)
		}
	}()
	return s.Unmarshal(b)
}

// sessionRank orders session-level lines as RFC 8866 §5 requires.
var sessionRank = map[byte]int{'v': 0, 'o': 1, 's': 2, 'i': 3, 'u': 4, 'e': 5, 'p': 6, 'c': 7, 'b': 8, 't': 9, 'r': 9, 'z': 10, 'k': 11, 'a': 12}

// normalise converts LF to CRLF and puts the session-level lines into RFC
// order (t= and r= keep their relative order).
func normalise(b []byte) []byte {
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	end := len(lines)
	for i, l := range lines {
		if strings.HasPrefix(l, "m=") {
			end = i
			break
		}
	}
	sess := lines[:end]
	ok := true
	for _, l := range sess {
		if len(l) < 2 || l[1] != '=' {
			ok = false
			break
		}
		if _, known := sessionRank[l[0]]; !known {
			ok = false
			break
		}
	}
	if ok {
		// Stable insertion sort; session sections are short.
		for i := 1; i < len(sess); i++ {
			for j := i; j > 0 && sessionRank[sess[j][0]] < sessionRank[sess[j-1][0]]; j-- {
				sess[j], sess[j-1] = sess[j-1], sess[j]
			}
		}
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

func analyse(s *sdp.SessionDescription, md *sdp.MediaDescription) (Media, error) {
	m := Media{
		Type:    md.MediaName.Media,
		Proto:   strings.Join(md.MediaName.Protos, "/"),
		Formats: md.MediaName.Formats,
	}
	if md.MediaName.Port.Value < 0 || md.MediaName.Port.Value > 65535 {
		return m, fmt.Errorf("%w: port %d", ErrMalformed, md.MediaName.Port.Value)
	}
	m.Port = uint16(md.MediaName.Port.Value)
	m.Security, m.RTPProto = SecurityOf(m.Proto)
	m.Mid, _ = md.Attribute("mid")
	_, m.BundleOnly = md.Attribute("bundle-only")
	if !m.RTPProto || m.Port == 0 && !m.BundleOnly {
		return m, nil
	}
	ci := md.ConnectionInformation
	if ci == nil {
		ci = s.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		if m.Port == 0 { // bundle-only: the BUNDLE transport is elsewhere
			ci = &sdp.ConnectionInformation{NetworkType: "IN", AddressType: "IP4", Address: &sdp.Address{Address: "0.0.0.0"}}
		} else {
			return m, fmt.Errorf("%w: no connection address", ErrMalformed)
		}
	}
	if ci.NetworkType != "IN" {
		return m, fmt.Errorf("%w: network type %q", ErrUnsupported, ci.NetworkType)
	}
	ip, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		return m, fmt.Errorf("%w: connection address %q is not an IP address", ErrUnsupported, ci.Address.Address)
	}
	if ip.Zone() != "" || (ci.AddressType == "IP4") != ip.Is4() {
		return m, fmt.Errorf("%w: connection address %q does not match %q", ErrMalformed, ci.Address.Address, ci.AddressType)
	}
	m.RTP = netip.AddrPortFrom(ip, m.Port)

	attr := func(key string) (string, bool) {
		if v, ok := md.Attribute(key); ok {
			return v, true
		}
		return s.Attribute(key)
	}
	_, m.RTCPMux = md.Attribute("rtcp-mux")
	if !m.RTCPMux {
		m.RTCP = netip.AddrPortFrom(ip, m.Port+1)
		if m.Port == 65535 {
			m.RTCP = netip.AddrPortFrom(ip, 0)
		}
		if v, ok := md.Attribute("rtcp"); ok {
			if m.RTCP, err = parseRTCP(v, ip); err != nil {
				return m, err
			}
		}
	}
	m.Direction = SendRecv
	for _, a := range s.Attributes {
		if d, ok := ParseDirection(a.Key); ok {
			m.Direction = d
		}
	}
	for _, a := range md.Attributes {
		if d, ok := ParseDirection(a.Key); ok {
			m.Direction = d
		}
	}
	if m.Codecs, err = codecsOf(md); err != nil {
		return m, err
	}
	for _, a := range md.Attributes {
		if a.Key != "crypto" {
			continue
		}
		c, err := srtp.ParseCrypto(a.Value)
		if err != nil {
			m.BadCrypto++
			continue
		}
		m.Crypto = append(m.Crypto, c)
	}
	fps := func(attrs []sdp.Attribute) error {
		for _, a := range attrs {
			if a.Key != "fingerprint" {
				continue
			}
			f, err := dtlssrtp.ParseFingerprint(a.Value)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrMalformed, err)
			}
			m.Fingerprints = append(m.Fingerprints, f)
		}
		return nil
	}
	if err := fps(md.Attributes); err != nil {
		return m, err
	}
	if len(m.Fingerprints) == 0 {
		if err := fps(s.Attributes); err != nil {
			return m, err
		}
	}
	if v, ok := attr("setup"); ok {
		if m.Setup, err = dtlssrtp.ParseSetup(v); err != nil {
			return m, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	m.TLSID, _ = attr("tls-id")
	for _, a := range md.Attributes {
		if a.Key != "ssrc" {
			continue
		}
		id, _, _ := strings.Cut(a.Value, " ")
		if n, err := strconv.ParseUint(id, 10, 32); err == nil && !slices.Contains(m.SSRCs, uint32(n)) && len(m.SSRCs) < 64 {
			m.SSRCs = append(m.SSRCs, uint32(n))
		}
	}
	m.ICEUfrag, _ = attr("ice-ufrag")
	m.ICEPwd, _ = attr("ice-pwd")
	_, m.EndOfCandidates = attr("end-of-candidates")
	for _, as := range [][]sdp.Attribute{md.Attributes, s.Attributes} {
		for _, a := range as {
			if a.Key == "ice-options" && slices.Contains(strings.Fields(a.Value), "trickle") {
				m.Trickle = true
			}
		}
	}
	for _, a := range md.Attributes {
		if a.Key != "candidate" {
			continue
		}
		c, err := ParseCandidate(a.Value)
		if err != nil {
			m.BadCandidates++
			continue
		}
		m.Candidates = append(m.Candidates, c)
	}
	return m, nil
}

// parseRTCP parses an RFC 3605 a=rtcp value: "port [IN IP4|IP6 addr]".
func parseRTCP(v string, def netip.Addr) (netip.AddrPort, error) {
	f := strings.Fields(v)
	if len(f) != 1 && len(f) != 4 {
		return netip.AddrPort{}, fmt.Errorf("%w: a=rtcp:%s", ErrMalformed, v)
	}
	p, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: a=rtcp port %q", ErrMalformed, f[0])
	}
	ip := def
	if len(f) == 4 {
		if f[1] != "IN" {
			return netip.AddrPort{}, fmt.Errorf("%w: a=rtcp network %q", ErrUnsupported, f[1])
		}
		if ip, err = netip.ParseAddr(f[3]); err != nil || ip.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("%w: a=rtcp address %q", ErrUnsupported, f[3])
		}
	}
	return netip.AddrPortFrom(ip, uint16(p)), nil
}

// codecsOf resolves the m= line's formats through a=rtpmap, a=fmtp and the static table.
func codecsOf(md *sdp.MediaDescription) ([]Codec, error) {
	maps := map[uint8]Codec{}
	fmtp := map[uint8]string{}
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap":
			pt, rest, ok := strings.Cut(a.Value, " ")
			n, err := strconv.ParseUint(pt, 10, 7)
			if !ok || err != nil {
				return nil, fmt.Errorf("%w: a=rtpmap:%s", ErrMalformed, a.Value)
			}
			parts := strings.Split(strings.TrimSpace(rest), "/")
			if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
				return nil, fmt.Errorf("%w: a=rtpmap:%s", ErrMalformed, a.Value)
			}
			rate, err := strconv.ParseUint(parts[1], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: a=rtpmap:%s", ErrMalformed, a.Value)
			}
			c := Codec{PT: uint8(n), Name: parts[0], Rate: uint32(rate)}
			if len(parts) == 3 {
				ch, err := strconv.ParseUint(parts[2], 10, 16)
				if err != nil {
					return nil, fmt.Errorf("%w: a=rtpmap:%s", ErrMalformed, a.Value)
				}
				c.Channels = uint16(ch)
			}
			maps[c.PT] = c
		case "fmtp":
			pt, rest, _ := strings.Cut(a.Value, " ")
			if n, err := strconv.ParseUint(pt, 10, 7); err == nil {
				fmtp[uint8(n)] = strings.TrimSpace(rest)
			}
		}
	}
	var out []Codec
	for _, f := range md.MediaName.Formats {
		n, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			return nil, fmt.Errorf("%w: RTP payload type %q", ErrMalformed, f)
		}
		pt := uint8(n)
		c, ok := maps[pt]
		if !ok {
			if c, ok = staticCodecs[pt]; !ok {
				continue
			}
		}
		c.Fmtp = fmtp[pt]
		out = append(out, c)
	}
	return out, nil
}
