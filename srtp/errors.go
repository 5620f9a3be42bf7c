package srtp

import "errors"

// Errors returned by this package. They are matched with errors.Is; the
// errors returned by pion/srtp are wrapped with %w beside them, so their text
// stays in the message.
var (
	// ErrUnknownSuite is returned for a crypto suite name or value that this
	// package does not support.
	ErrUnknownSuite = errors.New("srtp: unknown or unsupported crypto suite")
	// ErrKeyLength is returned for a master key or salt of the wrong length for
	// its suite.
	ErrKeyLength = errors.New("srtp: wrong master key or salt length")
	// ErrBadBase64 is returned for inline key material that is not base64.
	ErrBadBase64 = errors.New("srtp: key material is not valid base64")
	// ErrUnsupportedParam is returned for a valid RFC 4568 parameter that this
	// package refuses (several keys, KDR, FEC, UNENCRYPTED_*, an unknown
	// mandatory session parameter, ...) and for out-of-range settings.
	ErrUnsupportedParam = errors.New("srtp: unsupported parameter")
	// ErrMalformedCrypto is returned for an a=crypto attribute that does not
	// follow the RFC 4568 grammar.
	ErrMalformedCrypto = errors.New("srtp: malformed crypto attribute")
	// ErrAuthFailed is returned when a packet fails SRTP/SRTCP authentication
	// (wrong key, tampered packet, unknown MKI).
	ErrAuthFailed = errors.New("srtp: authentication failed")
	// ErrReplay is returned for a packet that was already received or is older
	// than the replay window.
	ErrReplay = errors.New("srtp: replayed packet")
	// ErrMalformedPacket is returned for input that is not an RTP or RTCP
	// packet that can be protected or unprotected (too short, bad header).
	ErrMalformedPacket = errors.New("srtp: malformed packet")
	// ErrKeyExpired is returned by an Encrypter once it has protected
	// Keys.Lifetime SRTP (or SRTCP) packets with its master key.
	ErrKeyExpired = errors.New("srtp: master key lifetime reached")
	// ErrUninitialized is returned by a nil or zero Encrypter or Decrypter;
	// create them with NewEncrypter and NewDecrypter.
	ErrUninitialized = errors.New("srtp: Encrypter/Decrypter not created with NewEncrypter/NewDecrypter")
)
