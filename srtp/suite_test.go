package srtp_test

import (
	"errors"
	"strings"
	"testing"

	psrtp "github.com/pion/srtp/v3"

	"github.com/reflow-go/reflow/srtp"
)

func TestSuiteNamesAndValues(t *testing.T) {
	want := []struct {
		s       srtp.Suite
		id      uint16
		name    string
		key     int
		salt    int
		rtpTag  int
		rtcpTag int
	}{
		{srtp.AESCM128HMACSHA1_80, 0x0001, "AES_CM_128_HMAC_SHA1_80", 16, 14, 10, 10},
		{srtp.AESCM128HMACSHA1_32, 0x0002, "AES_CM_128_HMAC_SHA1_32", 16, 14, 4, 10},
		{srtp.AES256CMHMACSHA1_80, 0x0003, "AES_256_CM_HMAC_SHA1_80", 32, 14, 10, 10},
		{srtp.AES256CMHMACSHA1_32, 0x0004, "AES_256_CM_HMAC_SHA1_32", 32, 14, 4, 10},
		{srtp.AEADAES128GCM, 0x0007, "AEAD_AES_128_GCM", 16, 12, 16, 16},
		{srtp.AEADAES256GCM, 0x0008, "AEAD_AES_256_GCM", 32, 12, 16, 16},
	}
	if got := srtp.Suites(); len(got) != len(want) {
		t.Fatalf("Suites() = %v, want %d suites", got, len(want))
	}
	for i, w := range want {
		if srtp.Suites()[i] != w.s {
			t.Errorf("Suites()[%d] = %v, want %v", i, srtp.Suites()[i], w.s)
		}
		if uint16(w.s) != w.id || !w.s.Valid() || w.s.String() != w.name {
			t.Errorf("%v: id %#x valid %v name %q; want %#x true %q", w.s, uint16(w.s), w.s.Valid(), w.s.String(), w.id, w.name)
		}
		if w.s.KeyLen() != w.key || w.s.SaltLen() != w.salt || w.s.RTPAuthTagLen() != w.rtpTag || w.s.RTCPAuthTagLen() != w.rtcpTag {
			t.Errorf("%v: lengths key %d salt %d tags %d/%d", w.s, w.s.KeyLen(), w.s.SaltLen(), w.s.RTPAuthTagLen(), w.s.RTCPAuthTagLen())
		}
		// Our numbers agree with pion's profile of the same id.
		p := psrtp.ProtectionProfile(w.s)
		kl, _ := p.KeyLen()
		sl, _ := p.SaltLen()
		if kl != w.key || sl != w.salt {
			t.Errorf("%v: pion says key %d salt %d", w.s, kl, sl)
		}
		for _, name := range []string{w.name, strings.ToLower(w.name)} {
			if s, err := srtp.ParseSuite(name); err != nil || s != w.s {
				t.Errorf("ParseSuite(%q) = %v, %v; want %v", name, s, err, w.s)
			}
		}
	}
}

func TestSuiteInvalid(t *testing.T) {
	for _, s := range []srtp.Suite{0, 5, 6, 9, 0xffff} {
		if s.Valid() || s.KeyLen() != 0 || s.SaltLen() != 0 || s.RTPAuthTagLen() != 0 {
			t.Errorf("%v: Valid %v KeyLen %d SaltLen %d", s, s.Valid(), s.KeyLen(), s.SaltLen())
		}
	}
	if got := srtp.Suite(5).String(); got != "Suite(0x0005)" {
		t.Errorf("String = %q", got)
	}
	for _, name := range []string{"", "AES_CM_128_HMAC_SHA1", "SRTP_AES128_CM_HMAC_SHA1_80", "NULL_HMAC_SHA1_80",
		"F8_128_HMAC_SHA1_80", "AES_192_CM_HMAC_SHA1_80", "AES_192_CM_HMAC_SHA1_32"} {
		s, err := srtp.ParseSuite(name)
		if !errors.Is(err, srtp.ErrUnknownSuite) || s != 0 {
			t.Errorf("ParseSuite(%q) = %v, %v; want ErrUnknownSuite", name, s, err)
		}
	}
	if _, err := srtp.ParseSuite("AES_192_CM_HMAC_SHA1_80"); !strings.Contains(err.Error(), "not implemented") {
		t.Errorf("AES-192 error should say it is not implemented: %v", err)
	}
}

func TestIsRTCP(t *testing.T) {
	for _, tc := range []struct {
		pkt  []byte
		want bool
	}{
		{nil, false},
		{[]byte{0x80}, false},
		{[]byte{0x80, 191}, false},
		{[]byte{0x80, 192}, true},
		{[]byte{0x80, 200}, true}, // SR
		{[]byte{0x80, 223}, true},
		{[]byte{0x80, 224}, false}, // PT 96 with marker
		{[]byte{0x80, 0}, false},   // PCMU
		{rtcpPacket(1, 1), true},
		{rtpPacket(1, 1, 10), false},
	} {
		if got := srtp.IsRTCP(tc.pkt); got != tc.want {
			t.Errorf("IsRTCP(% x) = %v, want %v", tc.pkt, got, tc.want)
		}
	}
}
