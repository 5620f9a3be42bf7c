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
//   - BenchmarkInterleaved: both of the above with reflow and pion taking
//     turns within one benchmark, for a ratio measured under the same load.
//
// This is a module of its own so that the library's go.mod does not depend
// on pion/webrtc (reflow and webrtc/v4 v4.2.26 share one binary: reflow's
// srtp/v3 is raised to v3.1.3 on transport/v5 v5.1.4 here). run.sh runs the
// benchmarks interleaved, COUNT times. TestReflowCall and TestPionCall check
// that each side sets up what the race claims.
//
//	go test -run X -bench . -benchtime 20x
package webrtcbench

import (
	"testing"
	"time"
)

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

// chunk is how many packets each path sends in its turn in
// BenchmarkInterleaved/rtprate.
const chunk = 5000

// BenchmarkInterleaved runs reflow and pion in turns within one benchmark,
// so that both see the same machine load at a fine grain (one call, or
// chunk packets, each in turn, the order swapped every round):
//
//   - setup: b.N calls on each side as in BenchmarkSetup; reports
//     reflow-ms/call, pion-ms/call and pion/reflow (how many times longer
//     pion takes).
//   - rtprate: b.N packets on each path as in BenchmarkRTPRate (raw UDP,
//     reflow, pion); reports udp-, reflow- and pion-pkt/s, reflow/pion and
//     reflow/udp.
func BenchmarkInterleaved(b *testing.B) {
	b.Run("setup", func(b *testing.B) {
		rp, pp := newReflowPeers(b), newPionPeers(b)
		defer rp.close()
		var tr, tp time.Duration
		one := []func(){
			func() {
				rc, d, _ := rp.setup(b, newCounter())
				tr += d
				rc.hangup(b)
			},
			func() {
				pc := pp.prepare(b, newCounter())
				d, _ := pc.setup(b)
				tp += d
				pc.close()
			},
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			one[i%2]()
			one[(i+1)%2]()
		}
		b.StopTimer()
		b.ReportMetric(float64(tr.Microseconds())/1000/float64(b.N), "reflow-ms/call")
		b.ReportMetric(float64(tp.Microseconds())/1000/float64(b.N), "pion-ms/call")
		b.ReportMetric(float64(tp)/float64(tr), "pion/reflow")
	})
	b.Run("rtprate", func(b *testing.B) {
		paths := []*path{udpPath(b), reflowPath(b), pionPath(b)}
		var got [3]int64
		var el [3]time.Duration
		b.ResetTimer()
		for sent, round := 0, 0; sent < b.N; sent, round = sent+chunk, round+1 {
			n := min(chunk, b.N-sent)
			for k := range paths {
				j := (k + round) % len(paths)
				g, d, err := paths[j].burst(n)
				if err != nil {
					b.Fatal(err)
				}
				got[j] += g
				el[j] += d
			}
		}
		b.StopTimer()
		for _, pa := range paths {
			pa.close()
		}
		rate := func(j int) float64 { return float64(got[j]) / el[j].Seconds() }
		b.ReportMetric(rate(0), "udp-pkt/s")
		b.ReportMetric(rate(1), "reflow-pkt/s")
		b.ReportMetric(rate(2), "pion-pkt/s")
		b.ReportMetric(rate(1)/rate(2), "reflow/pion")
		b.ReportMetric(rate(1)/rate(0), "reflow/udp")
	})
}
