package srtp

import (
	"bytes"
	"crypto/rand"
	"fmt"
)

// MaxMKILen is the longest master key identifier in bytes (RFC 4568 §6.1:
// the MKI length is 1 to 128 bytes).
const MaxMKILen = 128

// MaxLifetime is the largest master key lifetime in packets: RFC 3711 §9.2
// allows a master key for at most 2^48 SRTP packets.
const MaxLifetime = 1 << 48

// Keys is the master key material of one direction of an SRTP session: what
// an a=crypto line carries (SDES) or what the DTLS-SRTP exporter yields.
type Keys struct {
	// Suite is the crypto suite the key is for.
	Suite Suite
	// Key is the master key, Suite.KeyLen() bytes.
	Key []byte
	// Salt is the master salt, Suite.SaltLen() bytes.
	Salt []byte
	// MKI is the optional master key identifier (1 to MaxMKILen bytes),
	// carried in every protected packet and checked on every received one.
	// Empty means no MKI.
	MKI []byte
	// Lifetime is the number of SRTP packets, and separately of SRTCP
	// packets, an Encrypter protects with this key before it fails with
	// ErrKeyExpired; 0 means only the RFC 3711 limits (2^48 SRTP packets,
	// 2^31 SRTCP packets) that pion/srtp enforces. ParseCrypto fills it
	// from the lifetime parameter. A Decrypter does not enforce it, so a
	// peer that overruns its own key's lifetime is still heard.
	Lifetime uint64
}

// GenerateKeys returns a fresh random master key and salt for s, read from
// crypto/rand, without MKI or lifetime.
func GenerateKeys(s Suite) (Keys, error) {
	if !s.Valid() {
		return Keys{}, fmt.Errorf("%w: %v", ErrUnknownSuite, s)
	}
	buf := make([]byte, s.KeyLen()+s.SaltLen())
	if _, err := rand.Read(buf); err != nil {
		return Keys{}, fmt.Errorf("srtp: reading random key material: %w", err)
	}
	return Keys{Suite: s, Key: buf[:s.KeyLen():s.KeyLen()], Salt: buf[s.KeyLen():]}, nil
}

// Validate reports whether k can key an Encrypter or Decrypter: a supported
// suite (ErrUnknownSuite), key and salt of its lengths (ErrKeyLength), an
// MKI of at most MaxMKILen bytes and a lifetime of at most MaxLifetime
// (ErrUnsupportedParam).
func (k Keys) Validate() error {
	if !k.Suite.Valid() {
		return fmt.Errorf("%w: %v", ErrUnknownSuite, k.Suite)
	}
	if len(k.Key) != k.Suite.KeyLen() {
		return fmt.Errorf("%w: %v needs a %d-byte master key, got %d", ErrKeyLength, k.Suite, k.Suite.KeyLen(), len(k.Key))
	}
	if len(k.Salt) != k.Suite.SaltLen() {
		return fmt.Errorf("%w: %v needs a %d-byte master salt, got %d", ErrKeyLength, k.Suite, k.Suite.SaltLen(), len(k.Salt))
	}
	if len(k.MKI) > MaxMKILen {
		return fmt.Errorf("%w: MKI of %d bytes, at most %d allowed", ErrUnsupportedParam, len(k.MKI), MaxMKILen)
	}
	if k.Lifetime > MaxLifetime {
		return fmt.Errorf("%w: lifetime %d above the 2^48 packets SRTP allows", ErrUnsupportedParam, k.Lifetime)
	}
	return nil
}

// Equal reports whether k and o hold the same suite, key, salt, MKI and
// lifetime.
func (k Keys) Equal(o Keys) bool {
	return k.Suite == o.Suite && bytes.Equal(k.Key, o.Key) && bytes.Equal(k.Salt, o.Salt) &&
		bytes.Equal(k.MKI, o.MKI) && k.Lifetime == o.Lifetime
}

// String describes k without revealing the key or salt, so that Keys can be
// logged safely.
func (k Keys) String() string {
	s := fmt.Sprintf("srtp.Keys{%v key:%dB salt:%dB", k.Suite, len(k.Key), len(k.Salt))
	if len(k.MKI) > 0 {
		s += fmt.Sprintf(" mki:%x", k.MKI)
	}
	if k.Lifetime != 0 {
		s += fmt.Sprintf(" lifetime:%d", k.Lifetime)
	}
	return s + "}"
}

// GoString is like String, so that %#v does not reveal the key either.
func (k Keys) GoString() string { return k.String() }

// RTPOverhead returns how many bytes ProtectRTP adds to an RTP packet with
// these keys: the authentication tag plus the MKI.
func (k Keys) RTPOverhead() int { return k.Suite.RTPAuthTagLen() + len(k.MKI) }

// RTCPOverhead returns how many bytes ProtectRTCP adds to an RTCP packet with
// these keys: the authentication tag, the 4-byte E flag and SRTCP index, and
// the MKI.
func (k Keys) RTCPOverhead() int { return k.Suite.RTCPAuthTagLen() + srtcpIndexLen + len(k.MKI) }
