// Package flow is one media socket (reflow's Flow): a UDP socket, or a TCP/TLS
// connection to a TURN server, carrying one component (RTP or RTCP) of a media
// stream.
//
// A flow gets the address it advertises in one of five ways (natmode): no NAT
// traversal, a STUN Binding discovery (RFC 8489, with RFC retransmissions and
// keep-alive indications), or a TURN allocation (RFC 8656) over UDP, TCP
// or TLS (RFC 8656 §12.5 framing). It implements net.PacketConn: the application
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
// # Batched I/O
//
// On Linux a flow on a *net.UDPConn reads with recvmmsg: each read takes
// every datagram already waiting (up to 16) in one system call, and returns
// at once with a lone one, so batching adds no latency. Each datagram of a
// batch is sorted exactly as if it had been read alone (demultiplexing,
// SRTP authentication and replay checks, latching, in arrival order). The
// batch buffers come from a pool while the socket is readable and go back
// before the reader waits: an idle flow holds no receive buffer. WriteBatch
// sends several packets with sendmmsg, each SRTP-protected as Write would;
// Write itself still sends one packet per call. Elsewhere, and on sockets
// given through FromPacketConn, reads and WriteBatch go one packet at a time.
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
// TURN allocation (Refresh with LIFETIME 0), closes the connection to the
// server and the socket, and waits for the flow's goroutines.
//
// # TURN
//
// The TURN client is the flow's own (RFC 8656, RFC 8489 long-term
// credentials; turn*.go), not pion's: a response changes state only when it
// matches a request in flight by transaction ID and method and, for a signed
// request, carries a MESSAGE-INTEGRITY that verifies with the allocation's
// key (unsigned 400/401/438 only drive re-authentication); everything else
// is dropped and counted. Liveness: the allocation is refreshed every
// natmode.Config.Liveness/2 and a server that gives no signed answer within
// Liveness (default 30 s) is reported as ErrAllocationLost (turn_liveness.go
// says why Refresh). Peers get channels bound in the background; media goes
// as ChannelData (unpadded over UDP; over TCP/TLS padded, or unpadded for a
// server seen not to pad) or as a Send indication until the channel is
// bound; no write waits for a control transaction. Permission failures
// reach OnEvent as ErrPermissionFailed / ErrPermissionDenied naming the peer.
// Servers may be given by host name or RFC 7065 URI (natmode.ParseURI) and
// relays in IPv4, IPv6 or both (natmode.Config.Family). Allocation reports
// the relays, granted lifetime and expiry.
//
// # Defaults
//
// NAT setup is bounded by natmode.DefaultTimeout (10 s), retransmitting over
// UDP until then; STUN keep-alives go every natmode.DefaultKeepalive (15 s);
// TURN allocations are refreshed every natmode.DefaultLiveness/2 (15 s) and
// reported lost after 30 s without a signed answer; channel bindings (and
// with them permissions) are refreshed every 120 s while the peer is in use.
package flow
