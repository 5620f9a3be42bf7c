package srtp

import (
	"encoding/base64"
	"fmt"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// MaxTag is the largest a=crypto tag (RFC 4568 §9.1: at most nine digits).
const MaxTag = 999999999

// maxWSH bounds the WSH (window size hint) value we keep, so that it fits an
// int everywhere and stays a sane replay window.
const maxWSH = 1 << 15

// Crypto is one RFC 4568 a=crypto attribute with a single inline key:
//
//	a=crypto:<tag> <suite> inline:<base64(key||salt)>[|<lifetime>][|<MKI>:<length>] [<session-param> ...]
//
// Session parameters. This package never weakens protection silently, so
// UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP and UNAUTHENTICATED_SRTP are refused
// with ErrUnsupportedParam (pick another offered line instead). KDR is
// refused because pion/srtp derives session keys only once, FEC_ORDER and
// FEC_KEY because there is no FEC. WSH=<n> (n >= 64) is kept: it is a hint,
// see WindowSizeHint. Unknown parameters prefixed with "-" are optional
// (RFC 4568 §6.3) and kept unchanged; other unknown ones are refused. Kept
// parameters are in SessionParams, verbatim and in order.
type Crypto struct {
	// Tag is the attribute's tag, 1..MaxTag; the answer repeats the tag of the
	// offer it accepts.
	Tag int
	// Keys is the suite and key material; ParseCrypto also copies the MKI
	// and lifetime into it so that NewEncrypter(c.Keys) honours them.
	Keys Keys
	// Lifetime is the lifetime parameter in packets, 0 when absent. Value
	// writes it, or Keys.Lifetime when it is 0. Powers of two are written as
	// 2^n.
	Lifetime uint64
	// MKILen is the MKI length parameter in bytes, 0 when there is no MKI.
	// ParseCrypto sets it to len(Keys.MKI); Value always writes Keys.MKI
	// with its own length, and Validate checks that the two agree.
	MKILen int
	// SessionParams are the kept session parameters (see the type comment).
	SessionParams []string
}

// ParseCrypto parses an a=crypto attribute. The "a=crypto:" or "crypto:"
// prefix is optional, surrounding white space and a trailing CRLF are
// ignored, and the base64 key may be written with or without padding.
// Errors match ErrMalformedCrypto (grammar), ErrUnknownSuite, ErrBadBase64,
// ErrKeyLength (key||salt of the wrong length for the suite) or
// ErrUnsupportedParam (several keys, a key method other than inline, an
// out-of-range lifetime or a refused session parameter).
func ParseCrypto(s string) (Crypto, error) {
	s = strings.Trim(s, " \t\r\n")
	if len(s) >= 2 && strings.EqualFold(s[:2], "a=") {
		s = s[2:]
	}
	if len(s) >= 7 && strings.EqualFold(s[:7], "crypto:") {
		s = s[7:]
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && c != '\t' && (c < 0x21 || c > 0x7e) {
			return Crypto{}, fmt.Errorf("%w: byte %#02x at offset %d", ErrMalformedCrypto, c, i)
		}
	}
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(f) < 3 {
		return Crypto{}, fmt.Errorf("%w: want \"<tag> <suite> <key-params>\", got %q", ErrMalformedCrypto, s)
	}

	var c Crypto
	tag, err := parseDigits(f[0], 9)
	if err != nil || tag < 1 || tag > MaxTag {
		return Crypto{}, fmt.Errorf("%w: tag %q is not a number in 1..%d", ErrMalformedCrypto, f[0], MaxTag)
	}
	c.Tag = int(tag)

	if c.Keys.Suite, err = ParseSuite(f[1]); err != nil {
		return Crypto{}, err
	}
	if err := c.parseKeyParams(f[2]); err != nil {
		return Crypto{}, err
	}
	for _, p := range f[3:] {
		if err := checkSessionParam(p); err != nil {
			return Crypto{}, err
		}
		c.SessionParams = append(c.SessionParams, p)
	}
	return c, nil
}

// parseKeyParams parses "inline:<key||salt>[|lifetime][|mki:len]" into c.
func (c *Crypto) parseKeyParams(kp string) error {
	if strings.Contains(kp, ";") {
		return fmt.Errorf("%w: more than one key in one crypto attribute", ErrUnsupportedParam)
	}
	method, info, ok := strings.Cut(kp, ":")
	if !ok {
		return fmt.Errorf("%w: key parameter %q has no method", ErrMalformedCrypto, kp)
	}
	if !strings.EqualFold(method, "inline") {
		return fmt.Errorf("%w: key method %q (only inline is supported)", ErrUnsupportedParam, method)
	}
	parts := strings.Split(info, "|")
	if len(parts) > 3 {
		return fmt.Errorf("%w: too many '|' fields in %q", ErrMalformedCrypto, kp)
	}

	suite := c.Keys.Suite
	km, err := decodeBase64(parts[0])
	if err != nil {
		return err
	}
	if len(km) != suite.KeyLen()+suite.SaltLen() {
		return fmt.Errorf("%w: %v needs %d+%d bytes of key||salt, got %d",
			ErrKeyLength, suite, suite.KeyLen(), suite.SaltLen(), len(km))
	}
	c.Keys.Key = km[:suite.KeyLen():suite.KeyLen()]
	c.Keys.Salt = km[suite.KeyLen():]

	for i, p := range parts[1:] {
		if strings.Contains(p, ":") {
			if i != len(parts)-2 {
				return fmt.Errorf("%w: MKI %q must be the last key field", ErrMalformedCrypto, p)
			}
			mki, err := parseMKI(p)
			if err != nil {
				return err
			}
			c.Keys.MKI, c.MKILen = mki, len(mki)
			continue
		}
		if i != 0 {
			return fmt.Errorf("%w: %q: lifetime must come first and only once", ErrMalformedCrypto, p)
		}
		lt, err := parseLifetime(p)
		if err != nil {
			return err
		}
		c.Lifetime, c.Keys.Lifetime = lt, lt
	}
	return nil
}

// decodeBase64 decodes standard base64 with or without '=' padding.
func decodeBase64(s string) ([]byte, error) {
	enc := base64.StdEncoding
	if len(s)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBase64, err)
	}
	return b, nil
}

// parseDigits parses 1..maxDigits decimal digits (no sign) into a uint64.
func parseDigits(s string, maxDigits int) (uint64, error) {
	if len(s) == 0 || len(s) > maxDigits {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// parseLifetime parses "<decimal>" or "2^<n>" and checks 1 <= lifetime <= 2^48.
func parseLifetime(s string) (uint64, error) {
	var lt uint64
	if e, ok := strings.CutPrefix(s, "2^"); ok {
		n, err := parseDigits(e, 2)
		if err != nil {
			return 0, fmt.Errorf("%w: lifetime %q", ErrMalformedCrypto, s)
		}
		if n > 48 {
			return 0, fmt.Errorf("%w: lifetime %s above the 2^48 packets SRTP allows", ErrUnsupportedParam, s)
		}
		lt = 1 << n
	} else {
		if s == "" || strings.Trim(s, "0123456789") != "" {
			return 0, fmt.Errorf("%w: lifetime %q", ErrMalformedCrypto, s)
		}
		v := strings.TrimLeft(s, "0")
		if len(v) > 15 { // 2^48 has 15 digits
			return 0, fmt.Errorf("%w: lifetime %s above the 2^48 packets SRTP allows", ErrUnsupportedParam, s)
		}
		lt, _ = strconv.ParseUint("0"+v, 10, 64)
	}
	switch {
	case lt == 0:
		return 0, fmt.Errorf("%w: lifetime 0", ErrMalformedCrypto)
	case lt > MaxLifetime:
		return 0, fmt.Errorf("%w: lifetime %s above the 2^48 packets SRTP allows", ErrUnsupportedParam, s)
	}
	return lt, nil
}

// parseMKI parses "<value>:<length>" into the big-endian MKI of length bytes.
func parseMKI(s string) ([]byte, error) {
	v, l, _ := strings.Cut(s, ":")
	n, err := parseDigits(l, 3)
	if err != nil || n < 1 || n > MaxMKILen {
		return nil, fmt.Errorf("%w: MKI length %q is not in 1..%d", ErrMalformedCrypto, l, MaxMKILen)
	}
	// 128 bytes hold at most 309 decimal digits; allow leading zeros.
	if len(v) == 0 || len(v) > 400 || strings.Trim(v, "0123456789") != "" {
		return nil, fmt.Errorf("%w: MKI value %q", ErrMalformedCrypto, v)
	}
	var val big.Int
	val.SetString(v, 10)
	if val.BitLen() > int(n)*8 {
		return nil, fmt.Errorf("%w: MKI value %s does not fit in %d bytes", ErrMalformedCrypto, v, n)
	}
	return val.FillBytes(make([]byte, n)), nil
}

// checkSessionParam reports whether p is a session parameter we keep.
func checkSessionParam(p string) error {
	name, val, hasVal := strings.Cut(p, "=")
	switch {
	case strings.HasPrefix(p, "-"):
		if len(p) == 1 {
			return fmt.Errorf("%w: empty session parameter %q", ErrMalformedCrypto, p)
		}
		return nil // optional extension: kept, ignored
	case strings.EqualFold(name, "WSH") && hasVal:
		n, err := parseDigits(val, 9)
		if err != nil || n < 64 {
			return fmt.Errorf("%w: %q (WSH must be a number >= 64)", ErrMalformedCrypto, p)
		}
		if n > maxWSH {
			return fmt.Errorf("%w: %q (WSH above %d)", ErrUnsupportedParam, p, maxWSH)
		}
		return nil
	case strings.EqualFold(name, "KDR"):
		return fmt.Errorf("%w: %q (pion/srtp derives session keys only once)", ErrUnsupportedParam, p)
	case strings.EqualFold(p, "UNENCRYPTED_SRTP"), strings.EqualFold(p, "UNENCRYPTED_SRTCP"),
		strings.EqualFold(p, "UNAUTHENTICATED_SRTP"):
		return fmt.Errorf("%w: %q (media is always encrypted and authenticated)", ErrUnsupportedParam, p)
	case strings.EqualFold(name, "FEC_ORDER"), strings.EqualFold(name, "FEC_KEY"):
		return fmt.Errorf("%w: %q (no FEC support)", ErrUnsupportedParam, p)
	default:
		return fmt.Errorf("%w: unknown mandatory session parameter %q", ErrUnsupportedParam, p)
	}
}

// Validate reports whether c formats to an attribute that ParseCrypto
// accepts with the same meaning: tag in 1..MaxTag, valid Keys, MKILen equal
// to len(Keys.MKI), a lifetime of at most MaxLifetime and session parameters
// ParseCrypto keeps.
func (c Crypto) Validate() error {
	if c.Tag < 1 || c.Tag > MaxTag {
		return fmt.Errorf("%w: tag %d is not in 1..%d", ErrMalformedCrypto, c.Tag, MaxTag)
	}
	if err := c.Keys.Validate(); err != nil {
		return err
	}
	if c.MKILen != len(c.Keys.MKI) {
		return fmt.Errorf("%w: MKILen %d but the MKI has %d bytes", ErrMalformedCrypto, c.MKILen, len(c.Keys.MKI))
	}
	if c.Lifetime > MaxLifetime {
		return fmt.Errorf("%w: lifetime %d above the 2^48 packets SRTP allows", ErrUnsupportedParam, c.Lifetime)
	}
	if c.Lifetime != 0 && c.Keys.Lifetime != 0 && c.Lifetime != c.Keys.Lifetime {
		return fmt.Errorf("%w: Lifetime %d and Keys.Lifetime %d differ", ErrMalformedCrypto, c.Lifetime, c.Keys.Lifetime)
	}
	for _, p := range c.SessionParams {
		for i := 0; i < len(p); i++ {
			if p[i] < 0x21 || p[i] > 0x7e {
				return fmt.Errorf("%w: session parameter %q has a byte that is not visible ASCII", ErrMalformedCrypto, p)
			}
		}
		if err := checkSessionParam(p); err != nil {
			return err
		}
	}
	return nil
}

// WindowSizeHint returns the value of the WSH session parameter (the
// sender's suggested replay window, RFC 4568 §6.3.6), or 0 when absent. It
// can be passed to NewDecrypter.
func (c Crypto) WindowSizeHint() int {
	for _, p := range c.SessionParams {
		if name, val, ok := strings.Cut(p, "="); ok && strings.EqualFold(name, "WSH") {
			if n, err := parseDigits(val, 9); err == nil && n <= maxWSH {
				return int(n)
			}
		}
	}
	return 0
}

// Value returns the attribute value without the "a=crypto:" prefix, e.g.
// "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32".
// The key is written in padded base64. The result of an invalid Crypto (see
// Validate) need not parse.
func (c Crypto) Value() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(c.Tag))
	b.WriteByte(' ')
	b.WriteString(c.Keys.Suite.String())
	b.WriteString(" inline:")
	km := make([]byte, 0, len(c.Keys.Key)+len(c.Keys.Salt))
	km = append(append(km, c.Keys.Key...), c.Keys.Salt...)
	b.WriteString(base64.StdEncoding.EncodeToString(km))
	lt := c.Lifetime
	if lt == 0 {
		lt = c.Keys.Lifetime
	}
	if lt != 0 {
		b.WriteByte('|')
		if lt&(lt-1) == 0 && lt > 1 {
			b.WriteString("2^" + strconv.Itoa(bits.TrailingZeros64(lt)))
		} else {
			b.WriteString(strconv.FormatUint(lt, 10))
		}
	}
	if len(c.Keys.MKI) > 0 {
		b.WriteByte('|')
		b.WriteString(new(big.Int).SetBytes(c.Keys.MKI).String())
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(len(c.Keys.MKI)))
	}
	for _, p := range c.SessionParams {
		b.WriteByte(' ')
		b.WriteString(p)
	}
	return b.String()
}

// String returns the whole attribute line, "a=crypto:" + Value().
func (c Crypto) String() string { return "a=crypto:" + c.Value() }
