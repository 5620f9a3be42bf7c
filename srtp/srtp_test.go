package srtp_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/reflow-go/reflow/srtp"
)

func TestRoundTripEverySuite(t *testing.T) {
	for _, s := range srtp.Suites() {
		for _, mki := range [][]byte{nil, {0xA5}, {0, 0, 0, 1}} {
			t.Run(fmt.Sprintf("%v/MKI%d", s, len(mki)), func(t *testing.T) {
				k := testKeys(s, 1)
				k.MKI = mki
				enc, dec := pair(t, k)
				for seq := uint16(65530); seq != 6; seq++ { // crosses the ROC wrap
					pkt := rtpPacket(seq, 0x11223344, 160)
					ct, err := enc.ProtectRTP(make([]byte, 0, len(pkt)+srtp.MaxOverhead), pkt)
					if err != nil {
						t.Fatalf("ProtectRTP seq %d: %v", seq, err)
					}
					if len(ct) != len(pkt)+k.RTPOverhead() || bytes.Equal(ct[12:12+160], pkt[12:]) || !bytes.Equal(ct[:12], pkt[:12]) {
						t.Fatalf("seq %d: SRTP packet has the wrong shape", seq)
					}
					// RFC 3711 §3.1: ...payload | MKI | tag; RFC 7714 §8.1: ...ciphertext+tag | MKI.
					at := len(pkt)
					if s == srtp.AEADAES128GCM || s == srtp.AEADAES256GCM {
						at += 16
					}
					if !bytes.Equal(ct[at:at+len(mki)], mki) {
						t.Fatalf("seq %d: MKI % x not at offset %d in % x", seq, mki, at, ct[len(pkt):])
					}
					pt, err := dec.UnprotectRTP(nil, ct)
					if err != nil {
						t.Fatalf("UnprotectRTP seq %d: %v", seq, err)
					}
					if !bytes.Equal(pt, pkt) {
						t.Fatalf("seq %d: decrypted packet differs", seq)
					}
				}
				for i := uint32(1); i <= 5; i++ {
					pkt := rtcpPacket(0x55667788, i)
					ct, err := enc.ProtectRTCP(nil, pkt)
					if err != nil {
						t.Fatalf("ProtectRTCP: %v", err)
					}
					if len(ct) != len(pkt)+k.RTCPOverhead() || bytes.Equal(ct[8:28], pkt[8:]) {
						t.Fatalf("SRTCP packet has the wrong shape")
					}
					// E flag set, SRTCP index i (RFC 3711 §3.4; RFC 7714 §9.1).
					word := binary.BigEndian.Uint32(ct[len(ct)-len(mki)-srtcpTrailer(s) : len(ct)-len(mki)-srtcpTrailer(s)+4])
					if word != 0x80000000|i {
						t.Fatalf("E||SRTCP index = %#x, want %#x", word, 0x80000000|i)
					}
					pt, err := dec.UnprotectRTCP(nil, ct)
					if err != nil {
						t.Fatalf("UnprotectRTCP: %v", err)
					}
					if !bytes.Equal(pt, pkt) {
						t.Fatal("decrypted RTCP differs")
					}
				}
			})
		}
	}
}

// srtcpTrailer returns the bytes after the E||index word that are not MKI.
func srtcpTrailer(s srtp.Suite) int {
	if s == srtp.AEADAES128GCM || s == srtp.AEADAES256GCM {
		return 4 // the GCM tag precedes the index word
	}
	return 4 + s.RTCPAuthTagLen()
}

func TestInPlace(t *testing.T) {
	for _, s := range srtp.Suites() {
		enc, dec := pair(t, testKeys(s, 2))
		pkt := rtpPacket(100, 7, 160)
		buf := make([]byte, len(pkt), len(pkt)+srtp.MaxOverhead)
		copy(buf, pkt)
		ct, err := enc.ProtectRTP(buf[:0], buf)
		if err != nil || &ct[0] != &buf[0] {
			t.Fatalf("%v: in-place ProtectRTP: %v (moved: %v)", s, err, err == nil && &ct[0] != &buf[0])
		}
		pt, err := dec.UnprotectRTP(ct[:0], ct)
		if err != nil || !bytes.Equal(pt, pkt) || &pt[0] != &buf[0] {
			t.Fatalf("%v: in-place UnprotectRTP: %v", s, err)
		}
		rpkt := rtcpPacket(7, 1)
		copy(buf, rpkt)
		ct, err = enc.ProtectRTCP(buf[:0], buf[:len(rpkt)])
		if err != nil {
			t.Fatal(err)
		}
		pt, err = dec.UnprotectRTCP(ct[:0], ct)
		if err != nil || !bytes.Equal(pt, rpkt) {
			t.Fatalf("%v: in-place RTCP: %v", s, err)
		}
	}
}

func TestWrongKeyFailsAuth(t *testing.T) {
	for _, s := range srtp.Suites() {
		enc, _ := pair(t, testKeys(s, 1))
		_, other := pair(t, testKeys(s, 2))
		ct, _ := enc.ProtectRTP(nil, rtpPacket(1, 1, 160))
		if pt, err := other.UnprotectRTP(nil, ct); !errors.Is(err, srtp.ErrAuthFailed) || pt != nil {
			t.Errorf("%v: wrong key RTP = %v, %v; want ErrAuthFailed", s, len(pt), err)
		}
		rct, _ := enc.ProtectRTCP(nil, rtcpPacket(1, 1))
		if pt, err := other.UnprotectRTCP(nil, rct); !errors.Is(err, srtp.ErrAuthFailed) || pt != nil {
			t.Errorf("%v: wrong key RTCP = %v, %v; want ErrAuthFailed", s, len(pt), err)
		}
		// Only the salt differs.
		k := testKeys(s, 1)
		k.Salt[0] ^= 1
		_, saltDec := pair(t, k)
		if _, err := saltDec.UnprotectRTP(nil, ct); !errors.Is(err, srtp.ErrAuthFailed) {
			t.Errorf("%v: wrong salt = %v; want ErrAuthFailed", s, err)
		}
	}
}

func TestMKIMismatchFailsAuth(t *testing.T) {
	for _, s := range srtp.Suites() {
		k := testKeys(s, 1)
		k.MKI = []byte{0, 1}
		enc, _ := pair(t, k)
		k.MKI = []byte{0, 2}
		_, dec := pair(t, k)
		ct, _ := enc.ProtectRTP(nil, rtpPacket(1, 1, 160))
		if _, err := dec.UnprotectRTP(nil, ct); !errors.Is(err, srtp.ErrAuthFailed) {
			t.Errorf("%v: other MKI = %v; want ErrAuthFailed", s, err)
		}
		rct, _ := enc.ProtectRTCP(nil, rtcpPacket(1, 1))
		if _, err := dec.UnprotectRTCP(nil, rct); !errors.Is(err, srtp.ErrAuthFailed) {
			t.Errorf("%v: other MKI RTCP = %v; want ErrAuthFailed", s, err)
		}
	}
}

func TestReplay(t *testing.T) {
	for _, s := range srtp.Suites() {
		t.Run(s.String(), func(t *testing.T) {
			enc, dec := pair(t, testKeys(s, 3))
			ct := map[uint16][]byte{}
			for seq := uint16(1000); seq < 1100; seq++ {
				ct[seq], _ = enc.ProtectRTP(nil, rtpPacket(seq, 9, 40))
			}
			mustOK := func(seq uint16) {
				t.Helper()
				if pt, err := dec.UnprotectRTP(nil, ct[seq]); err != nil || binary.BigEndian.Uint16(pt[2:]) != seq {
					t.Fatalf("seq %d: %v", seq, err)
				}
			}
			mustReplay := func(seq uint16) {
				t.Helper()
				if pt, err := dec.UnprotectRTP(nil, ct[seq]); !errors.Is(err, srtp.ErrReplay) || pt != nil {
					t.Fatalf("seq %d: %v, want ErrReplay", seq, err)
				}
			}
			mustOK(1000)
			mustReplay(1000) // exact duplicate
			mustOK(1002)
			mustOK(1001) // reordered within the window
			mustReplay(1001)
			mustReplay(1002)
			mustOK(1099)
			mustOK(1036)     // 63 behind the newest: still in the window of 64
			mustReplay(1035) // 64 behind: outside the window
			mustReplay(1003) // never seen, but too old
			mustReplay(1099)

			// SRTCP has its own window.
			r1, _ := enc.ProtectRTCP(nil, rtcpPacket(9, 1))
			r2, _ := enc.ProtectRTCP(nil, rtcpPacket(9, 2))
			r3, _ := enc.ProtectRTCP(nil, rtcpPacket(9, 3))
			for i, step := range []struct {
				pkt    []byte
				replay bool
			}{{r1, false}, {r1, true}, {r3, false}, {r2, false}, {r2, true}, {r3, true}} {
				_, err := dec.UnprotectRTCP(nil, step.pkt)
				if step.replay != errors.Is(err, srtp.ErrReplay) || (!step.replay && err != nil) {
					t.Fatalf("SRTCP step %d: %v (replay expected %v)", i, err, step.replay)
				}
			}
		})
	}
}

func TestReplayWindowSizes(t *testing.T) {
	k := testKeys(srtp.AEADAES128GCM, 4)
	enc, _ := pair(t, k)
	ct := map[uint16][]byte{}
	for seq := uint16(1); seq <= 300; seq++ {
		ct[seq], _ = enc.ProtectRTP(nil, rtpPacket(seq, 1, 10))
	}
	// Window 256 accepts a packet 200 behind; the default rejects it.
	for _, tc := range []struct {
		window int
		want   error
	}{{0, srtp.ErrReplay}, {64, srtp.ErrReplay}, {256, nil}} {
		dec, err := srtp.NewDecrypter(k, tc.window)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dec.UnprotectRTP(nil, ct[300]); err != nil {
			t.Fatal(err)
		}
		if _, err := dec.UnprotectRTP(nil, ct[100]); !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("window %d: 200 behind = %v, want %v", tc.window, err, tc.want)
		}
	}
	// Replay protection off: duplicates are delivered.
	off, err := srtp.NewDecrypter(k, -1)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := off.UnprotectRTP(nil, ct[5]); err != nil {
			t.Fatalf("replay protection off, copy %d: %v", i, err)
		}
	}
	if _, err := srtp.NewDecrypter(k, srtp.MaxReplayWindow); err != nil {
		t.Errorf("window %d: %v", srtp.MaxReplayWindow, err)
	}
	if _, err := srtp.NewDecrypter(k, srtp.MaxReplayWindow+1); !errors.Is(err, srtp.ErrUnsupportedParam) {
		t.Errorf("window %d: %v, want ErrUnsupportedParam", srtp.MaxReplayWindow+1, err)
	}
}

func TestTamperedThenGenuine(t *testing.T) {
	for _, s := range srtp.Suites() {
		enc, dec := pair(t, testKeys(s, 5))
		pkt := rtpPacket(42, 0xCAFE, 160)
		ct, _ := enc.ProtectRTP(nil, pkt)
		// Flip one bit in the header, the payload, the tag.
		for _, pos := range []int{1, 11, 12, 100, len(ct) - 1} {
			bad := bytes.Clone(ct)
			bad[pos] ^= 0x01
			if out, err := dec.UnprotectRTP(nil, bad); !errors.Is(err, srtp.ErrAuthFailed) || out != nil {
				t.Errorf("%v: tampered byte %d = %v; want ErrAuthFailed", s, pos, err)
			}
		}
		// A forged packet with a fresh index from an unknown SSRC does not
		// create state either.
		forged := bytes.Clone(ct)
		forged[8] ^= 0xff
		if _, err := dec.UnprotectRTP(nil, forged); !errors.Is(err, srtp.ErrAuthFailed) {
			t.Errorf("%v: forged SSRC = %v", s, err)
		}
		// The tampering did not burn index 42.
		if pt, err := dec.UnprotectRTP(nil, ct); err != nil || !bytes.Equal(pt, pkt) {
			t.Errorf("%v: genuine packet after tampered ones: %v", s, err)
		}

		rpkt := rtcpPacket(0xCAFE, 1)
		rct, _ := enc.ProtectRTCP(nil, rpkt)
		for _, pos := range []int{4, 9, len(rct) - 1, len(rct) - 11} {
			bad := bytes.Clone(rct)
			bad[pos] ^= 0x80
			if _, err := dec.UnprotectRTCP(nil, bad); !errors.Is(err, srtp.ErrAuthFailed) {
				t.Errorf("%v: tampered SRTCP byte %d = %v; want ErrAuthFailed", s, pos, err)
			}
		}
		if pt, err := dec.UnprotectRTCP(nil, rct); err != nil || !bytes.Equal(pt, rpkt) {
			t.Errorf("%v: genuine SRTCP after tampered ones: %v", s, err)
		}
	}
}

func TestMalformedPackets(t *testing.T) {
	for _, s := range srtp.Suites() {
		enc, dec := pair(t, testKeys(s, 6))
		good, _ := enc.ProtectRTP(nil, rtpPacket(1, 1, 20))
		goodRTCP, _ := enc.ProtectRTCP(nil, rtcpPacket(1, 1))
		inputs := [][]byte{nil, {}, {0x80}, make([]byte, 11), {0x40, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3},
			{0x8f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1},                         // 15 CSRCs announced, none present
			{0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0xff, 0xff}, // extension longer than the packet
			good[:12], good[:13], good[:len(good)-s.RTPAuthTagLen()], goodRTCP[:8], goodRTCP[:12], goodRTCP[:len(goodRTCP)-1]}
		for _, in := range inputs {
			if out, err := dec.UnprotectRTP(nil, in); err == nil || out != nil ||
				!(errors.Is(err, srtp.ErrMalformedPacket) || errors.Is(err, srtp.ErrAuthFailed)) {
				t.Errorf("%v: UnprotectRTP(% x) = %d bytes, %v", s, in, len(out), err)
			}
			if out, err := dec.UnprotectRTCP(nil, in); err == nil || out != nil ||
				!(errors.Is(err, srtp.ErrMalformedPacket) || errors.Is(err, srtp.ErrAuthFailed)) {
				t.Errorf("%v: UnprotectRTCP(% x) = %d bytes, %v", s, in, len(out), err)
			}
		}
		for _, in := range [][]byte{nil, {0x80}, make([]byte, 11), {0x40, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1},
			{0x8f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}} {
			if _, err := enc.ProtectRTP(nil, in); !errors.Is(err, srtp.ErrMalformedPacket) {
				t.Errorf("%v: ProtectRTP(% x) = %v, want ErrMalformedPacket", s, in, err)
			}
		}
		for _, in := range [][]byte{nil, {0x80, 200}, {0x80, 200, 0, 1}, {0x40, 200, 0, 1, 0, 0, 0, 1}} {
			if _, err := enc.ProtectRTCP(nil, in); !errors.Is(err, srtp.ErrMalformedPacket) {
				t.Errorf("%v: ProtectRTCP(% x) = %v, want ErrMalformedPacket", s, in, err)
			}
		}
		// The good packets still decrypt after all that.
		if _, err := dec.UnprotectRTP(nil, good); err != nil {
			t.Errorf("%v: genuine RTP after garbage: %v", s, err)
		}
		if _, err := dec.UnprotectRTCP(nil, goodRTCP); err != nil {
			t.Errorf("%v: genuine RTCP after garbage: %v", s, err)
		}
	}
}

func TestLifetime(t *testing.T) {
	k := testKeys(srtp.AESCM128HMACSHA1_80, 7)
	k.Lifetime = 3
	enc, dec := pair(t, k)
	for seq := uint16(1); seq <= 3; seq++ {
		ct, err := enc.ProtectRTP(nil, rtpPacket(seq, 1, 10))
		if err != nil {
			t.Fatalf("packet %d of 3: %v", seq, err)
		}
		if _, err := dec.UnprotectRTP(nil, ct); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := enc.ProtectRTP(nil, rtpPacket(4, 1, 10)); !errors.Is(err, srtp.ErrKeyExpired) {
		t.Errorf("4th packet with lifetime 3: %v, want ErrKeyExpired", err)
	}
	// SRTCP is counted separately, and failures do not count.
	if _, err := enc.ProtectRTCP(nil, []byte{1}); err == nil {
		t.Fatal("garbage RTCP protected")
	}
	for i := uint32(1); i <= 3; i++ {
		if _, err := enc.ProtectRTCP(nil, rtcpPacket(1, i)); err != nil {
			t.Fatalf("RTCP %d of 3: %v", i, err)
		}
	}
	if _, err := enc.ProtectRTCP(nil, rtcpPacket(1, 4)); !errors.Is(err, srtp.ErrKeyExpired) {
		t.Errorf("4th RTCP packet with lifetime 3: %v, want ErrKeyExpired", err)
	}
}

func TestZeroValues(t *testing.T) {
	var e *srtp.Encrypter
	var d *srtp.Decrypter
	var ze srtp.Encrypter
	var zd srtp.Decrypter
	pkt := rtpPacket(1, 1, 10)
	for name, f := range map[string]func() ([]byte, error){
		"nil ProtectRTP":    func() ([]byte, error) { return e.ProtectRTP(nil, pkt) },
		"nil ProtectRTCP":   func() ([]byte, error) { return e.ProtectRTCP(nil, pkt) },
		"nil UnprotectRTP":  func() ([]byte, error) { return d.UnprotectRTP(nil, pkt) },
		"nil UnprotectRTCP": func() ([]byte, error) { return d.UnprotectRTCP(nil, pkt) },
		"zero ProtectRTP":   func() ([]byte, error) { return ze.ProtectRTP(nil, pkt) },
		"zero ProtectRTCP":  func() ([]byte, error) { return ze.ProtectRTCP(nil, pkt) },
		"zero UnprotectRTP": func() ([]byte, error) { return zd.UnprotectRTP(nil, pkt) },
		"zero UnprotectRTCP": func() ([]byte, error) {
			return zd.UnprotectRTCP(nil, pkt)
		},
	} {
		if out, err := f(); !errors.Is(err, srtp.ErrUninitialized) || out != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	for _, s := range []srtp.Suite{srtp.AESCM128HMACSHA1_80, srtp.AEADAES128GCM} {
		enc, dec := pair(t, testKeys(s, 8))
		const workers, perWorker = 8, 50
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ssrc := uint32(1000 + w) // one stream per goroutine: every packet is fresh
				buf := make([]byte, 0, 200+srtp.MaxOverhead)
				out := make([]byte, 0, 200+srtp.MaxOverhead)
				for i := 0; i < perWorker; i++ {
					pkt := rtpPacket(uint16(i), ssrc, 160)
					ct, err := enc.ProtectRTP(buf, pkt)
					if err != nil {
						errs <- err
						return
					}
					pt, err := dec.UnprotectRTP(out, ct)
					if err != nil || !bytes.Equal(pt, pkt) {
						errs <- fmt.Errorf("ssrc %d seq %d: %v", ssrc, i, err)
						return
					}
					rct, err := enc.ProtectRTCP(buf, rtcpPacket(ssrc, uint32(i)))
					if err != nil {
						errs <- err
						return
					}
					if _, err := dec.UnprotectRTCP(out, rct); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%v: %v", s, err)
		}
	}
}
