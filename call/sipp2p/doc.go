// Package sipp2p binds the call core (package call) to SIP: a peer-to-peer
// endpoint in the shape of UCMA's SipPeerToPeerEndpoint, built on
// github.com/emiago/sipgo. There is no registrar: the endpoint listens
// where told and sends requests straight to the target URI's host, or to an
// outbound proxy when one is configured.
//
//	ep, _ := sipp2p.New(sipp2p.Config{URI: "sip:alice@example.com", Agent: agent})
//	defer ep.Close()
//	ep.StartListening(ctx, sipp2p.UDP, netip.MustParseAddrPort("0.0.0.0:5060")) // with Config.Advertise
//	c, err := ep.Call(ctx, "sip:bob@192.0.2.7:5060", nil)
//
// # Transports and TLS
//
// StartListening binds UDP, TCP or TLS at an address; port 0 picks one, and
// the unspecified address listens on all (Contact and Via then carry
// Config.Advertise). Outgoing requests use the target's transport parameter,
// else Config.Transport (TLS when a certificate is configured, else UDP);
// through an outbound proxy only an explicit TLS overrides the default.
// TLSConfig.NeedMutualTLS makes TLS listeners require a client certificate.
// TLS failures of outgoing requests come back as a *TLSError whose Reason is
// LocalCertificateNotFound, UntrustedRemoteCertificate, CertificateExpired,
// NameMismatch or RemoteRejectedCertificate. With TLS 1.3 a server refuses
// a client certificate only after the client finished its handshake; the
// transaction layer ends requests as soon as the connection closes, and one
// short probe connection (at most a second) reads the refusal alert, so the
// failure surfaces in about a second rather than after Timer B (32 s).
//
// # Calls
//
// Call sends an INVITE with the core's offer and returns at the first
// response; 180/183 make the call Ringing, a 2xx is acknowledged and its
// answer applied, 4xx/5xx/6xx end the call with a call.Reason (486 Busy, 603
// Declined, 488 NotAcceptable, ...). Hanging up sends CANCEL before the
// answer and BYE after it. Incoming INVITEs are answered 100 Trying and
// handed to the agent; its application rings (180), accepts (200 with the
// answer, waiting for the ACK) or rejects them. Re-INVITEs work both ways
// (sipgo has no API for them; this package builds them in the dialog): an
// INVITE crossing our own pending re-INVITE is answered 491, and the core
// retries ours after the RFC 3261 §14.1 timer. SIP MESSAGE requests are
// answered 200 and reported to Handler.OnMessage.
//
// # Concurrency
//
// An Endpoint is safe for concurrent use; Handler calls are made one at a
// time, in order, on a goroutine of the endpoint. Close hangs up the calls,
// stops the listeners and sipgo, and waits for the endpoint's goroutines.
package sipp2p
