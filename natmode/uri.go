package natmode

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ParseURI parses a STUN or TURN server URI of RFC 7064 / RFC 7065, the form
// WebRTC and SIP configurations use, into a Config with Mode and Host set:
//
//	stun:host[:port]                      STUNBinding, port 3478
//	turn:host[:port][?transport=udp|tcp]  TURNUDP (default) or TURNTCP, port 3478
//	turns:host[:port][?transport=tcp]     TURNTLS, port 5349
//
// host is a DNS name, an IPv4 address or a bracketed IPv6 address. An IP
// literal also sets Server, so no resolution is needed. The caller adds the
// credentials. "stuns:" and "turns:...?transport=udp" (DTLS) are not
// supported and give ErrInvalidConfig.
func ParseURI(uri string) (Config, error) {
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return Config{}, fmt.Errorf("%w: %q is not a stun:, turn: or turns: URI", ErrInvalidConfig, uri)
	}
	hostport, query, _ := strings.Cut(rest, "?")
	var c Config
	transport := ""
	if query != "" {
		k, v, ok := strings.Cut(query, "=")
		if !ok || !strings.EqualFold(k, "transport") || strings.Contains(v, "&") {
			return Config{}, fmt.Errorf("%w: %q: only the transport parameter is defined (RFC 7065)", ErrInvalidConfig, uri)
		}
		transport = strings.ToLower(v)
	}
	switch strings.ToLower(scheme) {
	case "stun":
		if transport != "" {
			return Config{}, fmt.Errorf("%w: %q: stun: URIs take no transport", ErrInvalidConfig, uri)
		}
		c.Mode = STUNBinding
	case "turn":
		switch transport {
		case "", "udp":
			c.Mode = TURNUDP
		case "tcp":
			c.Mode = TURNTCP
		default:
			return Config{}, fmt.Errorf("%w: %q: transport %q", ErrInvalidConfig, uri, transport)
		}
	case "turns":
		if transport != "" && transport != "tcp" {
			return Config{}, fmt.Errorf("%w: %q: TURN over DTLS is not supported", ErrInvalidConfig, uri)
		}
		c.Mode = TURNTLS
	default:
		return Config{}, fmt.Errorf("%w: %q: scheme %q (want stun, turn or turns)", ErrInvalidConfig, uri, scheme)
	}
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %q: %v", ErrInvalidConfig, uri, err)
	}
	if port == 0 {
		port = DefaultSTUNPort
		if c.Mode == TURNTLS {
			port = DefaultTURNSPort
		}
	}
	c.Host = net.JoinHostPort(host, strconv.Itoa(int(port)))
	if ip, err := netip.ParseAddr(host); err == nil {
		c.Server = netip.AddrPortFrom(ip.Unmap(), port)
	}
	return c, nil
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port".
func splitHostPort(s string) (string, uint16, error) {
	if s == "" {
		return "", 0, fmt.Errorf("no host")
	}
	host, portStr := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("unclosed [")
		}
		host, portStr = s[1:end], s[end+1:]
		if portStr != "" {
			if portStr[0] != ':' {
				return "", 0, fmt.Errorf("bad host %q", s)
			}
			portStr = portStr[1:]
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return "", 0, fmt.Errorf("bad IPv6 literal %q", host)
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, portStr = s[:i], s[i+1:]
		if strings.Contains(host, ":") {
			return "", 0, fmt.Errorf("IPv6 address %q must be in brackets", s)
		}
	}
	if host == "" || strings.ContainsAny(host, "/@ ") {
		return "", 0, fmt.Errorf("bad host %q", host)
	}
	if portStr == "" {
		return host, 0, nil
	}
	p, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("bad port %q", portStr)
	}
	return host, uint16(p), nil
}

// HostPort returns the server's host name (or IP literal) and port: from
// Host when it is set, else from Server. The port defaults as in ServerAddr.
func (c Config) HostPort() (host string, port uint16, err error) {
	if c.Host == "" {
		ap := c.ServerAddr()
		if !ap.Addr().IsValid() {
			return "", 0, fmt.Errorf("%w: no server", ErrInvalidConfig)
		}
		return ap.Addr().String(), ap.Port(), nil
	}
	host, port, err = splitHostPort(c.Host)
	if err != nil {
		return "", 0, fmt.Errorf("%w: Host %q: %v", ErrInvalidConfig, c.Host, err)
	}
	if port == 0 {
		port = DefaultSTUNPort
		if c.Mode == TURNTLS {
			port = DefaultTURNSPort
		}
	}
	return host, port, nil
}
