package srtp_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/reflow-go/reflow/srtp"
)

// Attribute lines from RFC 4568 (§4, §5.1, §9.1 and §10) and RFC 7714.
var rfcCryptoLines = []string{
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32",
	"a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32",
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32",
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP",
	"a=crypto:2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP",
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
	"a=crypto:1 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==",
}

func TestParseCryptoRFC4568Example(t *testing.T) {
	const line = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32"
	c, err := srtp.ParseCrypto(line)
	if err != nil {
		t.Fatal(err)
	}
	// key||salt decoded independently (Python's base64 module).
	wantKey, _ := hex.DecodeString("3d2d6e40255e7821426a75667239293f")
	wantSalt, _ := hex.DecodeString("2c2335685c603d265d7b71695051")
	wantMKI := make([]byte, 32)
	wantMKI[31] = 1
	want := srtp.Crypto{
		Tag:      1,
		Keys:     srtp.Keys{Suite: srtp.AESCM128HMACSHA1_80, Key: wantKey, Salt: wantSalt, MKI: wantMKI, Lifetime: 1 << 20},
		Lifetime: 1 << 20,
		MKILen:   32,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("ParseCrypto:\n got %#v\nwant %#v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if c.String() != line {
		t.Errorf("String() = %q, want %q", c.String(), line)
	}
	if c.Value() != strings.TrimPrefix(line, "a=crypto:") {
		t.Errorf("Value() = %q", c.Value())
	}
	// The same attribute without prefix, with "crypto:" only, with CRLF.
	for _, in := range []string{strings.TrimPrefix(line, "a=crypto:"), strings.TrimPrefix(line, "a="), line + "\r\n", "  " + line + " "} {
		c2, err := srtp.ParseCrypto(in)
		if err != nil || !reflect.DeepEqual(c2, want) {
			t.Errorf("ParseCrypto(%q) = %v, %v", in, c2, err)
		}
	}
}

func TestParseCryptoRFCLines(t *testing.T) {
	for _, line := range rfcCryptoLines {
		c, err := srtp.ParseCrypto(line)
		switch {
		case strings.Contains(line, "F8_128"):
			if !errors.Is(err, srtp.ErrUnknownSuite) {
				t.Errorf("%s: %v, want ErrUnknownSuite", line, err)
			}
		case strings.Contains(line, "FEC_ORDER"):
			if !errors.Is(err, srtp.ErrUnsupportedParam) || !strings.Contains(err.Error(), "FEC") {
				t.Errorf("%s: %v, want ErrUnsupportedParam naming FEC", line, err)
			}
		default:
			if err != nil {
				t.Errorf("%s: %v", line, err)
				continue
			}
			if c.String() != line {
				t.Errorf("round trip:\n got %s\nwant %s", c.String(), line)
			}
			// The keys work.
			enc, dec := pair(t, c.Keys)
			ct, err := enc.ProtectRTP(nil, rtpPacket(1, 2, 20))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dec.UnprotectRTP(nil, ct); err != nil {
				t.Errorf("%s: keys do not round trip: %v", line, err)
			}
		}
	}
}

func TestParseCryptoVariants(t *testing.T) {
	const k80 = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
	for _, tc := range []struct {
		in        string
		lifetime  uint64
		mki       []byte
		params    []string
		canonical string // Value(), "" = same as in
	}{
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|1048576", lifetime: 1 << 20, canonical: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|2^20"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|2^31", lifetime: 1 << 31},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|2^48", lifetime: 1 << 48},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|1000", lifetime: 1000},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|1", lifetime: 1},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|2^0", lifetime: 1, canonical: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|1"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|1:4", mki: []byte{0, 0, 0, 1}},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|0:1", mki: []byte{0}},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|255:1", mki: []byte{255}},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|65536:3", mki: []byte{1, 0, 0}},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|007:2", mki: []byte{0, 7}, canonical: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|7:2"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + "|2^20|1:4", lifetime: 1 << 20, mki: []byte{0, 0, 0, 1}},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + " WSH=128 -X-FOO=1", params: []string{"WSH=128", "-X-FOO=1"}},
		{in: "001 aes_cm_128_hmac_sha1_80\tINLINE:" + k80, canonical: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k80},
		{in: "1 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw", canonical: "1 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw=="},
		{in: "999999999 AES_CM_128_HMAC_SHA1_80 inline:" + k80},
	} {
		c, err := srtp.ParseCrypto(tc.in)
		if err != nil {
			t.Errorf("ParseCrypto(%q): %v", tc.in, err)
			continue
		}
		if c.Lifetime != tc.lifetime || c.Keys.Lifetime != tc.lifetime || !bytes.Equal(c.Keys.MKI, tc.mki) ||
			c.MKILen != len(tc.mki) || !reflect.DeepEqual(c.SessionParams, tc.params) {
			t.Errorf("ParseCrypto(%q) = lifetime %d/%d MKI %x/%d params %q", tc.in, c.Lifetime, c.Keys.Lifetime, c.Keys.MKI, c.MKILen, c.SessionParams)
		}
		want := tc.canonical
		if want == "" {
			want = tc.in
		}
		if c.Value() != want {
			t.Errorf("Value() = %q, want %q", c.Value(), want)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%q): %v", tc.in, err)
		}
		c2, err := srtp.ParseCrypto(c.Value())
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Errorf("re-parse of %q: %v, %v", c.Value(), c2, err)
		}
	}
	c, _ := srtp.ParseCrypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + k80 + " WSH=128")
	if c.WindowSizeHint() != 128 {
		t.Errorf("WindowSizeHint() = %d", c.WindowSizeHint())
	}
	c, _ = srtp.ParseCrypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + k80)
	if c.WindowSizeHint() != 0 {
		t.Errorf("WindowSizeHint() = %d without WSH", c.WindowSizeHint())
	}
}

func TestParseCryptoErrors(t *testing.T) {
	const k80 = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
	const pre = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", srtp.ErrMalformedCrypto},
		{"a=crypto:", srtp.ErrMalformedCrypto},
		{"a=crypto:1 AES_CM_128_HMAC_SHA1_80", srtp.ErrMalformedCrypto},
		{"a=crypto:0 AES_CM_128_HMAC_SHA1_80 inline:" + k80, srtp.ErrMalformedCrypto},
		{"a=crypto:1000000000 AES_CM_128_HMAC_SHA1_80 inline:" + k80, srtp.ErrMalformedCrypto},
		{"a=crypto:-1 AES_CM_128_HMAC_SHA1_80 inline:" + k80, srtp.ErrMalformedCrypto},
		{"a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:" + k80, srtp.ErrMalformedCrypto},
		{"a=crypto:1 AES_CM_128_HMAC_SHA1_99 inline:" + k80, srtp.ErrUnknownSuite},
		{"a=crypto:1 AES_192_CM_HMAC_SHA1_80 inline:" + k80, srtp.ErrUnknownSuite},
		{pre + k80, srtp.ErrMalformedCrypto},
		{pre + "uri:sip:example.com", srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80 + ";inline:" + k80, srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80[:39] + "!", srtp.ErrBadBase64},
		{pre + "inline:NzB4d1BINUAvLEw6UzF3WSJ-PSdFcGdUJShpX1Zj", srtp.ErrBadBase64}, // URL alphabet
		{pre + "inline:" + k80 + "=", srtp.ErrBadBase64},
		{pre + "inline:", srtp.ErrKeyLength},
		{pre + "inline:" + k80[:36], srtp.ErrKeyLength},
		{pre + "inline:" + k80 + "AAAA", srtp.ErrKeyLength},
		{"a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:" + k80, srtp.ErrKeyLength},
		{"a=crypto:1 AEAD_AES_128_GCM inline:" + k80, srtp.ErrKeyLength},
		{pre + "inline:" + k80 + "|0", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "|2^", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "|2^x", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "|3^20", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "|2^49", srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80 + "|281474976710657", srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80 + "|99999999999999999999999", srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80 + "|2^20|2^20", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "|1:4|2^20", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "|1:4|2:4", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "|2^20|1:4|x", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "|1:0", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "|1:129", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "|256:1", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "|:4", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "|1:", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "|1:4:4", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + " UNENCRYPTED_SRTP", srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80 + " UNENCRYPTED_SRTCP", srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80 + " UNAUTHENTICATED_SRTP", srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80 + " KDR=0", srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80 + " KDR=24", srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80 + " FEC_ORDER=SRTP_FEC", srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80 + " FEC_KEY=inline:" + k80, srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80 + " FOO", srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80 + " WSH=32", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + " WSH=x", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + " WSH=100000", srtp.ErrUnsupportedParam},
		{pre + "inline:" + k80 + " -", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "\x00", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + " \u00e9", srtp.ErrMalformedCrypto},
		{pre + "inline:" + k80 + "\r\nX", srtp.ErrMalformedCrypto},
	} {
		c, err := srtp.ParseCrypto(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("ParseCrypto(%q) = %v, want %v", tc.in, err, tc.want)
		}
		if err != nil && !reflect.DeepEqual(c, srtp.Crypto{}) {
			t.Errorf("ParseCrypto(%q) returned %v with its error", tc.in, c)
		}
	}
}

func TestCryptoValidateAndFormat(t *testing.T) {
	k := testKeys(srtp.AES256CMHMACSHA1_32, 9)
	good := srtp.Crypto{Tag: 7, Keys: k}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	// Keys.Lifetime is written when Lifetime is 0, and MKI with its own length.
	k.Lifetime = 1 << 31
	k.MKI = []byte{1, 2}
	c := srtp.Crypto{Tag: 7, Keys: k, MKILen: 2}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(c.Value(), "|2^31|258:2") {
		t.Errorf("Value() = %q", c.Value())
	}
	back, err := srtp.ParseCrypto(c.String())
	if err != nil || !back.Keys.Equal(c.Keys) || back.Lifetime != 1<<31 {
		t.Errorf("ParseCrypto(%q) = %v, %v", c.String(), back, err)
	}
	for _, tc := range []struct {
		name string
		c    srtp.Crypto
		want error
	}{
		{"tag 0", srtp.Crypto{Keys: k, MKILen: 2}, srtp.ErrMalformedCrypto},
		{"tag too big", srtp.Crypto{Tag: srtp.MaxTag + 1, Keys: k, MKILen: 2}, srtp.ErrMalformedCrypto},
		{"bad keys", srtp.Crypto{Tag: 1, Keys: srtp.Keys{Suite: srtp.AEADAES128GCM}}, srtp.ErrKeyLength},
		{"MKILen mismatch", srtp.Crypto{Tag: 1, Keys: k, MKILen: 4}, srtp.ErrMalformedCrypto},
		{"lifetime mismatch", srtp.Crypto{Tag: 1, Keys: k, MKILen: 2, Lifetime: 5}, srtp.ErrMalformedCrypto},
		{"lifetime too big", srtp.Crypto{Tag: 1, Keys: good.Keys, Lifetime: 1<<48 + 1}, srtp.ErrUnsupportedParam},
		{"refused param", srtp.Crypto{Tag: 1, Keys: good.Keys, SessionParams: []string{"UNENCRYPTED_SRTP"}}, srtp.ErrUnsupportedParam},
		{"space in param", srtp.Crypto{Tag: 1, Keys: good.Keys, SessionParams: []string{"-a b"}}, srtp.ErrMalformedCrypto},
		{"empty param", srtp.Crypto{Tag: 1, Keys: good.Keys, SessionParams: []string{""}}, srtp.ErrUnsupportedParam},
	} {
		if err := tc.c.Validate(); !errors.Is(err, tc.want) {
			t.Errorf("%s: Validate() = %v, want %v", tc.name, err, tc.want)
		}
	}
}
