// Package webterminal is the gRPC "WebRTC terminal" binding of the call layer:
// a Terminal (the API's client) and a small Core (its server), speaking the
// WebTerminal service of proto/webterminal/v1 (generated code in
// webterminalpb; regenerate with `go generate ./call/webterminal/...`).
//
// A terminal registers by opening one bidirectional stream: Pipe (one call at
// a time, call_id ignored) or MultiPipe (many calls, call_id a UUID on every
// message). Over it, it places calls (Offer -> Answer or Bye), receives them
// (Offer -> Ringing -> Answer or Bye), sees InCall/Idle for its msisdn, takes
// over an observed call (Offer with the InCall's call_id), moves a call to the
// phone (Action{ToPhone}) and answers re-offers at any time.
//
// # One state machine: the call core
//
// The terminal is a call.Signaling implementation: every call it carries is a
// call.Call of the call.Agent given in Config.Agent, the same core the SIP
// binding uses (real media streams, plain/SDES/DTLS-SRTP, NAT modes), with its
// states (call.Offering, Ringing, Incoming, Alerting, Active, Terminated) and
// its call.Reason. The application sees the calls through the agent's
// call.Handler, and acts on them with the call.Call methods:
//
//	agent, _ := call.New(call.Config{Manager: m, Handler: h, Media: call.MediaConfig{
//		LocalAddr: addr, Security: sdpx.DTLS}})
//	t, err := webterminal.Dial(ctx, webterminal.Config{
//		Target: "core.example:443", MSISDN: "46700000001", Mode: webterminal.MultiPipe,
//		TLS:   &tls.Config{Certificates: []tls.Certificate{cert}}, // mutual TLS
//		Agent: agent,
//	})
//	c, err := t.Call(ctx, "46700000002") // a *call.Call; h.OnState reports Ringing, Active, Terminated
//
// The core sends through the binding: its offers become Offer{sdp, msisdn},
// Call.Ring a Ringing, Call.Accept an Answer, Call.Reject and Call.Hangup a
// Bye (the API carries no reason), and so does the core when it ends a call
// itself (its media failed or went away: call.MediaLost, call.SecurityFailed).
// What arrives is fed into the core call as what it is: an Offer for a new
// call makes an incoming call that the agent announces once
// (Handler.OnIncoming: the call has one owner), an Offer on an active call is
// a re-offer (answered with Answer; one the core cannot accept ends the call
// with Bye), Ringing and Answer are the callee's, and a Bye from the other
// side is recorded as remote: call.Declined wrapping ErrRejected before our
// offer was answered, call.Canceled wrapping ErrRemoteHangup for an incoming
// call not answered yet, else call.RemoteHangup wrapping ErrRemoteHangup.
// Call.Renegotiate sends an Offer on the call (the other side's crossing
// Offer wins: the terminal is the polite peer, and Renegotiate retries).
// TerminalOf, Peer and CallID tell a terminal call's terminal, other party
// (Remote().URI is "tel:" and the msisdn) and call_id.
//
// The terminal's own Handler reports only what the core has no notion of:
// registration (OnRegistered, OnUnregistered), InCall/Idle (OnStatus),
// rejected messages (OnProtocolError) and every message (OnMessage).
//
// The calls run with ICE-lite on (call.MediaConfig.ICE) and rtcp-mux, unless
// Config.Media says otherwise: the terminal is the WebRTC side, so its SDP
// says a=ice-lite and carries a=ice-ufrag/a=ice-pwd and our candidates, and
// its media streams answer the core's connectivity checks and follow its
// nomination (WebRTC cores send no media before).
//
// # Rules
//
//   - MultiPipe: a message whose call_id is not a UUID is rejected
//     (ErrInvalidCallID, Handler.OnProtocolError / CoreConfig.OnError); the
//     stream goes on.
//   - Pipe: a second call while one exists is refused locally (ErrBusy); an
//     Offer while a call exists is a renegotiation of it.
//   - Messages for unknown calls are ignored.
//   - A lost stream ends its calls (call.SignalingFailed wrapping
//     ErrStreamLost); the terminal re-registers with exponential backoff
//     (Config.ReconnectMin/Max).
//   - The terminal names its msisdn in the stream metadata (MetadataMSISDN);
//     the Core may instead identify it by its client certificate.
//   - An InCall for a call of ours (MultiPipe), or after our
//     Terminal.TransferToPhone, ends that call (call.RemoteHangup wrapping
//     ErrTransferred); InCall/Idle carry the msisdn they are about.
//
// # The Core
//
// The Core routes calls between registered terminals by msisdn and passes
// their SDP through; it does not terminate media, except where it is told to:
// Core.AttachMedia makes a call on a call.Agent of the core's own (a media
// server) that renegotiates one party's leg towards it.
//
// # Concurrency and lifecycle
//
// Terminals and the core are safe for concurrent use. Each stream has one
// writer goroutine and one reader, which feeds the core calls in the order
// the messages came. Terminal Handler calls are made one at a time, in order,
// on a goroutine of the terminal (internal/notify), never with a lock held,
// and posting them never blocks the stream reader; the agent's Handler calls
// follow the agent's rules (package call).
//
// Terminal.Close is idempotent and safe from any goroutine, a Handler (the
// terminal's or the agent's) included: it hangs up the calls in progress
// (call.LocalHangup, Bye sent), ends the registration stream, closes the
// connection and returns once the terminal's goroutines have ended, without
// waiting for a running Handler call, so it cannot deadlock on a handler.
// The terminal Handler calls queued before Close returns are still made;
// Terminal.Done is closed once the last has returned. The agent is the
// application's: close it after the terminal.
//
// SDP follows RFC 3264 (offer/answer) and RFC 8839 (ICE: a=ice-lite,
// credentials, a=candidate); ICE-lite RFC 8445; DTLS-SRTP RFC 5763, SDES
// RFC 4568 (all through the call core).
package webterminal
