package srtp_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/reflow-go/reflow/srtp"
)

func FuzzParseCrypto(f *testing.F) {
	for _, l := range rfcCryptoLines {
		f.Add(l)
	}
	for _, l := range []string{
		"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1048576|007:2 WSH=64 -X",
		"a=crypto:9 AEAD_AES_256_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJyg|2^48",
		"crypto:2 AES_256_CM_HMAC_SHA1_32 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJyor|1:128",
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32 UNENCRYPTED_SRTP",
		"", "a=crypto:", "1 2 3",
	} {
		f.Add(l)
	}
	sentinels := []error{srtp.ErrMalformedCrypto, srtp.ErrUnknownSuite, srtp.ErrBadBase64, srtp.ErrKeyLength, srtp.ErrUnsupportedParam}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := srtp.ParseCrypto(s)
		if err != nil {
			for _, e := range sentinels {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("ParseCrypto(%q): error %v matches no sentinel", s, err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseCrypto(%q) = %#v, which fails Validate: %v", s, c, err)
		}
		for _, line := range []string{c.Value(), c.String()} {
			c2, err := srtp.ParseCrypto(line)
			if err != nil {
				t.Fatalf("ParseCrypto(%q) ok, but its formatting %q fails: %v", s, line, err)
			}
			if !reflect.DeepEqual(c, c2) {
				t.Fatalf("ParseCrypto(%q) = %#v\nre-parsed %q = %#v", s, c, line, c2)
			}
		}
	})
}

// fuzzSeeds returns genuine packets of every suite for the fuzz corpus.
func fuzzSeeds(rtcp bool) (seeds [][]byte, suites []byte) {
	for i, s := range srtp.Suites() {
		enc, _ := srtp.NewEncrypter(testKeys(s, 1))
		var p []byte
		if rtcp {
			p, _ = enc.ProtectRTCP(nil, rtcpPacket(5, 1))
		} else {
			p, _ = enc.ProtectRTP(nil, rtpPacket(5, 6, 30))
		}
		seeds = append(seeds, p)
		suites = append(suites, byte(i))
	}
	return seeds, suites
}

// checkUnprotect is the property of both receive fuzz targets: no panic
// (TestMain also checks the recovered-panic counter), every error matches a
// sentinel and returns nothing, and an accepted packet is shorter than the
// input.
func checkUnprotect(t *testing.T, in, out []byte, err error) {
	t.Helper()
	if srtp.RecoveredPanics() != 0 {
		t.Fatalf("pion/srtp panicked on % x", in)
	}
	if err != nil {
		if out != nil {
			t.Fatalf("output returned with error %v", err)
		}
		if !errors.Is(err, srtp.ErrAuthFailed) && !errors.Is(err, srtp.ErrReplay) && !errors.Is(err, srtp.ErrMalformedPacket) {
			t.Fatalf("error %v matches no sentinel", err)
		}
		return
	}
	if len(out) >= len(in) {
		t.Fatalf("accepted %d bytes from %d", len(out), len(in))
	}
}

func FuzzUnprotectRTP(f *testing.F) {
	seeds, suites := fuzzSeeds(false)
	for i := range seeds {
		f.Add(suites[i], seeds[i])
	}
	f.Add(byte(0), []byte{0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add(byte(4), []byte{0x90, 0xc8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xc0, 0xde, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, which byte, in []byte) {
		s := srtp.Suites()[int(which)%len(srtp.Suites())]
		k := testKeys(s, 1)
		_, dec := pair(t, k)
		orig := bytes.Clone(in)
		out, err := dec.UnprotectRTP(make([]byte, 0, len(in)), in)
		checkUnprotect(t, in, out, err)
		if !bytes.Equal(in, orig) {
			t.Fatal("input modified")
		}
		if err == nil {
			// Only the key holder can have produced it: protecting the
			// plaintext again gives the same packet.
			enc, _ := pair(t, k)
			again, err := enc.ProtectRTP(nil, out)
			if err != nil || !bytes.Equal(again, in) {
				t.Fatalf("accepted % x, which re-protects to % x (%v)", in, again, err)
			}
			if _, err := dec.UnprotectRTP(nil, in); !errors.Is(err, srtp.ErrReplay) {
				t.Fatalf("second copy: %v, want ErrReplay", err)
			}
		}
	})
}

func FuzzUnprotectRTCP(f *testing.F) {
	seeds, suites := fuzzSeeds(true)
	for i := range seeds {
		f.Add(suites[i], seeds[i])
	}
	f.Add(byte(0), []byte{0x80, 200, 0, 1, 0, 0, 0, 5, 0x80, 0, 0, 1})
	f.Add(byte(5), make([]byte, 28))
	f.Fuzz(func(t *testing.T, which byte, in []byte) {
		s := srtp.Suites()[int(which)%len(srtp.Suites())]
		_, dec := pair(t, testKeys(s, 1))
		orig := bytes.Clone(in)
		out, err := dec.UnprotectRTCP(make([]byte, 0, len(in)), in)
		checkUnprotect(t, in, out, err)
		if !bytes.Equal(in, orig) {
			t.Fatal("input modified")
		}
		if err == nil {
			if _, err := dec.UnprotectRTCP(nil, in); !errors.Is(err, srtp.ErrReplay) {
				t.Fatalf("second copy: %v, want ErrReplay", err)
			}
		}
	})
}
