package flow

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"
)

// ErrInvalidCandidate is returned for a remote candidate the agent cannot use
// (not UDP, no address, a component other than the flow's) or a candidate
// line that does not parse.
var ErrInvalidCandidate = errors.New("flow: invalid ICE candidate")

// CandidateType is an ICE candidate type (RFC 8445 §5.1.1).
type CandidateType int

// The candidate types.
const (
	// CandidateHost is an address of the flow's own socket.
	CandidateHost CandidateType = iota + 1
	// CandidateServerReflexive is the address a NAT gave the socket, learnt
	// from a STUN server or a TURN allocate response.
	CandidateServerReflexive
	// CandidatePeerReflexive is an address learnt from a connectivity check.
	CandidatePeerReflexive
	// CandidateRelay is the relayed address of a TURN allocation.
	CandidateRelay
)

var candidateTypeNames = [...]string{"", "host", "srflx", "prflx", "relay"}

// String returns the SDP name: "host", "srflx", "prflx" or "relay".
func (t CandidateType) String() string {
	if t > 0 && int(t) < len(candidateTypeNames) {
		return candidateTypeNames[t]
	}
	return "unknown"
}

// preference is the RFC 8445 §5.1.2.2 recommended type preference.
func (t CandidateType) preference() uint32 {
	switch t {
	case CandidateHost:
		return 126
	case CandidatePeerReflexive:
		return 110
	case CandidateServerReflexive:
		return 100
	}
	return 0
}

// Candidate is one ICE candidate of one component (RFC 8445 §5.1, the
// a=candidate attribute of RFC 8839 §5.1). Only UDP candidates exist here.
type Candidate struct {
	// Foundation groups candidates of the same type, base IP and server.
	Foundation string
	// Component is 1 for RTP and 2 for RTCP.
	Component int
	// Priority is the RFC 8445 §5.1.2 priority.
	Priority uint32
	// Addr is the candidate's transport address.
	Addr netip.AddrPort
	// Type is the candidate type.
	Type CandidateType
	// Related is raddr/rport: the base of a reflexive candidate, the mapped
	// address of a relayed one; zero for host candidates.
	Related netip.AddrPort
}

// candidatePriority computes RFC 8445 §5.1.2.1:
// 2^24*type preference + 2^8*local preference + (256 - component).
func candidatePriority(t CandidateType, localPref uint16, component int) uint32 {
	return t.preference()<<24 | uint32(localPref)<<8 | uint32(256-component)
}

// foundation derives a foundation (RFC 8445 §5.1.1.3) from the type, the
// base's IP, the server's IP and the transport.
func foundation(t CandidateType, base netip.Addr, server netip.Addr) string {
	h := fnv.New32a()
	h.Write([]byte(t.String()))
	h.Write(base.AsSlice())
	h.Write(server.AsSlice())
	h.Write([]byte("udp"))
	return strconv.FormatUint(uint64(h.Sum32()), 10)
}

// String returns the a=candidate value (RFC 8839 §5.1) without "candidate:":
// "foundation component udp priority address port typ type [raddr a rport p]".
func (c Candidate) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d udp %d %s %d typ %s", c.Foundation, c.Component, c.Priority,
		c.Addr.Addr().Unmap().String(), c.Addr.Port(), c.Type)
	if c.Type != CandidateHost && c.Related.IsValid() {
		fmt.Fprintf(&b, " raddr %s rport %d", c.Related.Addr().Unmap().String(), c.Related.Port())
	}
	return b.String()
}

// ParseCandidate parses an a=candidate value, with or without a leading
// "a=" or "candidate:". Extension attributes (generation, ufrag, network-id,
// ...) are ignored. Only UDP candidates with an IP address are accepted:
// others (TCP, mDNS ".local" names) give an error matching ErrInvalidCandidate.
func ParseCandidate(s string) (Candidate, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "a=")
	s = strings.TrimPrefix(s, "candidate:")
	f := strings.Fields(s)
	bad := func(what string) (Candidate, error) {
		return Candidate{}, fmt.Errorf("%w: %s in %q", ErrInvalidCandidate, what, s)
	}
	if len(f) < 8 || f[6] != "typ" {
		return bad("grammar")
	}
	if !strings.EqualFold(f[2], "udp") {
		return bad("transport " + f[2])
	}
	comp, err := strconv.ParseUint(f[1], 10, 16)
	if err != nil || comp < 1 || comp > 256 {
		return bad("component")
	}
	prio, err := strconv.ParseUint(f[3], 10, 32)
	if err != nil {
		return bad("priority")
	}
	addr, err := parseHostPort(f[4], f[5])
	if err != nil {
		return bad("address")
	}
	c := Candidate{Foundation: f[0], Component: int(comp), Priority: uint32(prio), Addr: addr}
	switch f[7] {
	case "host":
		c.Type = CandidateHost
	case "srflx":
		c.Type = CandidateServerReflexive
	case "prflx":
		c.Type = CandidatePeerReflexive
	case "relay":
		c.Type = CandidateRelay
	default:
		return bad("type")
	}
	for i := 8; i+1 < len(f); i += 2 {
		if f[i] == "raddr" && i+3 < len(f) && f[i+2] == "rport" {
			if r, err := parseHostPort(f[i+1], f[i+3]); err == nil {
				c.Related = r
			}
			break
		}
	}
	return c, nil
}

func parseHostPort(a, p string) (netip.AddrPort, error) {
	ip, err := netip.ParseAddr(a)
	if err != nil || ip.Zone() != "" {
		return netip.AddrPort{}, ErrInvalidCandidate
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return netip.AddrPort{}, ErrInvalidCandidate
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}

// pairPriority computes RFC 8445 §6.1.2.3 from the controlling agent's
// candidate priority g and the controlled agent's d.
func pairPriority(g, d uint32) uint64 {
	lo, hi := min(g, d), max(g, d)
	p := uint64(lo)<<32 | uint64(hi)<<1
	if g > d {
		p |= 1
	}
	return p
}
