package sipp2p

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
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
)

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
		s += ": " + e.Err.Error()
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
