package flow

import (
	"net"
	"net/netip"
)

// Component is the media component a flow carries (RFC 3550 numbering: 1 RTP, 2 RTCP).
type Component int

// The components.
const (
	RTP  Component = 1
	RTCP Component = 2
)

// String returns "rtp" or "rtcp".
func (c Component) String() string {
	switch c {
	case RTP:
		return "rtp"
	case RTCP:
		return "rtcp"
	}
	return "component?"
}

// Transport is the transport protocol of a tuple.
type Transport int

// The transports.
const (
	UDP Transport = iota
	TCP
	TLS
)

// String returns "udp", "tcp" or "tls".
func (t Transport) String() string {
	switch t {
	case UDP:
		return "udp"
	case TCP:
		return "tcp"
	case TLS:
		return "tls"
	}
	return "transport?"
}

// Tuple is a transport address (reflow's StunTuple). The zero Tuple is "none".
type Tuple struct {
	Transport Transport
	Addr      netip.AddrPort
}

// IsValid reports whether the tuple holds an address.
func (t Tuple) IsValid() bool { return t.Addr.IsValid() }

// String returns "udp 192.0.2.1:5000", or "none" for the zero Tuple.
func (t Tuple) String() string {
	if !t.IsValid() {
		return "none"
	}
	return t.Transport.String() + " " + t.Addr.String()
}

// addrPortOf converts a net.Addr to a netip.AddrPort with IPv4-mapped addresses unmapped.
func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.IsValid()
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.IsValid()
	case nil:
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}
