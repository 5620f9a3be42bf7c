// Package webrtcbench races reflow against pion/webrtc/v4 on loopback, like
// for like, in one binary and one run.
//
// Both sides make a call the way a WebRTC application does: an SDP offer and
// answer, full ICE (RFC 8445) with host candidates on 127.0.0.1, checks and
// nomination, then DTLS-SRTP (AEAD_AES_128_GCM) with rtcp-mux, each peer
// with its DTLS certificate made beforehand. reflow: two call.Agent values
// (MediaConfig Security DTLS, ICE, FullICE, RTCPMux), each on its own
// flowmanager, joined by an in-memory Signaling. pion: two PeerConnections
// from webrtc.NewAPI with only a SettingEngine (so the default codecs and
// interceptors an application gets), offer and answer sent once gathering
// completed. Packets are 172-byte RTP (12-byte header, 160 bytes of PCMU).
//
//   - BenchmarkSetup: from making the offer (reflow: Agent.Dial, which also
//     opens the caller's stream; pion: CreateOffer on PeerConnections made
//     beforehand) to the first RTP packet decrypted at the callee, the
//     caller writing one every 250 µs; ns/op and ms/call, and cpu-ms/call,
//     the CPU time of the process per whole call cycle (made, set up, first
//     media, torn down), which the machine's load disturbs less.
//   - BenchmarkRTPRate: packets/s the callee receives through an
//     established call, one goroutine writing as fast as it can with at
//     most 128 packets in flight (pkt/s), and the CPU time of the process
//     per packet (cpu-ns/pkt); raw UDP sockets are the baseline.
//
// This is a module of its own so that the library's go.mod does not depend
// on pion/webrtc. run.sh runs the two benchmarks interleaved, COUNT times.
//
//	go test -run X -bench . -benchtime 20x -count 3
package webrtcbench

import "testing"

// BenchmarkSetup is the time from the offer to the first media at the callee.
func BenchmarkSetup(b *testing.B) {
	b.Run("reflow", benchReflowSetup)
	b.Run("pion", benchPionSetup)
}

// BenchmarkRTPRate is the packet rate through an established call.
func BenchmarkRTPRate(b *testing.B) {
	b.Run("udp", benchUDP)
	b.Run("reflow", benchReflowRate)
	b.Run("pion", benchPionRate)
}
