package flowmanager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/reflow-go/reflow/mediastream"
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
}

// Manager creates media streams and owns them (reflow's FlowManager). An
// application normally makes one. All methods are safe for concurrent use.
type Manager struct {
	cfg Config

	mu      sync.Mutex
	streams map[*mediastream.Stream]struct{}
	closed  bool
}

// New validates cfg and returns a Manager.
func New(cfg Config) (*Manager, error) {
	if (cfg.PortMin == 0) != (cfg.PortMax == 0) || cfg.PortMax < cfg.PortMin {
		return nil, fmt.Errorf("%w: port range %d-%d", ErrInvalidConfig, cfg.PortMin, cfg.PortMax)
	}
	if cfg.PortMin != 0 && cfg.PortMax-cfg.PortMin < 1 {
		return nil, fmt.Errorf("%w: port range %d-%d holds no RTP/RTCP pair", ErrInvalidConfig, cfg.PortMin, cfg.PortMax)
	}
	return &Manager{cfg: cfg, streams: make(map[*mediastream.Stream]struct{})}, nil
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
	m.mu.Unlock()
	return s, nil
}

func (m *Manager) forget(s *mediastream.Stream) {
	m.mu.Lock()
	delete(m.streams, s)
	m.mu.Unlock()
}

// Streams returns the number of open streams.
func (m *Manager) Streams() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.streams)
}

// Close closes every stream and refuses new ones. It is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	list := make([]*mediastream.Stream, 0, len(m.streams))
	for s := range m.streams {
		list = append(list, s)
	}
	m.mu.Unlock()
	var errs []error
	for _, s := range list {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
