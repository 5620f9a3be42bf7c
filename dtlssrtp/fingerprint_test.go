package dtlssrtp

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
)

func TestFingerprintRoundTripEveryHash(t *testing.T) {
	checkGoroutines(t)
	alice, _, _ := testCerts(t)
	der := alice.Certificate[0]
	s1 := sha1.Sum(der)
	s224 := sha256.Sum224(der)
	s256 := sha256.Sum256(der)
	s384 := sha512.Sum384(der)
	s512 := sha512.Sum512(der)
	for _, tc := range []struct {
		hash string
		want []byte
	}{
		{SHA1, s1[:]}, {SHA224, s224[:]}, {SHA256, s256[:]}, {SHA384, s384[:]}, {SHA512, s512[:]},
	} {
		t.Run(tc.hash, func(t *testing.T) {
			fp, err := FingerprintOf(der, strings.ToUpper(tc.hash))
			if err != nil {
				t.Fatal(err)
			}
			if fp.Hash != tc.hash || !bytes.Equal(fp.Value, tc.want) {
				t.Fatalf("FingerprintOf = %v, want %s %X", fp, tc.hash, tc.want)
			}
			cf, err := CertificateFingerprint(alice, tc.hash)
			if err != nil || !cf.Equal(fp) {
				t.Fatalf("CertificateFingerprint = %v, %v", cf, err)
			}
			s := fp.String()
			if !strings.HasPrefix(s, tc.hash+" ") {
				t.Fatalf("String = %q", s)
			}
			if hex := s[len(tc.hash)+1:]; hex != strings.ToUpper(hex) || len(hex) != 3*len(tc.want)-1 {
				t.Fatalf("String hex part %q: want upper case pairs", hex)
			}
			if a := fp.Attribute(); a != "a=fingerprint:"+s {
				t.Fatalf("Attribute = %q", a)
			}
			for _, in := range []string{
				s,
				strings.ToLower(s),
				strings.ToUpper(s),
				fp.Attribute(),
				"A=FINGERPRINT:" + s,
				"fingerprint:" + s,
				"  a=fingerprint: " + strings.ToLower(s) + " \r\n",
				strings.Replace(s, " ", "\t  ", 1),
			} {
				got, err := ParseFingerprint(in)
				if err != nil {
					t.Fatalf("ParseFingerprint(%q): %v", in, err)
				}
				if !got.Equal(fp) || got.Hash != tc.hash || got.String() != s {
					t.Fatalf("ParseFingerprint(%q) = %v, want %v", in, got, fp)
				}
			}
			if !fp.Matches(der) {
				t.Fatal("Matches(own cert) = false")
			}
			_, bob, _ := testCerts(t)
			if fp.Matches(bob.Certificate[0]) {
				t.Fatal("Matches(other cert) = true")
			}
		})
	}
}

func TestParseFingerprintBadInputs(t *testing.T) {
	checkGoroutines(t)
	good := "AB:" + strings.Repeat("CD:", 30) + "EF" // 32 bytes
	for _, tc := range []struct {
		in      string
		unknown bool
	}{
		{in: ""},
		{in: "   "},
		{in: "sha-256"},
		{in: "a=fingerprint:sha-256"},
		{in: good},
		{in: "sha-256 " + good + " extra"},
		{in: "sha-256 " + good[:len(good)-3]}, // 31 bytes
		{in: "sha-256 " + good + ":00"},       // 33 bytes
		{in: "sha-1 " + good},                 // length for another hash
		{in: "sha-512 " + good},
		{in: "sha-256 " + good + ":"}, // trailing colon
		{in: "sha-256 :" + good},      // leading colon
		{in: "sha-256 " + strings.ReplaceAll(good, ":", "-")},
		{in: "sha-256 " + strings.ReplaceAll(good, ":", "")},
		{in: "sha-256 " + "GG" + good[2:]},
		{in: "sha-256 " + "0x" + good[2:]},
		{in: "sha-256 " + " B:" + good[3:]},
		{in: "sha-256 " + "ABC" + good[3:]},
		{in: "sha256 " + good, unknown: true},
		{in: "md5 " + good, unknown: true},
		{in: "sha-3 " + good, unknown: true},
		{in: "a=fingerprint:SHA-257 " + good, unknown: true},
	} {
		fp, err := ParseFingerprint(tc.in)
		if !errors.Is(err, ErrInvalidFingerprint) {
			t.Errorf("ParseFingerprint(%q) = %v, %v; want ErrInvalidFingerprint", tc.in, fp, err)
			continue
		}
		if errors.Is(err, ErrUnknownHash) != tc.unknown {
			t.Errorf("ParseFingerprint(%q): %v; ErrUnknownHash want %v", tc.in, err, tc.unknown)
		}
	}
	if _, err := ParseFingerprint("sha-256 " + good); err != nil {
		t.Errorf("control: %v", err)
	}
}

func TestFingerprintEqualAndMatches(t *testing.T) {
	checkGoroutines(t)
	alice, bob, _ := testCerts(t)
	a256 := mustFP(t, alice, SHA256)
	b256 := mustFP(t, bob, SHA256)
	a1 := mustFP(t, alice, SHA1)
	upper := Fingerprint{Hash: "SHA-256", Value: a256.Value}
	truncated := Fingerprint{Hash: SHA256, Value: a256.Value[:16]}
	for _, tc := range []struct {
		name string
		f, g Fingerprint
		want bool
	}{
		{"same", a256, a256, true},
		{"hash name case", a256, upper, true},
		{"other cert", a256, b256, false},
		{"other hash", a256, a1, false},
		{"truncated never equal", truncated, truncated, false},
		{"zero never equal", Fingerprint{}, Fingerprint{}, false},
		{"unknown hash", Fingerprint{Hash: "md5", Value: make([]byte, 16)}, Fingerprint{Hash: "md5", Value: make([]byte, 16)}, false},
	} {
		if got := tc.f.Equal(tc.g); got != tc.want {
			t.Errorf("%s: Equal = %v", tc.name, got)
		}
	}
	if !upper.Matches(alice.Certificate[0]) {
		t.Error("upper-case hash name does not match")
	}
	// Only the whole value counts: a prefix of the right digest is no match.
	if truncated.Matches(alice.Certificate[0]) || (Fingerprint{}).Matches(alice.Certificate[0]) || a256.Matches(nil) {
		t.Error("an invalid fingerprint or empty DER matched")
	}
	flipped := Fingerprint{Hash: SHA256, Value: bytes.Clone(a256.Value)}
	flipped.Value[31] ^= 1
	if flipped.Matches(alice.Certificate[0]) {
		t.Error("last-byte mismatch matched")
	}
	if s := (Fingerprint{}).String(); s != "" {
		t.Errorf("zero String = %q", s)
	}
}

func TestFingerprintOfErrors(t *testing.T) {
	checkGoroutines(t)
	alice, _, _ := testCerts(t)
	if _, err := FingerprintOf(alice.Certificate[0], "md5"); !errors.Is(err, ErrUnknownHash) {
		t.Errorf("md5: %v", err)
	}
	if _, err := FingerprintOf(nil, SHA256); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("empty DER: %v", err)
	}
	if _, err := CertificateFingerprint(tls.Certificate{}, SHA256); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("empty certificate: %v", err)
	}
	if _, err := CertificateFingerprint(tls.Certificate{}, "sha-0"); !errors.Is(err, ErrUnknownHash) {
		t.Errorf("empty certificate, bad hash: %v", err)
	}
}

// FuzzParseFingerprint checks that parsing never panics and that whatever it
// accepts formats and parses back to the same value.
func FuzzParseFingerprint(f *testing.F) {
	for _, s := range []string{
		// RFC 4572 §5 / RFC 8122 §5 example.
		"a=fingerprint:SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB",
		"sha-1 4a:ad:b9:b1:3f:82:18:3b:54:02:12:df:3e:5d:49:6b:19:e5:7c:ab",
		"sha-224 " + strings.Repeat("00:", 27) + "FF",
		"sha-256 " + strings.Repeat("AB:", 31) + "CD",
		"fingerprint:sha-384 " + strings.Repeat("01:", 47) + "02",
		"sha-512 " + strings.Repeat("fe:", 63) + "dc\r\n",
		"sha-256 AB:CD",
		"md5 00",
		"",
		":",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidFingerprint) {
				t.Fatalf("error %v does not match ErrInvalidFingerprint", err)
			}
			return
		}
		_, h, ok := lookupHash(fp.Hash)
		if !ok || len(fp.Value) != h.Size() || fp.Hash != strings.ToLower(fp.Hash) {
			t.Fatalf("accepted %q as %v", s, fp)
		}
		again, err := ParseFingerprint(fp.Attribute())
		if err != nil || !again.Equal(fp) || again.String() != fp.String() {
			t.Fatalf("round trip of %q: %v, %v", s, again, err)
		}
	})
}
