// Package sipp2p binds the call core (package call) to SIP: a peer-to-peer
// endpoint in the shape of UCMA's SipPeerToPeerEndpoint, built on
// github.com/emiago/sipgo's transport and transaction layers with its own
// dialog layer. There is no registrar: the endpoint listens where told and
// sends requests straight to the target URI's host, or to an outbound proxy
// when one is configured.
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
// Over UDP requests always leave from a socket of the endpoint (the
// listener, or one it makes), so that the peer's requests come back to it.
// TLSConfig.NeedMutualTLS makes TLS listeners require a client certificate.
// Failures to reach a peer are a *TLSError (Reason: LocalCertificateNotFound,
// UntrustedRemoteCertificate, CertificateExpired, NameMismatch,
// RemoteRejectedCertificate) or a *ConnectionError (refused, unreachable,
// broken, or ErrTimeout when the peer never answered); error texts name the
// root cause on one line. With TLS 1.3 a server refuses a client certificate
// only after the client finished its handshake; one short probe connection
// (at most a second) reads the refusal alert, so the failure surfaces in
// about a second rather than after Timer B (32 s).
//
// # Dialogs (RFC 3261 §12-§15)
//
// A dialog is identified by the Call-ID, our tag and the peer's tag: an
// in-dialog request (re-INVITE, ACK, BYE) that does not match all three is
// answered 481 (an ACK is dropped), so knowing a Call-ID is not enough to
// move or end a call. Requests with a CSeq lower than the last one are
// refused 500 (a re-INVITE with Retry-After, §14.2, as is a re-INVITE while
// the previous one is being answered). The route set is taken from
// Record-Route and followed (loose routing); the remote target is the peer's
// Contact and is replaced by the Contact of a re-INVITE and of a 2xx to ours;
// a 2xx without Contact keeps the Request-URI.
//
// Our 2xx to an INVITE or re-INVITE is retransmitted from Config.T1
// doubling to Config.T2 until its ACK arrives (§13.3.1.4); without an ACK
// after 64*T1 the call ends (a call.Reason with Code 408) and a BYE is sent.
// A 2xx to our INVITE or re-INVITE that arrives again is acknowledged again
// with the same ACK (§13.2.2.4). Accept waits for the ACK as long as its
// context allows; when the context ends first, Accept returns and the
// dialog is ended with a BYE once the ACK came or 64*T1 passed.
//
// # Calls, admission and what is refused
//
// Call sends an INVITE with the core's offer and returns at the first
// response; 180/183 make the call Ringing, a 2xx is acknowledged and its
// answer applied, 4xx/5xx/6xx end the call with a call.Reason (486 Busy, 603
// Declined, 488 NotAcceptable, ...). Hanging up sends CANCEL after a
// provisional response (before one, the attempt is abandoned), BYE after
// the answer. Incoming INVITEs are answered 100 Trying and handed to the
// agent; its application rings (180), accepts (200 with the answer) or
// rejects them. Info returns an incoming call's Request-URI, From, To and
// headers.
//
// At most Config.MaxCalls calls exist at once, and at most
// Config.MaxUnanswered of them are incoming calls whose INVITE has no final
// response yet (each call holds a media stream from its INVITE on, and with
// TURN an allocation: remote requests nobody accepted hold at most that
// many); an INVITE beyond either bound is refused 503 with Retry-After. An INVITE with Expires is ended with 487 when the
// application has not answered in time, one without after
// Config.AnswerTimeout with 480. Before a request is processed the endpoint
// answers 400 for a missing Call-ID, From, To or Contact or a CSeq method
// that is not the request's, 420 with Unsupported for any Require option
// (it implements none), 415 with Accept for an INVITE body that is not
// application/sdp, 482 for a merged request, 405 for methods it does not
// implement. Every status carries its RFC 3261 reason phrase; requests
// carry User-Agent (Config.UserAgent), responses Server, and INVITEs, their
// 2xx and OPTIONS answers Allow and Supported.
//
// # Offer/answer (RFC 3264)
//
// An offered m= line whose media type or transport the SDP parser does not
// know (m=image ... udptl t38, an unknown profile) is taken out before the
// core sees the offer and put back into the answer at its place with port 0,
// so the rest of the offer is answered. An INVITE without SDP (delayed
// offer) makes an incoming call without an offer: Accept puts the core's
// offer (as for an outgoing call: plain RTP, SDES, or DTLS-SRTP with
// a=setup:actpass, and ICE when configured) in the 200, and the ACK's
// answer completes it; an ACK without a usable answer ends the call with a
// BYE. CallWith with CallOptions.DelayedOffer sends an INVITE without SDP:
// the offer in the 2xx is answered in the ACK; a 2xx without an offer or
// with an unacceptable one is acknowledged with every line rejected (port
// 0) and followed by a BYE (RFC 3261 §13.2.2.4). A re-INVITE without SDP
// gets a re-offer the core makes (Call.Renegotiate keeping our direction)
// in the 200, and the ACK's answer completes it. Re-INVITEs work both ways:
// one crossing our own pending re-INVITE is answered 491, and the core
// retries ours after the RFC 3261 §14.1 timer. SIP MESSAGE requests are
// answered 200 and reported to Handler.OnMessage.
//
// # Concurrency and lifecycle
//
// An Endpoint is safe for concurrent use. Handler calls are posted to the
// module's notifier (internal/notify): one at a time, in order, on a
// goroutine of the endpoint, never with a lock held; a slow handler never
// stalls SIP processing (the queue is bounded, beyond it events are
// dropped). Close hangs up the calls, stops the listeners and sipgo, and
// waits for every goroutine the endpoint or sipgo on its behalf started
// (request handlers, retransmissions, socket readers, including sipgo's
// reader of every accepted connection); it is idempotent, safe from any
// goroutine and from inside a Handler, and never waits for a running
// Handler call: Done is closed once the last Handler call has returned
// (the last event is the change to Terminated). sipgo dials the outgoing
// TCP/TLS connections and starts their readers without a way to join them:
// Close closes the connections to every destination (by address) the
// endpoint sent to and returns once each reader has taken its connection
// out of sipgo's pool, its last step (bounded by 2 s). Sends of the
// endpoint's own (a BYE, a CANCEL) stop waiting for their responses once
// Close stops reading them.
//
// sipgo logs through Config.Logger (warnings and errors only; nil
// discards). sipgo's package-wide logger, which this package sets at init,
// hands its lines to the loggers of the live endpoints.
package sipp2p
