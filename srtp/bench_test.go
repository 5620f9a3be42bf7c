package srtp_test

import (
	"encoding/binary"
	"testing"

	"github.com/pion/rtp"
	psrtp "github.com/pion/srtp/v3"

	"github.com/reflow-go/reflow/srtp"
)

// benchPayload makes 172-byte RTP packets: 12-byte header, 160 bytes of
// payload (20 ms of G.711).
const benchPayload = 160

func BenchmarkProtectRTP(b *testing.B) {
	for _, s := range srtp.Suites() {
		b.Run(s.String(), func(b *testing.B) {
			enc, err := srtp.NewEncrypter(testKeys(s, 1))
			if err != nil {
				b.Fatal(err)
			}
			pkt := rtpPacket(0, 0x11223344, benchPayload)
			dst := make([]byte, 0, len(pkt)+srtp.MaxOverhead)
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				binary.BigEndian.PutUint16(pkt[2:], uint16(i))
				if _, err := enc.ProtectRTP(dst, pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnprotectRTP decrypts fresh, in-order packets with the default
// replay window, as a receiver does. The packets are protected in batches
// outside the timer.
func BenchmarkUnprotectRTP(b *testing.B) {
	for _, s := range srtp.Suites() {
		b.Run(s.String(), func(b *testing.B) {
			k := testKeys(s, 1)
			enc, dec := pair(b, k)
			const batch = 4096
			pkt := rtpPacket(0, 0x11223344, benchPayload)
			wire := make([][]byte, batch)
			for i := range wire {
				wire[i] = make([]byte, 0, len(pkt)+srtp.MaxOverhead)
			}
			seq := uint16(0)
			fill := func() {
				for i := range wire {
					binary.BigEndian.PutUint16(pkt[2:], seq)
					seq++
					var err error
					if wire[i], err = enc.ProtectRTP(wire[i], pkt); err != nil {
						b.Fatal(err)
					}
				}
			}
			fill()
			dst := make([]byte, 0, len(pkt)+srtp.MaxOverhead)
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%batch == 0 && i > 0 {
					b.StopTimer()
					fill()
					b.StartTimer()
				}
				if _, err := dec.UnprotectRTP(dst, wire[i%batch]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPionEncryptRTP is the baseline: pion's Context used directly, the
// way BenchmarkProtectRTP uses it through an Encrypter.
func BenchmarkPionEncryptRTP(b *testing.B) {
	for _, s := range srtp.Suites() {
		b.Run(s.String(), func(b *testing.B) {
			k := testKeys(s, 1)
			ctx, err := psrtp.CreateContext(k.Key, k.Salt, psrtp.ProtectionProfile(s))
			if err != nil {
				b.Fatal(err)
			}
			pkt := rtpPacket(0, 0x11223344, benchPayload)
			dst := make([]byte, 0, len(pkt)+srtp.MaxOverhead)
			var hdr rtp.Header
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				binary.BigEndian.PutUint16(pkt[2:], uint16(i))
				if _, err := ctx.EncryptRTP(dst, pkt, &hdr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestZeroAllocs makes the benchmarks' 0 allocs/op claim a test that runs
// in every `go test`: protecting and unprotecting RTP allocates nothing in
// any suite, and neither does RTCP with the HMAC suites. pion/srtp v3.1.0
// lets the 12-byte AAD of AEAD SRTCP escape to the heap, one allocation per
// packet each way; that is pinned here too, so a change is noticed.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector; run without -race")
	}
	for _, s := range srtp.Suites() {
		k := testKeys(s, 2)
		k.MKI = []byte{1, 2, 3, 4}
		enc, dec := pair(t, k)
		pkt := rtpPacket(0, 1, benchPayload)
		rtcp := rtcpPacket(1, 0)
		wire := make([]byte, 0, len(pkt)+srtp.MaxOverhead)
		out := make([]byte, 0, len(pkt)+srtp.MaxOverhead)
		// Warm up: the first packet of an SSRC creates its state.
		w, _ := enc.ProtectRTP(wire, pkt)
		if _, err := dec.UnprotectRTP(out, w); err != nil {
			t.Fatal(err)
		}
		w, _ = enc.ProtectRTCP(wire, rtcp)
		if _, err := dec.UnprotectRTCP(out, w); err != nil {
			t.Fatal(err)
		}
		seq := uint16(1)
		rtpAllocs := testing.AllocsPerRun(200, func() {
			binary.BigEndian.PutUint16(pkt[2:], seq)
			seq++
			w, err := enc.ProtectRTP(wire, pkt)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dec.UnprotectRTP(out, w); err != nil {
				t.Fatal(err)
			}
		})
		rtcpAllocs := testing.AllocsPerRun(200, func() {
			w, err := enc.ProtectRTCP(wire, rtcp)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dec.UnprotectRTCP(out, w); err != nil {
				t.Fatal(err)
			}
		})
		wantRTCP := 0.0
		if s == srtp.AEADAES128GCM || s == srtp.AEADAES256GCM {
			wantRTCP = 2
		}
		if rtpAllocs != 0 || rtcpAllocs != wantRTCP {
			t.Errorf("%v: %v allocations per RTP protect+unprotect (want 0), %v per RTCP (want %v)", s, rtpAllocs, rtcpAllocs, wantRTCP)
		}
	}
}
