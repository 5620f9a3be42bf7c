package dtlssrtp

import (
	"errors"
	"strings"
)

// Sentinel errors of this package. Match them with [errors.Is]; the errors
// returned by the package wrap them, often together with the underlying pion
// error and with more than one sentinel (a handshake that failed because the
// peer's certificate did not match the pinned fingerprint matches both
// ErrHandshakeFailed and ErrFingerprintMismatch).
var (
	// ErrFingerprintMismatch reports that the peer's certificate does not match
	// the fingerprint taken from its SDP (a=fingerprint).
	ErrFingerprintMismatch = errors.New("dtlssrtp: fingerprint mismatch")

	// ErrHandshakeTimeout reports that the DTLS handshake did not finish within
	// Config.HandshakeTimeout or before the deadline of the context given to
	// Handshake. A peer that never answers ends this way.
	ErrHandshakeTimeout = errors.New("dtlssrtp: handshake timed out")

	// ErrHandshakeFailed is matched by every error Handshake returns once it has
	// started talking to the peer; a more specific sentinel is wrapped as well
	// where the cause is known.
	ErrHandshakeFailed = errors.New("dtlssrtp: handshake failed")

	// ErrNoCommonSuite reports that the two sides share no SRTP protection
	// profile (RFC 5764 use_srtp). The DTLS server knows this for certain from
	// the client's hello. The client only sees the server's
	// insufficient_security alert, which pion also sends for other missing
	// parameters (cipher suite, curve, extended master secret), so on the
	// client side it means "the server found our security offer unacceptable".
	ErrNoCommonSuite = errors.New("dtlssrtp: no common SRTP protection profile")

	// ErrFatalAlert reports that the peer sent a fatal DTLS alert, for example
	// bad_certificate after its own fingerprint check failed.
	ErrFatalAlert = errors.New("dtlssrtp: fatal alert from peer")

	// ErrPeerClosed reports that the peer ended the association with
	// close_notify: Session.Err of an established association (those errors
	// also match io.EOF), or a Handshake that the peer abandoned.
	ErrPeerClosed = errors.New("dtlssrtp: peer closed the association")

	// ErrInvalidFingerprint reports a malformed fingerprint: bad syntax, bad
	// hex, a value whose length does not fit the hash, or an unknown hash.
	ErrInvalidFingerprint = errors.New("dtlssrtp: invalid fingerprint")

	// ErrUnknownHash reports a hash function name other than sha-1, sha-224,
	// sha-256, sha-384 and sha-512.
	ErrUnknownHash = errors.New("dtlssrtp: unknown hash function")

	// ErrInvalidSetup reports an unknown a=setup value or a combination of
	// local and remote setup roles that does not yield a DTLS role.
	ErrInvalidSetup = errors.New("dtlssrtp: invalid setup role")

	// ErrNoCertificate reports a missing certificate: an empty tls.Certificate
	// in Config or an empty DER, or a peer that sent none.
	ErrNoCertificate = errors.New("dtlssrtp: no certificate")

	// ErrInvalidConfig reports a Config that Handshake cannot use (unknown
	// SRTP suite, negative timeout, unknown role, nil conn).
	ErrInvalidConfig = errors.New("dtlssrtp: invalid config")

	// ErrClosed is the cause reported by Session.Err after Session.Close. It
	// matches net.ErrClosed as well.
	ErrClosed = errors.New("dtlssrtp: session closed")
)

// kindError is an error with a readable message that matches several
// sentinels and a cause via errors.Is / errors.As.
type kindError struct {
	msg  string
	errs []error
}

// Error returns the message.
func (e *kindError) Error() string { return e.msg }

// Unwrap returns the sentinels and the cause, for errors.Is and errors.As.
func (e *kindError) Unwrap() []error { return e.errs }

// short strips the package prefix of a sentinel's text.
func short(err error) string {
	return strings.TrimPrefix(err.Error(), "dtlssrtp: ")
}

// wrapErr builds an error whose text is "dtlssrtp: <head>: <detail>" and
// which matches every sentinel in kinds and the cause.
func wrapErr(kinds []error, detail string, cause error) error {
	var b strings.Builder
	b.WriteString("dtlssrtp: ")
	for i, k := range kinds {
		if i > 0 {
			b.WriteString(": ")
		}
		b.WriteString(short(k))
	}
	if detail != "" {
		b.WriteString(": ")
		b.WriteString(detail)
	}
	if cause != nil {
		b.WriteString(": ")
		b.WriteString(cause.Error())
	}
	errs := append([]error(nil), kinds...)
	if cause != nil {
		errs = append(errs, cause)
	}
	return &kindError{msg: b.String(), errs: errs}
}
