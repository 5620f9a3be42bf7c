package sipp2p

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Errors returned by the endpoint, matched with errors.Is.
var (
	// ErrClosed is returned by a closed endpoint; it matches net.ErrClosed too.
	ErrClosed = fmt.Errorf("sipp2p: endpoint closed: %w", net.ErrClosed)
	// ErrInvalidConfig is returned by New, StartListening and Call for a configuration they cannot use.
	ErrInvalidConfig = errors.New("sipp2p: invalid configuration")
	// ErrInboundDisabled is returned by StartListening on an outbound-only endpoint.
	ErrInboundDisabled = errors.New("sipp2p: endpoint is outbound-only")
	// ErrOutboundDisabled is returned by Call and SendMessage on an inbound-only endpoint.
	ErrOutboundDisabled = errors.New("sipp2p: endpoint is inbound-only")
	// ErrRejected is wrapped by SendMessage when the peer answers with a non-2xx status.
	ErrRejected = errors.New("sipp2p: request rejected")
	// ErrTooManyCalls is returned by Call when Config.MaxCalls calls are up.
	ErrTooManyCalls = errors.New("sipp2p: too many calls")
	// ErrTimeout is wrapped by a *ConnectionError when the peer never answered
	// (SIP transaction timeout, RFC 3261 Timer B/F).
	ErrTimeout = errors.New("sipp2p: no response")
)

// errConnClosed is the cause of a *ConnectionError when the peer closed
// the connection a request was waiting on.
var errConnClosed = fmt.Errorf("connection closed by the peer: %w", net.ErrClosed)

// ConnectionError is a failure to reach the peer that is not a TLS failure:
// the connection was refused, could not be made, broke, or the peer never
// answered. Match it with errors.As; errors.Is(err, ErrTimeout) tells a
// silent peer.
type ConnectionError struct {
	// Remote is the address we were talking to, if known.
	Remote string
	// Err is the underlying error (a *net.OpError, syscall.Errno, ErrTimeout, ...).
	Err error
}

// Error implements error; the text names the root cause only, on one line.
func (e *ConnectionError) Error() string {
	s := "sipp2p: connection"
	if e.Remote != "" {
		s += " to " + e.Remote
	}
	return s + " failed: " + rootText(e.Err)
}

// Unwrap returns e.Err.
func (e *ConnectionError) Unwrap() error { return e.Err }

// rootText is the text of the innermost error of err's chain (the first
// branch of joined errors), on one line: library wrapping is left out.
func rootText(err error) string {
	if err == nil {
		return "unknown error"
	}
	for {
		var next error
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next = u.Unwrap()
		case interface{ Unwrap() []error }:
			if es := u.Unwrap(); len(es) > 0 {
				next = es[0]
			}
		}
		if next == nil {
			break
		}
		err = next
	}
	return oneLine(err.Error())
}

// oneLine replaces line breaks and tabs with spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// TLSFailure tells why a TLS connection failed.
type TLSFailure int

// The TLS failure reasons.
const (
	// OtherTLSFailure is any TLS failure not listed below.
	OtherTLSFailure TLSFailure = iota
	// LocalCertificateNotFound: TLS needs our certificate and none is configured.
	LocalCertificateNotFound
	// UntrustedRemoteCertificate: the peer's certificate chain is not trusted by our roots.
	UntrustedRemoteCertificate
	// CertificateExpired: the peer's certificate has expired or is not yet valid.
	CertificateExpired
	// NameMismatch: the peer's certificate is not for the host we called.
	NameMismatch
	// RemoteRejectedCertificate: the peer refused our certificate (or our lack of one).
	RemoteRejectedCertificate
)

var tlsFailureNames = [...]string{"TLS failure", "local certificate not found", "untrusted remote certificate",
	"certificate expired", "certificate name mismatch", "remote rejected our certificate"}

// String describes the reason.
func (f TLSFailure) String() string {
	if f >= 0 && int(f) < len(tlsFailureNames) {
		return tlsFailureNames[f]
	}
	return "TLSFailure(" + strconv.Itoa(int(f)) + ")"
}

// TLSError is a TLS failure with its reason. Match it with errors.As.
type TLSError struct {
	// Reason classifies the failure.
	Reason TLSFailure
	// Remote is the address we were talking to, if known.
	Remote string
	// Err is the underlying error (e.g. x509.UnknownAuthorityError), or nil.
	Err error
}

// Error implements error.
func (e *TLSError) Error() string {
	s := "sipp2p: TLS: " + e.Reason.String()
	if e.Remote != "" {
		s += " (" + e.Remote + ")"
	}
	if e.Err != nil {
		s += ": " + rootText(e.Err)
	}
	return s
}

// Unwrap returns e.Err.
func (e *TLSError) Unwrap() error { return e.Err }

// classifyTLS turns a TLS handshake error into a *TLSError, or returns nil
// when err is not a TLS failure.
func classifyTLS(err error, remote string) *TLSError {
	if err == nil {
		return nil
	}
	var te *TLSError
	if errors.As(err, &te) {
		return te
	}
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var hn x509.HostnameError
	var op *net.OpError
	switch {
	case errors.As(err, &ua):
		return &TLSError{Reason: UntrustedRemoteCertificate, Remote: remote, Err: err}
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return &TLSError{Reason: CertificateExpired, Remote: remote, Err: err}
	case errors.As(err, &hn):
		return &TLSError{Reason: NameMismatch, Remote: remote, Err: err}
	case errors.As(err, &op) && op.Op == "remote error":
		return &TLSError{Reason: RemoteRejectedCertificate, Remote: remote, Err: err}
	}
	return nil
}
