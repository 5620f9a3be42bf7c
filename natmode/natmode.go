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
)

// Config is the NAT traversal configuration of one media stream. The zero value means None.
type Config struct {
	// Mode selects the traversal method.
	Mode Mode
	// Server is the STUN or TURN server. Port 0 means 3478 (5349 for TURNTLS).
	Server netip.AddrPort
	// Username and Password are the TURN long-term credentials (RFC 8489 §9.2).
	// The realm and nonce come from the server.
	Username, Password string
	// Timeout bounds address discovery or allocation. Zero means DefaultTimeout.
	Timeout time.Duration
	// Keepalive is the STUN binding refresh interval in STUNBinding mode.
	// Zero means DefaultKeepalive; a negative value turns keep-alives off.
	Keepalive time.Duration
	// ServerName is the name checked in the TURN server's TLS certificate.
	// Empty means the server's IP address.
	ServerName string
	// RootCAs verifies the TURN server's TLS certificate. Nil means the system roots.
	RootCAs *x509.CertPool
	// TLSConfig, when set, is used as is for TURNTLS (ServerName and RootCAs are then ignored).
	TLSConfig *tls.Config
	// Lifetime is the TURN allocation lifetime to request (RFC 8656 §7.2, the
	// LIFETIME attribute). Zero leaves it to the server (usually 10 minutes).
	// The allocation is refreshed at half its granted lifetime.
	Lifetime time.Duration
}

// ServerAddr returns Server with the mode's default port filled in.
func (c Config) ServerAddr() netip.AddrPort {
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
	case !c.Server.Addr().IsValid():
		return fmt.Errorf("%w: mode %s needs a server address", ErrInvalidConfig, c.Mode)
	case c.Mode.IsTURN() && (c.Username == "" || c.Password == ""):
		return fmt.Errorf("%w: mode %s needs a username and password", ErrInvalidConfig, c.Mode)
	}
	return nil
}
