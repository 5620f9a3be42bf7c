package dtlssrtp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/dtls/v2/pkg/protocol/alert"
	"github.com/reflow-go/reflow/srtp"
)

// DefaultHandshakeTimeout bounds a handshake when Config.HandshakeTimeout is
// zero. dtls/v2 retransmits a lost flight every second, so this allows for
// several losses; a peer that never answers fails after this long.
const DefaultHandshakeTimeout = 10 * time.Second

// exporterLabel is the RFC 5764 §4.2 keying material exporter label.
const exporterLabel = "EXTRACTOR-dtls_srtp"

// DefaultSuites are the SRTP protection profiles offered when Config.Suites
// is nil, in preference order.
var DefaultSuites = []srtp.Suite{srtp.AEADAES128GCM, srtp.AESCM128HMACSHA1_80}

// knownSuites are the profiles this package can key.
var knownSuites = []srtp.Suite{
	srtp.AESCM128HMACSHA1_80, srtp.AESCM128HMACSHA1_32, srtp.AEADAES128GCM, srtp.AEADAES256GCM,
}

// Role is the DTLS role of this endpoint: the side that took a=setup:active
// is the Client, the passive side the Server (see IsClient and RoleFor).
type Role int

// The DTLS roles.
const (
	// Client sends the ClientHello (a=setup:active).
	Client Role = iota + 1
	// Server waits for the ClientHello (a=setup:passive).
	Server
)

// String returns "client" or "server".
func (r Role) String() string {
	switch r {
	case Client:
		return "client"
	case Server:
		return "server"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Config configures Handshake. The zero value of each field but Certificate
// has a documented default.
type Config struct {
	// Certificate is our certificate and private key, for example from
	// GenerateCertificate. Its fingerprint goes into our SDP. Required.
	Certificate tls.Certificate
	// Suites are the SRTP protection profiles we accept, in preference order.
	// nil means DefaultSuites ({AEADAES128GCM, AESCM128HMACSHA1_80}). With
	// dtls/v2 the client's order decides: the server picks the first profile
	// of the client's list that it also has.
	Suites []srtp.Suite
	// HandshakeTimeout bounds the handshake in addition to the context given
	// to Handshake. 0 means DefaultHandshakeTimeout (10 s); negative values
	// are invalid.
	HandshakeTimeout time.Duration
	// Logger receives this package's and pion's log output; pion's Trace level
	// maps to LevelTrace. nil discards everything.
	Logger *slog.Logger
}

// suites returns the effective suite list.
func (c *Config) suites() []srtp.Suite {
	if c.Suites == nil {
		return DefaultSuites
	}
	return c.Suites
}

func (c *Config) validate() error {
	if len(c.Certificate.Certificate) == 0 || len(c.Certificate.Certificate[0]) == 0 || c.Certificate.PrivateKey == nil {
		return wrapErr([]error{ErrNoCertificate}, "Config.Certificate needs a certificate and its private key", nil)
	}
	if c.HandshakeTimeout < 0 {
		return wrapErr([]error{ErrInvalidConfig}, fmt.Sprintf("negative HandshakeTimeout %v", c.HandshakeTimeout), nil)
	}
	if c.Suites != nil && len(c.Suites) == 0 {
		return wrapErr([]error{ErrInvalidConfig}, "empty Suites", nil)
	}
	for _, s := range c.Suites {
		if !slices.Contains(knownSuites, s) {
			return wrapErr([]error{ErrInvalidConfig}, fmt.Sprintf("unsupported SRTP suite %v", s), nil)
		}
	}
	return nil
}

// Handshake runs a DTLS 1.2 handshake with use_srtp (RFC 5764) over conn in
// the given role and returns the established association. It blocks until
// the handshake is done, ctx ends, or cfg.HandshakeTimeout (default 10 s)
// passes.
//
// conn must carry DTLS records only, one datagram per Read and Write, to
// and from the peer (for a reflow flow: the DTLS endpoint of its demux, RFC
// 7983 first bytes 20..63). Handshake takes ownership of conn: it is closed
// when Handshake fails, for whatever reason, and by Session.Close (pion's
// dtls.Conn closes the conn under it).
//
// v pins the peer's certificate; it may be nil, which accepts any
// certificate (Session.Verifier then returns a fresh Verifier that a
// fingerprint can still be set on). Both roles request and check the peer's
// certificate: the server requires a client certificate, the client skips
// chain verification (the certificates are self-signed) and relies on v.
// The extended master secret (RFC 7627) is required.
//
// Every error after validation matches ErrHandshakeFailed and, where the
// cause is known, one of ErrFingerprintMismatch (our check of the peer
// failed), ErrFatalAlert (the peer rejected us, e.g. bad_certificate),
// ErrNoCommonSuite, ErrPeerClosed (close_notify before we were done),
// ErrHandshakeTimeout (also when ctx's deadline ended it;
// the error then matches context.DeadlineExceeded too), context.Canceled,
// or net.ErrClosed (conn was closed). Invalid arguments give
// ErrInvalidConfig or ErrNoCertificate.
func Handshake(ctx context.Context, conn net.Conn, role Role, cfg Config, v *Verifier) (*Session, error) {
	if conn == nil {
		return nil, wrapErr([]error{ErrInvalidConfig}, "nil conn", nil)
	}
	if role != Client && role != Server {
		conn.Close()
		return nil, wrapErr([]error{ErrInvalidConfig}, fmt.Sprintf("invalid %v", role), nil)
	}
	if err := cfg.validate(); err != nil {
		conn.Close()
		return nil, err
	}
	if v == nil {
		v = &Verifier{}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With(slog.String("role", role.String()))
	timeout := cfg.HandshakeTimeout
	if timeout == 0 {
		timeout = DefaultHandshakeTimeout
	}
	suites := cfg.suites()
	profiles := make([]dtls.SRTPProtectionProfile, len(suites))
	for i, s := range suites {
		profiles[i] = dtls.SRTPProtectionProfile(s)
	}

	var (
		pinMu  sync.Mutex
		pinErr error
	)
	dcfg := &dtls.Config{
		Certificates:           []tls.Certificate{cfg.Certificate},
		SRTPProtectionProfiles: profiles,
		ExtendedMasterSecret:   dtls.RequireExtendedMasterSecret,
		LoggerFactory:          newLoggerFactory(cfg.Logger),
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			var err error
			if len(raw) == 0 {
				err = ErrNoCertificate
			} else {
				err = v.VerifyPeer(raw[0])
			}
			if err != nil {
				pinMu.Lock()
				pinErr = err
				pinMu.Unlock()
			}
			return err
		},
	}
	if role == Client {
		// Self-signed certificates: no chain verification; the fingerprint
		// check in VerifyPeerCertificate is the authentication.
		dcfg.InsecureSkipVerify = true
	} else {
		// Without this the server never asks for the client's certificate and
		// VerifyPeerCertificate never runs.
		dcfg.ClientAuth = dtls.RequireAnyClientCert
	}

	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wire := newWireConn(conn, role == Client)
	start := time.Now()
	dc, err := func() (dc *dtls.Conn, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic in dtls handshake: %v", r)
			}
		}()
		if role == Client {
			return dtls.ClientWithContext(hctx, wire, dcfg)
		}
		return dtls.ServerWithContext(hctx, wire, dcfg)
	}()
	if err != nil {
		wire.Close() // pion closes it in most cases; make it all
		pinMu.Lock()
		perr := pinErr
		pinMu.Unlock()
		herr := classifyHandshakeError(err, ctx, hctx, wire, perr, role, profiles)
		logger.Debug("dtls handshake failed", slog.Any("error", herr), slog.Duration("after", time.Since(start)))
		return nil, herr
	}

	fail := func(kinds []error, detail string, cause error) (*Session, error) {
		wire.expectLocalClose()
		_ = dc.Close()
		return nil, wrapErr(append([]error{ErrHandshakeFailed}, kinds...), detail, cause)
	}
	prof, ok := dc.SelectedSRTPProtectionProfile()
	suite := srtp.Suite(prof)
	if !ok {
		return fail([]error{ErrNoCommonSuite}, "the peer did not negotiate use_srtp", nil)
	}
	if !slices.Contains(suites, suite) {
		return fail([]error{ErrNoCommonSuite}, fmt.Sprintf("negotiated profile %v was not offered", suite), nil)
	}
	if v.PeerCertificate() == nil {
		return fail([]error{ErrNoCertificate}, "peer sent no certificate", nil)
	}
	kl, sl := suite.KeyLen(), suite.SaltLen()
	st := dc.ConnectionState()
	km, err := st.ExportKeyingMaterial(exporterLabel, nil, 2*(kl+sl))
	if err != nil {
		return fail(nil, "export keying material", err)
	}
	// RFC 5764 §4.2: client key, server key, client salt, server salt.
	clientKeys := srtp.Keys{Suite: suite, Key: km[0:kl:kl], Salt: km[2*kl : 2*kl+sl : 2*kl+sl]}
	serverKeys := srtp.Keys{Suite: suite, Key: km[kl : 2*kl : 2*kl], Salt: km[2*kl+sl : 2*kl+2*sl : 2*kl+2*sl]}
	wire.markEstablished()

	s := &Session{
		conn:    dc,
		wire:    wire,
		role:    role,
		suite:   suite,
		v:       v,
		log:     logger,
		done:    make(chan struct{}),
		started: start,
	}
	if role == Client {
		s.local, s.remote = clientKeys, serverKeys
	} else {
		s.local, s.remote = serverKeys, clientKeys
	}
	if err := v.bind(s.fail); err != nil {
		// A fingerprint set between the certificate check and now mismatched.
		wire.expectLocalClose()
		_ = dc.Close()
		return nil, &kindError{
			msg:  "dtlssrtp: handshake failed: " + short(err),
			errs: []error{ErrHandshakeFailed, err},
		}
	}
	s.wg.Add(1)
	go s.watch()
	logger.Debug("dtls handshake done", slog.String("suite", suite.String()),
		slog.Bool("verified", v.Verified()), slog.Duration("took", time.Since(start)))
	return s, nil
}

// alertCarrier matches pion's unexported alert error, which embeds
// *alert.Alert (Marshal gives level and description).
type alertCarrier interface {
	error
	IsFatalOrCloseNotify() bool
	Marshal() ([]byte, error)
}

// receivedAlert extracts the alert the peer sent, from pion's error (inErr)
// or else from what the wire saw.
func receivedAlert(err error, wire *wireConn) (a *alert.Alert, inErr bool) {
	var ac alertCarrier
	if errors.As(err, &ac) {
		if b, e := ac.Marshal(); e == nil && len(b) == 2 {
			return &alert.Alert{Level: alert.Level(b[0]), Description: alert.Description(b[1])}, true
		}
	}
	_, recv := wire.alerts()
	return recv, false
}

// classifyHandshakeError maps a failed pion handshake to our sentinels.
func classifyHandshakeError(err error, parent, hctx context.Context, wire *wireConn, pinErr error,
	role Role, ours []dtls.SRTPProtectionProfile,
) error {
	kinds := []error{ErrHandshakeFailed}
	detail := ""
	recv, inErr := receivedAlert(err, wire)
	switch {
	case pinErr != nil:
		// Our own check rejected the peer: its error carries the details
		// (pion's error only repeats them, so it stays out of the text).
		return &kindError{
			msg:  "dtlssrtp: handshake failed: " + short(pinErr),
			errs: []error{ErrHandshakeFailed, pinErr, err},
		}
	case wire.noCommonSuite(ours):
		kinds = append(kinds, ErrNoCommonSuite)
		if recv != nil && recv.Level == alert.Fatal {
			kinds = append(kinds, ErrFatalAlert)
		}
	case recv != nil && recv.Level == alert.Fatal:
		if role == Client && recv.Description == alert.InsufficientSecurity {
			// The server refused our ClientHello; pion does so for no common
			// SRTP profile (and for other missing parameters, see
			// ErrNoCommonSuite).
			kinds = append(kinds, ErrNoCommonSuite)
		}
		kinds = append(kinds, ErrFatalAlert)
		if !inErr {
			detail = recv.String()
		}
	case recv != nil && recv.Description == alert.CloseNotify:
		// The peer gave up on the association while we were still in the
		// handshake (it closed right after its side completed).
		kinds = append(kinds, ErrPeerClosed)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(hctx.Err(), context.DeadlineExceeded):
		kinds = append(kinds, ErrHandshakeTimeout)
		if !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
	case errors.Is(err, context.Canceled) || parent.Err() != nil:
		if !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w: %w", context.Cause(parent), err)
		}
	case errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe):
		kinds = append(kinds, net.ErrClosed)
		detail = "conn closed"
	}
	return wrapErr(kinds, detail, err)
}
