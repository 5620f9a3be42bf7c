// Package call is the call layer on top of the flow manager: calls with one
// media stream each, set up and changed by SDP offer/answer (RFC 3264), and
// bound to a signalling protocol through one seam, the Signaling interface.
//
// # The core
//
// An Agent makes calls. Each call owns one media stream from the
// flowmanager.Manager (NAT mode, SRTP mode and codecs from its MediaConfig).
// Nothing is offered or answered before the stream is ready (except by a
// call that trickles its candidates, see ICE below), so c= and m= carry the
// stream's RTP session tuple (local, STUN reflexive or TURN relay address)
// and a=rtcp its RTCP tuple (RFC 3605), or a=rtcp-mux when RTCP shares the
// RTP flow (RFC 5761). Offers list the configured codecs (PCMU,
// PCMA and telephone-event by default) and either nothing (RTP/AVP), a=crypto
// lines (SDES, RFC 4568) or a=fingerprint with a=setup:actpass (DTLS-SRTP,
// RFC 5763). Answers keep the offer's payload types, mirror the direction,
// pick one offered crypto suite with a fresh key of ours, and answer actpass
// with active.
//
// An incoming offer decides the call's media shape: UDP/TLS/RTP/SAVP(F)
// with a=fingerprint gives DTLS-SRTP, a=ice-ufrag gives ICE, a=rtcp-mux (or
// BUNDLE) gives rtcp-mux, whatever the MediaConfig's offer settings; the
// application restricts what it accepts with MediaConfig.Accept,
// SecurityRequired and NoICE. The call's stream is made for the negotiated
// protection, so a DTLS or SDES call never sends or delivers clear media.
//
// Applying the peer's description puts things in force in a secure order:
// ICE credentials, then the SDES keys or the pinned fingerprint, then the
// flows' active destinations, then DTLS in the negotiated role. A DTLS client
// sends its first flight only once it knows where the peer listens: with ICE
// once the peer's nomination selected a pair on every flow (the peer checks
// only after it has our description), without ICE once every flow has a
// destination (from the SDP, or latched). A trickle offer without candidates
// (c=0.0.0.0, port 9, a=setup:actpass) is thus answered with a=setup:active
// and the handshake starts at the nomination.
//
// BUNDLE (RFC 9143): the other audio m= lines of the offer's BUNDLE group
// are accepted on the call's transport (same port, candidates and keys;
// MediaState.Bundled lists them with their SSRCs, for demultiplexing by SSRC
// and payload type), the answer carries a=group:BUNDLE with the accepted
// mids, and every rejected line keeps its a=mid with port 0.
//
// A failure of the stream in force ends the call with OnState Terminated
// and a Reason whose Err is the stream's error: MediaLost when the peer's
// media went away (its DTLS close_notify with no hangup within
// PeerCloseGrace, ICE consent lost, ICE failed), SecurityFailed for DTLS
// failures (fingerprint mismatch, handshake timeout, fatal alert), else
// MediaFailed. The core sends the hangup.
//
// Re-offers (Call.Renegotiate, Call.RemoteOffer) change the direction (hold,
// resume), move the call to a new stream (new ports) and are rolled back when
// the peer refuses them. A DTLS association is replaced only when the peer's
// fingerprint changes or its a=tls-id does (RFC 8842; our descriptions carry
// one per stream), never for a new address or ICE ufrag (an ICE restart keeps
// the keys); a re-offer may not change the protection of a secured stream.
// A refusal for glare is retried after the RFC 3261 §14.1 timer.
// Unacceptable offers are refused with a Reason (no common codec, secure media
// required but not offered: NotAcceptable/488; unparsable SDP: Malformed/400).
//
// # The seam for signalling bindings
//
// A binding (call/sipp2p for SIP; the gRPC terminal binding) implements
// Signaling, one value per call, and drives the core with:
//
//   - Agent.Dial(ctx, sig, params): a new outgoing call; the core opens the
//     stream, waits until it is ready and calls sig.SendOffer.
//   - Agent.Incoming(ctx, sig, params, offer): a new incoming call; a refused
//     offer comes back as a Reason for the binding to send.
//   - Call.RemoteRinging, Call.RemoteAnswer, Call.RemoteReject: what the peer
//     said about our (re-)offer.
//   - Call.RemoteOffer(ctx, offer) -> answer: a re-offer from the peer; a
//     crossing offer gives a Glare Reason (491).
//   - Call.RemoteHangup(reason): the peer ended the call or the signalling was lost.
//   - Call.RemoteCandidate, Call.RemoteEndOfCandidates: ICE candidates the
//     peer trickled (full ICE).
//
// Delayed offer (RFC 3261 §13.3.1, RFC 3264 §5) runs the initial exchange
// the other way round. An incoming call made with a nil offer is accepted
// with our offer (made as Dial makes it: DTLS actpass and fingerprint, SDES
// keys, ICE credentials and candidates), sent with SendAnswer; the peer's
// answer comes with Call.RemoteAnswer. Params.DelayedOffer dials without
// an offer (SendOffer gets nil); the peer's offer, in its answer, goes to
// Call.RemoteOffer, which returns our answer and makes the call Active, or
// ends the call when the offer is missing or unacceptable.
//
// A binding that can carry candidates both ways also implements
// CandidateSender, through which a call with MediaConfig.Trickle sends its
// own.
//
// A binding whose protocol has no "request pending" status can refuse a
// crossing offer the same way (RemoteOffer returns the Glare Reason; report
// the peer's refusal of ours with RemoteReject and a Glare Reason, and
// Renegotiate retries).
//
// # ICE-lite
//
// With MediaConfig.ICE (off by default, as SIP peers expect; the webterminal
// binding turns it on) our offers, and always our answers to offers that
// carry ICE (unless NoICE), make the call a lite ICE agent (RFC 8445 §2.5):
// they say a=ice-lite and carry
// a=ice-ufrag/a=ice-pwd (fresh per call, new on an ICE restart by the peer)
// and a=candidate lines (RFC 8839) for each flow's host, server-reflexive
// and relayed address (component 1 RTP, 2 RTCP, priorities per RFC 8445
// §5.1.2.1), with the session tuple as the default destination in c=/m=.
// The stream's flows answer the peer's connectivity checks (any peer ufrag
// while our offer awaits its answer, the peer's after) and the address it
// nominates with USE-CANDIDATE becomes where media goes; the default
// destination of the peer's SDP is used until then, and c=0.0.0.0 then
// means "no default candidate", not hold. A peer description with
// a=ice-ufrag but no usable a=ice-pwd is refused as Malformed (400). The
// lite core sends no checks of its own, so two lite agents simply use each
// other's default destinations (RFC 8445 §6.1.1).
//
// With MediaConfig.FullICE the call runs the flow's full ICE agent instead
// (no a=ice-lite): it checks the peer's candidates (those of its SDP, and
// peer-reflexive ones learnt from its checks, so trickle offers without
// candidates work), is the controlling agent on the calls it places, and
// keeps consent freshness (RFC 7675) on the selected pair, so a peer that
// vanishes without a word ends the call with MediaLost within
// flow.ConsentTimeout. Candidates the peer trickles after its description
// (RFC 8838) are given to the call with Call.RemoteCandidate and
// Call.RemoteEndOfCandidates (kept until the agent starts). Ours are all in
// our description, followed by a=end-of-candidates, unless the call
// trickles them too: with MediaConfig.Trickle and a Signaling that
// implements CandidateSender, the initial offer, and the answer to an offer
// that says a=ice-options:trickle, are sent at once, before the stream's
// NAT setup (STUN binding, TURN allocation) is done, with
// a=ice-options:trickle and the host candidates (c=/m= the first of them,
// or 0.0.0.0 port 9 without one, RFC 8840); the server-reflexive and
// relayed candidates go through CandidateSender.SendCandidate once the
// setup is done, then SendEndOfCandidates. A call in TURN mode thus no
// longer waits for its allocation before its description leaves.
//
// The core calls sig.SendRinging, SendAnswer (initial answer), SendReject
// (refusing an unanswered incoming call) and SendHangup (CANCEL or BYE) on the
// application's behalf. Sub-packages: call/sdpx holds the typed SDP helpers;
// Media adapts one flowmanager stream and can be used on its own.
//
// # The application
//
// It sees calls through a Handler (OnIncoming, OnState with a Reason,
// OnMedia after every completed exchange) and acts with Call.Ring, Accept,
// Reject, Hangup and Renegotiate. Call.Stream gives the media stream for
// RTP/RTCP I/O.
//
//	agent, _ := call.New(call.Config{Manager: m, Media: call.MediaConfig{
//		LocalAddr: netip.MustParseAddr("192.0.2.10"), Security: sdpx.DTLS}, Handler: h})
//	defer agent.Close()
//
// # Concurrency and lifecycle
//
// Agents and calls are safe for concurrent use. Handler calls are made one
// at a time, in order, on a goroutine of the agent (internal/notify), never
// with a lock held; posting them never blocks, so a slow or blocked handler
// delays later handler calls but never media or signalling. Signaling
// methods are never called with a lock held.
//
// Agent.Close hangs up every call and returns once each has ended and its
// media stream is closed. It is idempotent and safe from any goroutine, a
// Handler included, and never waits for a running handler call, so it cannot
// deadlock on its own handler. The handler calls queued before Close returns
// (the Terminated state of every call it ended among them) are still made;
// Agent.Done is closed once the last has returned. Call.Hangup returns once
// the call's media is closed; Call.Done tells the same.
package call
