// Package webrtcbench compares reflow with pion/webrtc on loopback, in one
// binary and one run: (1) the time from nothing to the first RTP packet
// received over DTLS-SRTP between two peers, (2) the RTP packet rate one peer
// sustains to the other, with raw UDP as the baseline.
//
// This module pins pion/webrtc/v3 v3.3.6: the reflow library and pion/webrtc/v4
// cannot be linked into one binary with the modules the Go proxy here serves
// (reflow needs pion/srtp/v3 v3.1.0 on transport/v5; webrtc/v4 v4.2.20, the
// newest v4 that builds here, needs srtp/v3 on transport/v4, and srtp/v3 is a
// single module). The v4 subdirectory is a separate module that runs the same
// pion and UDP benchmarks against webrtc/v4 v4.2.20; run.sh runs both.
//
//	go test -run X -bench . -benchtime 20x -count 3
package webrtcbench

import "testing"

func BenchmarkSetup(b *testing.B) {
	b.Run("reflow-dtls", func(b *testing.B) { benchReflowSetup(b, false) })
	b.Run("reflow-dtls-rtcp", func(b *testing.B) { benchReflowSetup(b, true) })
	b.Run("pion-webrtc-v3", benchPionSetup)
}

func BenchmarkRTPRate(b *testing.B) {
	b.Run("udp", benchUDP)
	b.Run("reflow-clear", func(b *testing.B) { benchReflowRate(b, false) })
	b.Run("reflow-dtls", func(b *testing.B) { benchReflowRate(b, true) })
	b.Run("pion-webrtc-v3", benchPionRate)
}
