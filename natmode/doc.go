// Package natmode names the NAT traversal modes of a flow and carries the server
// and credentials they use: no traversal, STUN binding discovery (RFC 8489), or a
// TURN allocation (RFC 8656) over UDP, TCP or TLS.
//
//	cfg := natmode.Config{
//		Mode:     natmode.TURNUDP,
//		Server:   netip.MustParseAddrPort("192.0.2.1:3478"),
//		Username: "alice", Password: "secret",
//	}
//	if err := cfg.Validate(); err != nil { ... }
//
// A server may also be named by host name (Config.Host, resolved by the flow
// under its setup context; for TLS also the default certificate name) or by
// an RFC 7064/7065 URI, the form WebRTC and SIP configurations use:
//
//	cfg, err := natmode.ParseURI("turns:turn.example.com:443?transport=tcp")
//	cfg.Username, cfg.Password = "alice", "secret"
//
// Config.Family asks for an IPv4 (default), IPv6 or dual relay (RFC 8656
// REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY); Config.Liveness
// bounds how long a dead or restarted TURN server goes unnoticed (default
// 30 s, at least 5 s).
//
// The package has no state; its values are safe to share between goroutines.
package natmode
