package flowmanager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/srtp"
)

// Errors returned by the manager, matched with errors.Is.
var (
	// ErrClosed is returned by a closed manager; it matches net.ErrClosed too.
	ErrClosed = fmt.Errorf("flowmanager: closed: %w", net.ErrClosed)
	// ErrInvalidConfig is returned by New for a configuration it cannot use.
	ErrInvalidConfig = errors.New("flowmanager: invalid configuration")
)

// Config configures a Manager. The zero value is valid.
type Config struct {
	// PortMin and PortMax restrict the ports of every stream's RTP/RTCP pairs
	// (inclusive). Both zero means any free pair.
	PortMin, PortMax uint16
	// Logger receives the library's log records, pion's included. Nil discards them.
	Logger *slog.Logger
	// Listen opens the UDP sockets of streams; nil means net.ListenUDP. It lets
	// tests and embedders run streams on another network (such as pion vnet).
	Listen mediastream.ListenFunc
	// AOR names the owner of the DTLS certificate generated on first use (its
	// subject common name), like reflow's initializeDtlsFactory(aor).
	AOR string
	// Certificate is the DTLS certificate to use; nil generates an ECDSA P-256
	// self-signed one on first use.
	Certificate *tls.Certificate
	// DTLSSuites are the SRTP profiles offered in DTLS-SRTP handshakes, in
	// preference order; nil means dtlssrtp.DefaultSuites (AEAD_AES_128_GCM,
	// AES_CM_128_HMAC_SHA1_80).
	DTLSSuites []srtp.Suite
	// HandshakeTimeout bounds each DTLS handshake; zero means
	// dtlssrtp.DefaultHandshakeTimeout (10 s).
	HandshakeTimeout time.Duration
	// DTLSLinger is how long a keyed DTLS-SRTP association keeps its DTLS
	// state before it is dropped to save memory and goroutines (the SRTP keys
	// stay); zero means flow.DefaultDTLSLinger (30 s), negative keeps it, so
	// that a peer's close_notify or fatal alert is still reported. Only
	// DTLSLingering associations at a time linger; the others drop their
	// DTLS state as soon as they are keyed.
	DTLSLinger time.Duration
	// DTLSHandshakes bounds the DTLS handshakes in the client role that run
	// at once across the manager's streams (the others wait for a slot; the
	// server role is not bounded, see flow.DTLSBudget); zero means
	// flow.DefaultDTLSHandshakes (32), negative means no bound.
	DTLSHandshakes int
	// DTLSLingering bounds how many keyed DTLS-SRTP associations keep their
	// DTLS state for DTLSLinger (a peer's close_notify or fatal alert is
	// reported only while it is kept); the others release it once keyed and
	// only answer a retransmission of the peer's final flight, which keeps
	// an idle keyed stream small (pion's state is some 150 KiB). Zero means
	// flow.DefaultDTLSLingering (32), negative means no bound (every
	// association lingers, as with a negative DTLSLinger for all).
	DTLSLingering int
}

// Manager creates media streams and owns them (reflow's FlowManager). An
// application normally makes one. All methods are safe for concurrent use.
type Manager struct {
	cfg Config

	mu      sync.Mutex
	streams map[*mediastream.Stream]struct{}
	closed  bool
	cert    *tls.Certificate
	budget  *flow.DTLSBudget
	all     []*mediastream.Stream // every stream ever made that Done still waits for
	done    chan struct{}
}

// Certificate returns the manager's DTLS certificate, generating it on first use.
func (m *Manager) Certificate() (tls.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cert == nil {
		c, err := dtlssrtp.GenerateCertificate(m.cfg.AOR)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("flowmanager: DTLS certificate: %w", err)
		}
		m.cert = &c
	}
	return *m.cert, nil
}

// Fingerprint returns the sha-256 fingerprint of the manager's DTLS
// certificate, as it goes into SDP (a=fingerprint:sha-256 AB:CD:...).
func (m *Manager) Fingerprint() (dtlssrtp.Fingerprint, error) {
	c, err := m.Certificate()
	if err != nil {
		return dtlssrtp.Fingerprint{}, err
	}
	return dtlssrtp.CertificateFingerprint(c, dtlssrtp.SHA256)
}

func (m *Manager) dtlsConfig() (dtlssrtp.Config, error) {
	c, err := m.Certificate()
	if err != nil {
		return dtlssrtp.Config{}, err
	}
	return dtlssrtp.Config{Certificate: c, Suites: m.cfg.DTLSSuites, HandshakeTimeout: m.cfg.HandshakeTimeout, Logger: m.cfg.Logger}, nil
}

// New validates cfg and returns a Manager.
func New(cfg Config) (*Manager, error) {
	if (cfg.PortMin == 0) != (cfg.PortMax == 0) || cfg.PortMax < cfg.PortMin {
		return nil, fmt.Errorf("%w: port range %d-%d", ErrInvalidConfig, cfg.PortMin, cfg.PortMax)
	}
	if cfg.PortMin != 0 && cfg.PortMax-cfg.PortMin < 1 {
		return nil, fmt.Errorf("%w: port range %d-%d holds no RTP/RTCP pair", ErrInvalidConfig, cfg.PortMin, cfg.PortMax)
	}
	m := &Manager{cfg: cfg, streams: make(map[*mediastream.Stream]struct{}), cert: cfg.Certificate, done: make(chan struct{}),
		budget: flow.NewDTLSBudget(cfg.DTLSHandshakes, cfg.DTLSLingering)}
	if cfg.Certificate != nil && len(cfg.Certificate.Certificate) == 0 {
		return nil, fmt.Errorf("%w: empty DTLS certificate", ErrInvalidConfig)
	}
	return m, nil
}

// NewStream binds a stream's sockets and starts the NAT setup of its flows
// (reflow's createMediaStream). A bind failure is returned at once; readiness
// and later failures reach h. ctx bounds the NAT setup.
func (m *Manager) NewStream(ctx context.Context, cfg mediastream.Config, h mediastream.Handler) (*mediastream.Stream, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	m.mu.Unlock()
	env := mediastream.Env{
		PortMin: m.cfg.PortMin, PortMax: m.cfg.PortMax,
		Logger: m.cfg.Logger, Listen: m.cfg.Listen,
		OnClose: m.forget,
		DTLS:    m.dtlsConfig,

		DTLSLinger: m.cfg.DTLSLinger,
		DTLSBudget: m.budget,
	}
	s, err := mediastream.New(ctx, cfg, h, env)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		s.Close()
		return nil, ErrClosed
	}
	m.streams[s] = struct{}{}
	m.all = append(m.all, s)
	m.mu.Unlock()
	return s, nil
}

func (m *Manager) forget(s *mediastream.Stream) {
	m.mu.Lock()
	delete(m.streams, s)
	// Streams whose handlers have returned need no waiting for in Done.
	live := m.all[:0]
	for _, x := range m.all {
		select {
		case <-x.Done():
		default:
			if x != s {
				live = append(live, x)
			}
		}
	}
	clear(m.all[len(live):])
	m.all = live
	if x := s; x != nil {
		m.all = append(m.all, x) // its Done follows its Close shortly
	}
	m.mu.Unlock()
}

// Done is closed once the manager is closed and every stream's Done is
// closed (the last handler call of every stream has returned). A handler must
// not wait for it.
func (m *Manager) Done() <-chan struct{} { return m.done }

// Streams returns the number of open streams.
func (m *Manager) Streams() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.streams)
}

// Close closes every stream and refuses new ones. It is idempotent and safe
// from any goroutine, a stream's Handler included: like Stream.Close it
// returns once the streams' resources are released, without waiting for
// handler calls in progress (Done does).
func (m *Manager) Close() error {
	m.mu.Lock()
	first := !m.closed
	m.closed = true
	list := make([]*mediastream.Stream, 0, len(m.streams))
	for s := range m.streams {
		list = append(list, s)
	}
	m.mu.Unlock()
	if first {
		defer func() {
			m.mu.Lock()
			wait := append([]*mediastream.Stream(nil), m.all...)
			m.mu.Unlock()
			go func() {
				for _, s := range wait {
					<-s.Done()
				}
				close(m.done)
			}()
		}()
	}
	var errs []error
	for _, s := range list {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
