package srtp

import "github.com/pion/transport/v5/replaydetector"

// pion/srtp reports a replay with an unexported error type whose only
// exported trait is its text ("duplicated packet"). Rather than match text,
// the Decrypter gives pion replay detectors (replaydetector.New, exactly what
// psrtp.SRTPReplayProtection installs) wrapped so that a rejection sets a flag
// the Decrypter reads, under its mutex, after a failed decrypt. pion checks
// the replay window before authentication but only commits an index after
// authentication succeeded, so a tampered packet does not burn its index.

// newWatchedDetector returns a replay detector with the given window and
// maximum index that sets *hit whenever it rejects an index.
func newWatchedDetector(window uint, maxIndex uint64, hit *bool) replaydetector.ReplayDetector {
	rd := replaydetector.New(window, maxIndex)
	if ca, ok := rd.(replaydetector.CheckAccepter); ok {
		return &watchedAccepter{watched: watched{rd: rd, hit: hit}, ca: ca}
	}
	return &watched{rd: rd, hit: hit}
}

// watched wraps a ReplayDetector and records rejections.
type watched struct {
	rd  replaydetector.ReplayDetector
	hit *bool
}

// Check implements replaydetector.ReplayDetector.
func (w *watched) Check(seq uint64) (func() bool, bool) {
	accept, ok := w.rd.Check(seq)
	if !ok {
		*w.hit = true
	}
	return accept, ok
}

// watchedAccepter also implements the allocation-free two-phase API that
// pion prefers when a detector offers it.
type watchedAccepter struct {
	watched
	ca replaydetector.CheckAccepter
}

// CheckSeq implements replaydetector.CheckAccepter.
func (w *watchedAccepter) CheckSeq(seq uint64) replaydetector.Token {
	tok := w.ca.CheckSeq(seq)
	if !tok.Passed() {
		*w.hit = true
	}
	return tok
}

// Accept implements replaydetector.CheckAccepter.
func (w *watchedAccepter) Accept(tok replaydetector.Token) bool { return w.ca.Accept(tok) }
