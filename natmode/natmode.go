package natmode

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"time"
)

// Mode says how a flow obtains the address it advertises to its peer.
type Mode int

// The NAT traversal modes of reflow.
const (
	// None sends and receives media on the local binding only.
	None Mode = iota
	// STUNBinding discovers the server-reflexive address with a STUN Binding request.
	STUNBinding
	// TURNUDP allocates a relayed address on a TURN server reached over UDP.
	TURNUDP
	// TURNTCP allocates a relayed address on a TURN server reached over TCP (RFC 6062 framing).
	TURNTCP
	// TURNTLS allocates a relayed address on a TURN server reached over TLS.
	TURNTLS
)

var modeNames = [...]string{"none", "stun", "turn-udp", "turn-tcp", "turn-tls"}

// String returns the mode's short name, as accepted by ParseMode.
func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("Mode(%d)", int(m))
	}
	return modeNames[m]
}

// ParseMode parses a short name ("none", "stun", "turn-udp", "turn-tcp", "turn-tls").
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if n == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownMode, s)
}

// IsTURN reports whether the mode allocates a relayed address.
func (m Mode) IsTURN() bool { return m == TURNUDP || m == TURNTCP || m == TURNTLS }

// Default timers, used when the matching Config field is zero.
const (
	// DefaultTimeout bounds STUN binding discovery and TURN allocation.
	DefaultTimeout = 10 * time.Second
	// DefaultKeepalive is the STUN binding keep-alive interval.
	DefaultKeepalive = 15 * time.Second
	// DefaultSTUNPort is the port used when Server has port 0 (3478, RFC 8489).
	DefaultSTUNPort = 3478
	// DefaultTURNSPort is the port used for TURNTLS when Server has port 0 (5349).
	DefaultTURNSPort = 5349
	// DefaultLiveness is how soon a dead or restarted TURN server is
	// reported (Config.Liveness).
	DefaultLiveness = 30 * time.Second
	// MinLiveness is the smallest Config.Liveness accepted.
	MinLiveness = 5 * time.Second
)

// Family selects the address family of a TURN relay (RFC 8656 §7.2, §18.9, §18.11).
type Family int

// The relay address families.
const (
	// FamilyDefault sends no family attribute: the server allocates IPv4.
	// Servers that do not know the attributes accept it.
	FamilyDefault Family = iota
	// FamilyIPv4 asks for an IPv4 relay explicitly (REQUESTED-ADDRESS-FAMILY 0x01).
	FamilyIPv4
	// FamilyIPv6 asks for an IPv6 relay only (REQUESTED-ADDRESS-FAMILY 0x02).
	FamilyIPv6
	// FamilyBoth asks for an IPv4 and an IPv6 relay (ADDITIONAL-ADDRESS-FAMILY 0x02);
	// a server that cannot give IPv6 still gives IPv4.
	FamilyBoth
)

var familyNames = [...]string{"default", "ipv4", "ipv6", "both"}

// String returns "default", "ipv4", "ipv6" or "both".
func (f Family) String() string {
	if f < 0 || int(f) >= len(familyNames) {
		return fmt.Sprintf("Family(%d)", int(f))
	}
	return familyNames[f]
}

// Config is the NAT traversal configuration of one media stream. The zero value means None.
type Config struct {
	// Mode selects the traversal method.
	Mode Mode
	// Server is the STUN or TURN server. Port 0 means 3478 (5349 for TURNTLS).
	Server netip.AddrPort
	// Host names the server when Server is not set: a DNS name or an IP
	// literal, with an optional port ("turn.example.com", "turn.example.com:443",
	// "[2001:db8::1]:3478"). The flow resolves it under its setup context
	// and uses the first address of its local address's family. For TURNTLS
	// it is also the default ServerName. ParseURI fills it from a
	// stun:/turn:/turns: URI.
	Host string
	// Username and Password are the TURN long-term credentials (RFC 8489 §9.2).
	// The realm and nonce come from the server.
	Username, Password string
	// Timeout bounds address discovery or allocation. Zero means DefaultTimeout.
	Timeout time.Duration
	// Keepalive is the STUN binding refresh interval in STUNBinding mode.
	// Zero means DefaultKeepalive; a negative value turns keep-alives off.
	Keepalive time.Duration
	// ServerName is the name checked in the TURN server's TLS certificate.
	// Empty means the host name of Host, else the server's IP address.
	ServerName string
	// RootCAs verifies the TURN server's TLS certificate. Nil means the system roots.
	RootCAs *x509.CertPool
	// TLSConfig, when set, is used as is for TURNTLS (ServerName and RootCAs are then ignored).
	TLSConfig *tls.Config
	// Lifetime is the TURN allocation lifetime to request (RFC 8656 §7.2, the
	// LIFETIME attribute). Zero leaves it to the server (usually 10 minutes).
	// The allocation is refreshed at least at half its granted lifetime.
	Lifetime time.Duration
	// Family is the address family of the TURN relay. Zero (FamilyDefault)
	// sends no family attribute and gets IPv4.
	Family Family
	// Liveness bounds how long a TURN flow takes to notice that its server
	// died or lost the allocation (restart) and report ErrAllocationLost:
	// the flow refreshes the allocation every Liveness/2 and reports the
	// loss when no authenticated answer came within Liveness of the last
	// one. Zero means DefaultLiveness (30 s); it must be at least
	// MinLiveness (5 s). A negative value turns probing off: then the
	// allocation is only refreshed at half its lifetime and a dead UDP
	// server is noticed when the lifetime ends.
	Liveness time.Duration
}

// LivenessOrDefault returns Liveness, DefaultLiveness when it is zero, or 0
// when probing is off.
func (c Config) LivenessOrDefault() time.Duration {
	switch {
	case c.Liveness < 0:
		return 0
	case c.Liveness == 0:
		return DefaultLiveness
	}
	return c.Liveness
}

// ServerAddr returns Server with the mode's default port filled in. When
// only Host is set and it is an IP literal, it returns that address; for a
// host name it returns the zero AddrPort (the flow resolves it).
func (c Config) ServerAddr() netip.AddrPort {
	if !c.Server.Addr().IsValid() && c.Host != "" {
		host, port, err := c.HostPort()
		if ip, perr := netip.ParseAddr(host); err == nil && perr == nil {
			return netip.AddrPortFrom(ip.Unmap(), port)
		}
		return netip.AddrPort{}
	}
	if c.Server.Port() != 0 {
		return c.Server
	}
	p := uint16(DefaultSTUNPort)
	if c.Mode == TURNTLS {
		p = DefaultTURNSPort
	}
	return netip.AddrPortFrom(c.Server.Addr(), p)
}

// TimeoutOrDefault returns Timeout, or DefaultTimeout when it is zero.
func (c Config) TimeoutOrDefault() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// KeepaliveOrDefault returns the keep-alive interval; zero means off.
func (c Config) KeepaliveOrDefault() time.Duration {
	switch {
	case c.Keepalive < 0:
		return 0
	case c.Keepalive == 0:
		return DefaultKeepalive
	}
	return c.Keepalive
}

// Validate checks that the configuration is complete for its mode.
func (c Config) Validate() error {
	switch {
	case c.Mode < None || c.Mode > TURNTLS:
		return fmt.Errorf("%w: %d", ErrUnknownMode, int(c.Mode))
	case c.Mode == None:
		return nil
	case !c.Server.Addr().IsValid() && c.Host == "":
		return fmt.Errorf("%w: mode %s needs a server address or host", ErrInvalidConfig, c.Mode)
	case c.Family < FamilyDefault || c.Family > FamilyBoth:
		return fmt.Errorf("%w: relay family %d", ErrInvalidConfig, int(c.Family))
	case c.Liveness > 0 && c.Liveness < MinLiveness:
		return fmt.Errorf("%w: Liveness %v is below the minimum %v", ErrInvalidConfig, c.Liveness, MinLiveness)
	case c.Mode.IsTURN() && (c.Username == "" || c.Password == ""):
		return fmt.Errorf("%w: mode %s needs a username and password", ErrInvalidConfig, c.Mode)
	}
	if c.Host != "" {
		if _, _, err := c.HostPort(); err != nil {
			return err
		}
	}
	return nil
}
