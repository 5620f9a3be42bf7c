// Package natmode names the NAT traversal modes of a flow and carries the server
// and credentials they use: no traversal, STUN binding discovery (RFC 8489), or a
// TURN allocation (RFC 8656) over UDP, TCP (RFC 6062 framing) or TLS.
//
//	cfg := natmode.Config{
//		Mode:     natmode.TURNUDP,
//		Server:   netip.MustParseAddrPort("192.0.2.1:3478"),
//		Username: "alice", Password: "secret",
//	}
//	if err := cfg.Validate(); err != nil { ... }
//
// The package has no state; its values are safe to share between goroutines.
package natmode
