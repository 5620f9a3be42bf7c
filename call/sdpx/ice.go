package sdpx

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"
)

// ICE in SDP (RFC 8839): a=ice-ufrag, a=ice-pwd, a=ice-lite and a=candidate.

// CandidateType is an ICE candidate type (RFC 8445 §5.1.1).
type CandidateType int

// The candidate types. The zero value is Host.
const (
	// Host is an address on a local interface.
	Host CandidateType = iota
	// ServerReflexive is the address a NAT gave us, learnt from a STUN server.
	ServerReflexive
	// PeerReflexive is an address learnt from a connectivity check.
	PeerReflexive
	// Relayed is a TURN relay address.
	Relayed
)

var candidateTypeNames = [...]string{"host", "srflx", "prflx", "relay"}

// String returns the SDP name: "host", "srflx", "prflx" or "relay".
func (t CandidateType) String() string {
	if t >= 0 && int(t) < len(candidateTypeNames) {
		return candidateTypeNames[t]
	}
	return "host"
}

// ParseCandidateType maps an SDP candidate type name to a CandidateType.
func ParseCandidateType(s string) (CandidateType, bool) {
	for i, n := range candidateTypeNames {
		if n == s {
			return CandidateType(i), true
		}
	}
	return Host, false
}

// Preference returns the RFC 8445 §5.1.2.2 recommended type preference:
// host 126, prflx 110, srflx 100, relay 0.
func (t CandidateType) Preference() uint32 {
	switch t {
	case PeerReflexive:
		return 110
	case ServerReflexive:
		return 100
	case Relayed:
		return 0
	}
	return 126
}

// The components of an RTP media line (RFC 8839 §5.1).
const (
	// ComponentRTP is the RTP component, 1.
	ComponentRTP = 1
	// ComponentRTCP is the RTCP component, 2 (absent with rtcp-mux).
	ComponentRTCP = 2
)

// Priority is the RFC 8445 §5.1.2.1 candidate priority:
// 2^24*type preference + 2^8*local preference + (256 - component).
func Priority(t CandidateType, localPref uint16, component int) uint32 {
	return t.Preference()<<24 | uint32(localPref)<<8 | uint32(256-component)&0xff
}

// Candidate is one a=candidate line (RFC 8839 §5.1):
//
//	foundation component transport priority address port typ type [raddr addr rport port] *(name value)
type Candidate struct {
	// Foundation groups candidates of the same type, base and server (1..32 ice-chars).
	Foundation string
	// Component is 1 for RTP and 2 for RTCP.
	Component int
	// Transport is the transport as written, e.g. "UDP" or "tcp"; compare
	// case-insensitively (IsUDP).
	Transport string
	// Priority is the candidate's priority.
	Priority uint32
	// Addr is the candidate's transport address.
	Addr netip.AddrPort
	// Type is the candidate type.
	Type CandidateType
	// Related is the related address (raddr/rport) of a reflexive or relayed
	// candidate, or the zero AddrPort.
	Related netip.AddrPort
	// Extensions are the name/value pairs after the related address, in
	// order, e.g. "tcptype", "active", "generation", "0".
	Extensions []string
}

// IsUDP reports whether the candidate's transport is UDP.
func (c Candidate) IsUDP() bool { return strings.EqualFold(c.Transport, "udp") }

// Value returns the a=candidate attribute value (without "candidate:").
func (c Candidate) Value() string {
	tr := c.Transport
	if tr == "" {
		tr = "UDP"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %s %d %s %d typ %s", c.Foundation, c.Component, tr, c.Priority, c.Addr.Addr().Unmap(), c.Addr.Port(), c.Type)
	if c.Related.IsValid() {
		fmt.Fprintf(&b, " raddr %s rport %d", c.Related.Addr().Unmap(), c.Related.Port())
	}
	for _, e := range c.Extensions {
		b.WriteByte(' ')
		b.WriteString(e)
	}
	return b.String()
}

// String returns the a=candidate line without the "a=" prefix.
func (c Candidate) String() string { return "candidate:" + c.Value() }

// ParseCandidate parses an a=candidate value (with or without a leading
// "candidate:"). Host names in the address (RFC 8839 allows FQDNs, mDNS
// ".local" names are common) give an error matching ErrUnsupported; any
// other deviation from the grammar one matching ErrMalformed.
func ParseCandidate(v string) (Candidate, error) {
	v = strings.TrimPrefix(v, "candidate:")
	f := strings.Fields(v)
	bad := func(what string) (Candidate, error) {
		return Candidate{}, fmt.Errorf("%w: a=candidate: %s", ErrMalformed, what)
	}
	if len(f) < 8 {
		return bad("too few fields")
	}
	if len(f)%2 != 0 {
		return bad("odd number of fields")
	}
	c := Candidate{Foundation: f[0], Transport: f[2]}
	if len(c.Foundation) > 32 || !iceChars(c.Foundation) {
		return bad("foundation")
	}
	comp, err := strconv.ParseUint(f[1], 10, 16)
	if err != nil || comp < 1 || comp > 256 {
		return bad("component id")
	}
	c.Component = int(comp)
	if !isToken(c.Transport) {
		return bad("transport")
	}
	prio, err := strconv.ParseUint(f[3], 10, 32)
	if err != nil || len(f[3]) > 10 {
		return bad("priority")
	}
	c.Priority = uint32(prio)
	if c.Addr, err = parseCandidateAddr(f[4], f[5]); err != nil {
		return Candidate{}, err
	}
	if f[6] != "typ" {
		return bad(`"typ" missing`)
	}
	var ok bool
	if c.Type, ok = ParseCandidateType(f[7]); !ok {
		return bad("candidate type " + strconv.Quote(f[7]))
	}
	rest := f[8:]
	if len(rest) >= 2 && rest[0] == "raddr" {
		if len(rest) < 4 || rest[2] != "rport" {
			return bad("raddr without rport")
		}
		if c.Related, err = parseCandidateAddr(rest[1], rest[3]); err != nil {
			return Candidate{}, err
		}
		rest = rest[4:]
	}
	for _, e := range rest {
		if !isToken(e) {
			return bad("extension " + strconv.Quote(e))
		}
	}
	if len(rest) > 0 {
		c.Extensions = append([]string(nil), rest...)
	}
	return c, nil
}

func parseCandidateAddr(a, p string) (netip.AddrPort, error) {
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: a=candidate port %q", ErrMalformed, p)
	}
	ip, err := netip.ParseAddr(a)
	if err != nil || ip.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%w: a=candidate address %q is not an IP address", ErrUnsupported, a)
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// iceChars reports whether s is 1 or more ice-chars (ALPHA / DIGIT / "+" / "/").
func iceChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// isToken reports whether s is a non-empty RFC 8866 token (printable, no separators we split on).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// LocalCandidates returns the candidates of one component for our
// transport addresses (RFC 8445 §5.1.1): a host candidate for host, a
// server-reflexive one for reflexive (raddr/rport = host) and a relayed one
// for relay (raddr/rport = reflexive, else host). Zero addresses, and a
// reflexive address equal to host (no NAT), are left out. Priorities follow
// RFC 8445 §5.1.2.1 with local preference 65535; foundations are a hash of
// type, base address and transport, so RTP and RTCP candidates of the same
// kind share one.
func LocalCandidates(component int, host, reflexive, relay netip.AddrPort) []Candidate {
	var out []Candidate
	add := func(t CandidateType, a, base, related netip.AddrPort) {
		h := fnv.New32a()
		fmt.Fprintf(h, "%s|%s|udp", t, base.Addr().Unmap())
		out = append(out, Candidate{
			Foundation: strconv.FormatUint(uint64(h.Sum32()), 10), Component: component, Transport: "UDP",
			Priority: Priority(t, 65535, component), Addr: a, Type: t, Related: related,
		})
	}
	if host.IsValid() {
		add(Host, host, host, netip.AddrPort{})
	}
	if reflexive.IsValid() && reflexive != host {
		add(ServerReflexive, reflexive, host, host)
	}
	if relay.IsValid() {
		rel := reflexive
		if !rel.IsValid() {
			rel = host
		}
		add(Relayed, relay, relay, rel)
	}
	return out
}

// The RFC 8445 §5.3 lengths of ICE credentials.
const (
	// MinICEUfrag is the shortest a=ice-ufrag, in ice-chars.
	MinICEUfrag = 4
	// MinICEPwd is the shortest a=ice-pwd, in ice-chars.
	MinICEPwd = 22
	// MaxICECredential is the longest a=ice-ufrag or a=ice-pwd.
	MaxICECredential = 256
)

// CheckICE reports whether the media line's ICE attributes are usable
// (RFC 8839 §5.4): none at all, or an a=ice-ufrag of 4 to 256 ice-chars
// together with an a=ice-pwd of 22 to 256 ice-chars. Anything else
// (credentials alone, out of grammar) gives an error matching ErrMalformed.
func (m Media) CheckICE() error {
	switch {
	case m.ICEUfrag == "" && m.ICEPwd == "":
		return nil
	case m.ICEUfrag == "":
		return fmt.Errorf("%w: a=ice-pwd without a=ice-ufrag", ErrMalformed)
	case m.ICEPwd == "":
		return fmt.Errorf("%w: a=ice-ufrag without a=ice-pwd", ErrMalformed)
	case len(m.ICEUfrag) < MinICEUfrag || len(m.ICEUfrag) > MaxICECredential || !iceChars(m.ICEUfrag):
		return fmt.Errorf("%w: a=ice-ufrag must be %d to %d ice-chars", ErrMalformed, MinICEUfrag, MaxICECredential)
	case len(m.ICEPwd) < MinICEPwd || len(m.ICEPwd) > MaxICECredential || !iceChars(m.ICEPwd):
		return fmt.Errorf("%w: a=ice-pwd must be %d to %d ice-chars", ErrMalformed, MinICEPwd, MaxICECredential)
	}
	return nil
}

// ICE reports whether the media line carries ICE credentials (a=ice-ufrag).
func (m Media) ICE() bool { return m.ICEUfrag != "" }
