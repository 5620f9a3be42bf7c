package dtlssrtp

import (
	"crypto"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"strings"

	// Register the hash implementations used by fingerprints.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// Hash function names of RFC 8122 §5 (lower case, as this package prints
// them). md5 and md2, which RFC 8122 still lists, are not supported.
const (
	SHA1   = "sha-1"
	SHA224 = "sha-224"
	SHA256 = "sha-256"
	SHA384 = "sha-384"
	SHA512 = "sha-512"
)

// hashes maps the canonical names to their implementations, strongest first
// (the order Verifier uses to pick the pins to check, RFC 8122 §5).
var hashes = []struct {
	name string
	h    crypto.Hash
}{
	{SHA512, crypto.SHA512},
	{SHA384, crypto.SHA384},
	{SHA256, crypto.SHA256},
	{SHA224, crypto.SHA224},
	{SHA1, crypto.SHA1},
}

// lookupHash returns the canonical name and implementation for a hash name,
// case-insensitively.
func lookupHash(name string) (string, crypto.Hash, bool) {
	for _, h := range hashes {
		if strings.EqualFold(name, h.name) {
			return h.name, h.h, true
		}
	}
	return "", 0, false
}

// hashRank orders hash names by strength; unknown names rank lowest (-1).
func hashRank(name string) int {
	for i, h := range hashes {
		if strings.EqualFold(name, h.name) {
			return len(hashes) - i
		}
	}
	return -1
}

// Fingerprint is a certificate fingerprint as carried in SDP
// (a=fingerprint, RFC 8122, formerly RFC 4572): a hash function name and the
// hash of the DER-encoded certificate.
type Fingerprint struct {
	// Hash is the hash function name in canonical lower case: "sha-1",
	// "sha-224", "sha-256", "sha-384" or "sha-512".
	Hash string
	// Value is the raw digest of the certificate's DER encoding.
	Value []byte
}

// ParseFingerprint parses the value of an SDP fingerprint attribute,
// "sha-256 AB:CD:...". A leading "a=fingerprint:" or "fingerprint:" and
// surrounding white space (including a trailing CR LF) are accepted, the hash
// name and the hex digits are case-insensitive, and each byte must be
// written as exactly two hex digits separated by colons. A value whose length
// does not match the hash is rejected. Errors match ErrInvalidFingerprint;
// an unsupported hash name also matches ErrUnknownHash.
func ParseFingerprint(s string) (Fingerprint, error) {
	orig := s
	s = strings.TrimSpace(s)
	for _, p := range []string{"a=fingerprint:", "fingerprint:"} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			s = strings.TrimSpace(s[len(p):])
			break
		}
	}
	fields := strings.Fields(s)
	if len(fields) != 2 {
		return Fingerprint{}, wrapErr([]error{ErrInvalidFingerprint},
			fmt.Sprintf("want \"<hash> <hex>\", got %q", orig), nil)
	}
	name, h, ok := lookupHash(fields[0])
	if !ok {
		return Fingerprint{}, wrapErr([]error{ErrInvalidFingerprint, ErrUnknownHash},
			fmt.Sprintf("%q", fields[0]), nil)
	}
	hex := fields[1]
	// "AB:CD:EF" has 3n-1 characters for n bytes.
	if (len(hex)+1)%3 != 0 {
		return Fingerprint{}, wrapErr([]error{ErrInvalidFingerprint},
			fmt.Sprintf("malformed value %q", hex), nil)
	}
	n := (len(hex) + 1) / 3
	if n != h.Size() {
		return Fingerprint{}, wrapErr([]error{ErrInvalidFingerprint},
			fmt.Sprintf("%s value has %d bytes, want %d", name, n, h.Size()), nil)
	}
	v := make([]byte, n)
	for i := range n {
		hi, ok1 := unhex(hex[3*i])
		lo, ok2 := unhex(hex[3*i+1])
		if !ok1 || !ok2 || (i < n-1 && hex[3*i+2] != ':') {
			return Fingerprint{}, wrapErr([]error{ErrInvalidFingerprint},
				fmt.Sprintf("malformed value %q", hex), nil)
		}
		v[i] = hi<<4 | lo
	}
	return Fingerprint{Hash: name, Value: v}, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// String formats the fingerprint as SDP carries it: the hash name, a space
// and the value in upper-case hex pairs separated by colons, e.g.
// "sha-256 AB:CD:...". The zero Fingerprint formats as "".
func (f Fingerprint) String() string {
	if f.Hash == "" && len(f.Value) == 0 {
		return ""
	}
	const digits = "0123456789ABCDEF"
	b := make([]byte, 0, len(f.Hash)+1+3*len(f.Value))
	b = append(b, strings.ToLower(f.Hash)...)
	b = append(b, ' ')
	for i, c := range f.Value {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, digits[c>>4], digits[c&0x0f])
	}
	return string(b)
}

// Attribute formats the fingerprint as a complete SDP attribute line without
// line ending: "a=fingerprint:sha-256 AB:CD:...".
func (f Fingerprint) Attribute() string {
	return "a=fingerprint:" + f.String()
}

// valid reports whether the hash is supported and the value has its size.
func (f Fingerprint) valid() bool {
	_, h, ok := lookupHash(f.Hash)
	return ok && len(f.Value) == h.Size()
}

// Equal reports whether f and g name the same hash function and carry the
// same whole value. Invalid fingerprints (unknown hash, wrong length) are
// never equal to anything, not even to themselves, so a zero Fingerprint can
// never satisfy a comparison by accident.
func (f Fingerprint) Equal(g Fingerprint) bool {
	if !f.valid() || !g.valid() || !strings.EqualFold(f.Hash, g.Hash) {
		return false
	}
	return subtle.ConstantTimeCompare(f.Value, g.Value) == 1
}

// Matches reports whether certDER, a DER-encoded certificate, hashes with
// f.Hash to exactly f.Value. The comparison is over the whole value and in
// constant time. An invalid f or an empty certDER never matches.
func (f Fingerprint) Matches(certDER []byte) bool {
	if !f.valid() || len(certDER) == 0 {
		return false
	}
	g, err := FingerprintOf(certDER, f.Hash)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(f.Value, g.Value) == 1
}

// FingerprintOf hashes a DER-encoded certificate with the named hash
// function (case-insensitive; see the SHA* constants). The result carries
// the canonical lower-case hash name. An unknown hash gives ErrUnknownHash,
// an empty certDER ErrNoCertificate.
func FingerprintOf(certDER []byte, hash string) (Fingerprint, error) {
	name, h, ok := lookupHash(hash)
	if !ok {
		return Fingerprint{}, wrapErr([]error{ErrUnknownHash}, fmt.Sprintf("%q", hash), nil)
	}
	if len(certDER) == 0 {
		return Fingerprint{}, ErrNoCertificate
	}
	d := h.New()
	d.Write(certDER)
	return Fingerprint{Hash: name, Value: d.Sum(nil)}, nil
}

// CertificateFingerprint returns the fingerprint of c's leaf certificate
// (c.Certificate[0]) with the named hash function. A certificate without
// DER data gives ErrNoCertificate.
func CertificateFingerprint(c tls.Certificate, hash string) (Fingerprint, error) {
	if len(c.Certificate) == 0 {
		if _, _, ok := lookupHash(hash); !ok {
			return Fingerprint{}, wrapErr([]error{ErrUnknownHash}, fmt.Sprintf("%q", hash), nil)
		}
		return Fingerprint{}, ErrNoCertificate
	}
	return FingerprintOf(c.Certificate[0], hash)
}
