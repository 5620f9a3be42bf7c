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
//	t, err := webterminal.Dial(ctx, webterminal.Config{
//		Target: "core.example:443", MSISDN: "46700000001", Mode: webterminal.MultiPipe,
//		TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, // mutual TLS
//		Media: webterminal.CoreMedia(agent),                      // the call core
//		Handler: h,
//	})
//	c, err := t.Call(ctx, "46700000002")
//	<-c.Established()
//
// The SDP of each call is made and applied by a Media; CoreMedia runs it on
// the call core (package call: real media streams, plain/SDES/DTLS-SRTP,
// NAT modes), so a webterminal call and a SIP call share one implementation.
// With CoreMedia a call has one owner, the terminal's Handler (the agent
// does not announce it with OnIncoming), and one account of what happened:
// the callee's Ringing, a Bye from the other side (a remote hangup), a
// rejection or a lost stream are recorded by the core call as such, and
// when the core ends the call itself (its media failed or went away:
// call.MediaLost, call.SecurityFailed) the terminal call ends with ErrMedia
// wrapping the core's call.Reason and Bye is sent.
// Its calls run with ICE-lite on (call.MediaConfig.ICE): the terminal is the
// WebRTC side, so its SDP says a=ice-lite and carries a=ice-ufrag/a=ice-pwd
// and our candidates, and its media streams answer the core's connectivity
// checks and follow its nomination (WebRTC cores send no media before).
//
// # Rules
//
//   - MultiPipe: a message whose call_id is not a UUID is rejected
//     (ErrInvalidCallID, Handler.OnProtocolError / CoreConfig.OnError); the
//     stream goes on.
//   - Pipe: a second call while one exists is refused locally (ErrBusy); an
//     Offer while a call exists is a renegotiation of it.
//   - Messages for unknown calls are ignored.
//   - A lost stream ends its calls (ErrStreamLost); the terminal re-registers
//     with exponential backoff (Config.ReconnectMin/Max).
//   - The terminal names its msisdn in the stream metadata (MetadataMSISDN);
//     the Core may instead identify it by its client certificate.
//   - An InCall for a call of ours (MultiPipe), or after our ToPhone, ends that
//     call with ErrTransferred; InCall/Idle carry the msisdn they are about.
//
// # Concurrency and lifecycle
//
// Terminals, calls and the core are safe for concurrent use. Each stream has
// one writer goroutine; Handler calls are made one at a time, in order, on a
// goroutine of the terminal (internal/notify), never with a lock held, and
// posting them never blocks the stream reader. The media work of a call
// (applying answers and re-offers) runs in order on a queue of its own.
//
// Terminal.Close is idempotent and safe from any goroutine, a Handler
// included: it sends Bye for the calls in progress, ends the registration
// stream, closes the connection and returns once the terminal's goroutines
// have ended, without waiting for a running Handler call, so it cannot
// deadlock on its own handler. The Handler calls queued before Close returns
// (the calls' endings among them) are still made; Terminal.Done is closed
// once the last has returned.
//
// SDP follows RFC 3264 (offer/answer) and RFC 8839 (ICE: a=ice-lite,
// credentials, a=candidate); ICE-lite RFC 8445; DTLS-SRTP RFC 5763, SDES
// RFC 4568 (all through the call core).
package webterminal
