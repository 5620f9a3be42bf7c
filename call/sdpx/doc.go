// Package sdpx reads and writes the SDP a call needs, on top of
// github.com/pion/sdp/v3, with typed helpers for what pion keeps as strings.
//
// Parse analyses a session description into one Media per m= line: the RTP
// and RTCP destinations (c=, m=, a=rtcp of RFC 3605, a=rtcp-mux of
// RFC 5761), the codecs (a=rtpmap, a=fmtp and the RFC 3551 static payload
// types), the direction (RFC 3264 §5.1), SDES a=crypto lines (RFC 4568),
// DTLS-SRTP a=fingerprint (RFC 8122) and a=setup (RFC 4145, RFC 5763), and
// ICE (RFC 8839: a=ice-ufrag, a=ice-pwd, session-level a=ice-lite,
// a=candidate, and a=end-of-candidates of RFC 8840), with media-level
// attributes winning over session-level ones. Session writes one.
// Candidate parses and formats a=candidate lines; LocalCandidates makes ours
// (host, srflx, relay) with RFC 8445 §5.1.2.1 priorities.
//
//	d, err := sdpx.Parse(body)
//	if errors.Is(err, sdpx.ErrMalformed) { /* reject: 400 / 488 */ }
//	m := d.Media[0]
//	stream.RTP().SetActiveDestination(m.RTP)
//
// Parse never panics, whatever the input (it is fuzzed), and bounds the size
// it accepts. Everything here is a pure function or a value type, safe for
// concurrent use.
package sdpx
