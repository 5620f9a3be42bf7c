// Package flow is one media socket (reflow's Flow): a UDP socket, or a TCP/TLS
// connection to a TURN server, carrying one component (RTP or RTCP) of a media
// stream.
//
// A flow gets the address it advertises in one of five ways (natmode): no NAT
// traversal, a STUN Binding discovery (RFC 8489, with RFC retransmissions and
// keep-alive indications), or a TURN allocation (RFC 8656) over UDP, TCP
// (RFC 6062 framing) or TLS. It implements net.PacketConn: the application
// writes and reads plain RTP and RTCP; the flow handles STUN, TURN and, once
// keys exist, SRTP and DTLS inside.
//
//	f := stream.RTP()                        // a *flow.Flow from a mediastream
//	f.SetActiveDestination(peer)             // from the peer's SDP
//	f.Write(rtpPacket)                       // to the active destination
//	n, from, err := f.ReadFromAddrPort(buf)  // next media packet
//
// # Receive path
//
// One reader goroutine owns the socket and sorts every datagram by its first
// byte (RFC 7983): STUN/TURN from the NAT server to the flow's STUN/TURN client
// (validated first: pion/stun/v2 panics on some malformed messages), relayed
// media unwrapped from ChannelData or Data indications, DTLS to the flow's
// DTLS association, RTP/RTCP to a bounded queue read by ReadFrom. Media from
// any address other than the active destination is dropped and counted
// (DropSource), unless Config.Latch adopts the first sender (comedia). Every
// dropped datagram is counted by reason in Stats.
//
// # ICE
//
// StartICE runs a full ICE agent (RFC 8445) for the flow's component on the
// flow's own socket: host, server-reflexive and relayed candidates, paced
// checks, role conflicts, regular nomination, trickle (RFC 8838), restart and
// consent freshness (RFC 7675: ErrConsentLost after 30 s without an answer,
// and sending stops). ICEConfig.Lite (or SetICECredentials) makes it an
// ICE-lite agent that only answers checks. The socket reader validates checks
// (FINGERPRINT, USERNAME, MESSAGE-INTEGRITY) before anything else and answers
// them on the path they came in on; it never runs or waits for a TURN
// transaction. See ice.go.
//
// # Concurrency
//
// All methods are safe for concurrent use. Close is idempotent, releases a
// TURN allocation (Refresh with LIFETIME 0), closes relay, client and socket in
// that order and waits for the flow's goroutines.
//
// # Defaults
//
// NAT setup is bounded by natmode.DefaultTimeout (10 s); STUN keep-alives go
// every natmode.DefaultKeepalive (15 s); TURN allocations are refreshed at half
// their lifetime, the active destination's permission every 120 s; an
// allocation not refreshed within its lifetime is reported as ErrAllocationLost.
package flow
