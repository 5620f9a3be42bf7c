// Package webrtcbench (module .../bench/webrtc/v4) runs the pion/webrtc/v4 half of the side-by-side in
// ../ (see its package doc): the same harness (common_test.go is a copy of
// ../common_test.go) and the same raw UDP baseline, against webrtc/v4 v4.2.20,
// the newest v4 the Go proxy here serves in buildable form (v4.2.21 to v4.2.26
// need pion/transport/v5 v5.1.1+, which the proxy refuses with 403). This is
// a module of its own because reflow (srtp/v3 v3.1.0 on transport/v5) and
// webrtc/v4 v4.2.20 (srtp/v3 on transport/v4) cannot share one binary.
//
//	go test -run X -bench . -benchtime 20x -count 3
package webrtcbench

import "testing"

func BenchmarkSetup(b *testing.B) {
	b.Run("pion-webrtc-v4", benchPionSetup)
}

func BenchmarkRTPRate(b *testing.B) {
	b.Run("udp", benchUDP)
	b.Run("pion-webrtc-v4", benchPionRate)
}
