package srtp

import (
	"fmt"
	"strings"

	psrtp "github.com/pion/srtp/v3"
)

// Suite is an SRTP crypto suite (protection profile). Its numeric values are
// the DTLS use_srtp protection profile ids of RFC 5764 and RFC 7714, which are
// also pion's srtp.ProtectionProfile values, so Suite(p) and
// psrtp.ProtectionProfile(s) convert directly.
type Suite uint16

// The suites pion/srtp v3.1.0 implements. The AES-192 suites of RFC 6188 and
// the F8 suite of RFC 4568 are not implemented by pion and are refused by
// ParseSuite with ErrUnknownSuite.
const (
	// AESCM128HMACSHA1_80 is AES_CM_128_HMAC_SHA1_80 (RFC 4568, RFC 5764):
	// AES-128 counter mode, 80-bit HMAC-SHA1 tag.
	AESCM128HMACSHA1_80 Suite = 0x0001
	// AESCM128HMACSHA1_32 is AES_CM_128_HMAC_SHA1_32 (RFC 4568, RFC 5764):
	// AES-128 counter mode, 32-bit HMAC-SHA1 tag on SRTP and 80-bit on SRTCP.
	AESCM128HMACSHA1_32 Suite = 0x0002
	// AES256CMHMACSHA1_80 is AES_256_CM_HMAC_SHA1_80 (RFC 6188): AES-256
	// counter mode, 80-bit HMAC-SHA1 tag.
	AES256CMHMACSHA1_80 Suite = 0x0003
	// AES256CMHMACSHA1_32 is AES_256_CM_HMAC_SHA1_32 (RFC 6188): AES-256
	// counter mode, 32-bit HMAC-SHA1 tag on SRTP and 80-bit on SRTCP.
	AES256CMHMACSHA1_32 Suite = 0x0004
	// AEADAES128GCM is AEAD_AES_128_GCM (RFC 7714): AES-128-GCM, 128-bit tag.
	AEADAES128GCM Suite = 0x0007
	// AEADAES256GCM is AEAD_AES_256_GCM (RFC 7714): AES-256-GCM, 128-bit tag.
	AEADAES256GCM Suite = 0x0008
)

// suiteInfo describes one supported suite.
type suiteInfo struct {
	name       string
	keyLen     int
	saltLen    int
	rtpTagLen  int // SRTP authentication tag (HMAC or GCM)
	rtcpTagLen int // SRTCP authentication tag (HMAC or GCM)
}

var suites = map[Suite]suiteInfo{
	AESCM128HMACSHA1_80: {"AES_CM_128_HMAC_SHA1_80", 16, 14, 10, 10},
	AESCM128HMACSHA1_32: {"AES_CM_128_HMAC_SHA1_32", 16, 14, 4, 10},
	AES256CMHMACSHA1_80: {"AES_256_CM_HMAC_SHA1_80", 32, 14, 10, 10},
	AES256CMHMACSHA1_32: {"AES_256_CM_HMAC_SHA1_32", 32, 14, 4, 10},
	AEADAES128GCM:       {"AEAD_AES_128_GCM", 16, 12, 16, 16},
	AEADAES256GCM:       {"AEAD_AES_256_GCM", 32, 12, 16, 16},
}

// unsupportedSuiteNames are registered SDES suite names pion/srtp cannot run;
// ParseSuite names them in its error instead of calling them unknown.
var unsupportedSuiteNames = []string{
	"F8_128_HMAC_SHA1_80",     // RFC 4568
	"AES_192_CM_HMAC_SHA1_80", // RFC 6188
	"AES_192_CM_HMAC_SHA1_32", // RFC 6188
}

// Suites returns every supported suite in ascending numeric order.
func Suites() []Suite {
	return []Suite{
		AESCM128HMACSHA1_80, AESCM128HMACSHA1_32,
		AES256CMHMACSHA1_80, AES256CMHMACSHA1_32,
		AEADAES128GCM, AEADAES256GCM,
	}
}

// ParseSuite returns the suite with the RFC 4568 / RFC 6188 / RFC 7714 name,
// compared case-insensitively. Other names give ErrUnknownSuite.
func ParseSuite(name string) (Suite, error) {
	for s, info := range suites {
		if strings.EqualFold(name, info.name) {
			return s, nil
		}
	}
	for _, n := range unsupportedSuiteNames {
		if strings.EqualFold(name, n) {
			return 0, fmt.Errorf("%w: %s is not implemented by pion/srtp", ErrUnknownSuite, n)
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownSuite, name)
}

// String returns the suite's RFC 4568 / RFC 6188 / RFC 7714 name, or
// "Suite(0x....)" for an unsupported value.
func (s Suite) String() string {
	if info, ok := suites[s]; ok {
		return info.name
	}
	return fmt.Sprintf("Suite(%#04x)", uint16(s))
}

// Valid reports whether s is a suite this package supports.
func (s Suite) Valid() bool {
	_, ok := suites[s]
	return ok
}

// KeyLen returns the master key length in bytes, or 0 for an invalid suite.
func (s Suite) KeyLen() int { return suites[s].keyLen }

// SaltLen returns the master salt length in bytes, or 0 for an invalid suite.
func (s Suite) SaltLen() int { return suites[s].saltLen }

// RTPAuthTagLen returns the length in bytes of the authentication tag that
// SRTP protection appends (the HMAC tag, or the GCM tag for AEAD suites), or
// 0 for an invalid suite.
func (s Suite) RTPAuthTagLen() int { return suites[s].rtpTagLen }

// RTCPAuthTagLen returns the length in bytes of the SRTCP authentication tag:
// 10 for every HMAC-SHA1 suite, _32 ones included (RFC 4568 §6.2), and 16
// for the AEAD suites; 0 for an invalid suite.
func (s Suite) RTCPAuthTagLen() int { return suites[s].rtcpTagLen }

// profile returns pion's protection profile for s.
func (s Suite) profile() psrtp.ProtectionProfile { return psrtp.ProtectionProfile(s) }
