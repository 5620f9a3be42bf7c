package mediastream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/notify"
	"github.com/reflow-go/reflow/internal/pionlog"
	"github.com/reflow-go/reflow/natmode"
	"github.com/reflow-go/reflow/srtp"
)

// Config describes one media stream. Zero fields take the documented defaults.
type Config struct {
	// LocalAddr is the local IP address to bind (IPv4 or IPv6). Required.
	LocalAddr netip.Addr
	// Port is the RTP port; RTCP gets Port+1, so Port must be even when RTCP is
	// on. Zero picks a free pair (within the manager's port range, if any).
	Port uint16
	// RTCP gives RTCP its own flow on Port+1. When false RTCP is multiplexed on
	// the RTP flow (RFC 5761).
	RTCP bool
	// NAT is the traversal mode, server and credentials for both flows.
	NAT natmode.Config
	// Security is how the stream's media is protected. With SDES or DTLS the
	// stream never sends or delivers clear RTP or RTCP, from the moment it
	// exists until its keys are in place, whatever the order in which the
	// application sets destinations and keys. Zero is Plain.
	Security Security
	// Latch makes each flow adopt the first media source as its destination
	// (symmetric RTP); a learned source is replaced only under the rule of
	// flow.Config.Latch, and each switch reaches SourceHandler.
	Latch bool
	// QueueLen is each flow's receive queue length; zero means flow.DefaultQueueLen.
	QueueLen int
	// ReplayWindow is the SRTP/SRTCP replay window of inbound sessions: zero
	// means srtp.DefaultReplayWindow (64), negative turns replay protection off.
	ReplayWindow int
}

// Security says how a stream's media is protected.
type Security int

// The security settings of a stream.
const (
	// Plain: media in clear unless SRTP keys are set (SetOutboundSRTP / SetInboundSRTP).
	Plain Security = iota
	// SDES: SRTP keyed with SetOutboundSRTP and SetInboundSRTP (a=crypto, RFC 4568);
	// no clear media ever.
	SDES
	// DTLS: SRTP keyed by DTLS-SRTP (StartDTLS, RFC 5763/5764); no clear media ever.
	DTLS
)

// String returns the setting's name.
func (s Security) String() string {
	switch s {
	case Plain:
		return "plain"
	case SDES:
		return "sdes"
	case DTLS:
		return "dtls"
	}
	return fmt.Sprintf("Security(%d)", int(s))
}

// Env is what the owning manager shares with its streams.
type Env struct {
	// PortMin and PortMax restrict the RTP/RTCP ports; both zero means any.
	PortMin, PortMax uint16
	// Logger receives log records; nil discards them.
	Logger *slog.Logger
	// Listen opens the UDP sockets; nil means net.ListenUDP.
	Listen ListenFunc
	// OnClose is called once when the stream is closed.
	OnClose func(*Stream)
	// DTLS returns the DTLS configuration (our certificate, the SRTP profiles
	// to offer); nil means DTLS-SRTP is unavailable.
	DTLS func() (dtlssrtp.Config, error)
	// DTLSLinger is passed to the flows (flow.Config.DTLSLinger).
	DTLSLinger time.Duration
	// DTLSBudget is passed to the flows (flow.Config.DTLSBudget).
	DTLSBudget *flow.DTLSBudget
}

// Stream is one media stream: an RTP flow and an optional RTCP flow (reflow's
// MediaStream). All methods are safe for concurrent use.
type Stream struct {
	cfg     Config
	env     Env
	h       Handler
	log     *slog.Logger
	rtp     *flow.Flow
	rtcp    *flow.Flow
	flows   []*flow.Flow
	q       notify.Queue  // handler calls
	closed  chan struct{} // closed when Close has released the stream's resources
	done    chan struct{} // closed after closed, once the last handler call returned
	closing atomic.Bool
	dtlsMu  sync.Mutex // serialises StartDTLS

	mu         sync.Mutex
	ready      map[*flow.Flow]bool
	fired      bool // OnReady was queued
	readyCh    chan struct{}
	failed     error // the root cause of the current failure
	failedDTLS bool  // it came from DTLS: a new association may clear it
	failCh     chan struct{}
	keyed      map[*flow.Flow]flow.Keyed
	keyedFired bool
	keyedCh    chan struct{} // closed when the current keying completed
}

// New binds the stream's sockets and starts the NAT setup of its flows. A bind
// failure is returned at once; everything later reaches h. ctx bounds the NAT
// setup. Applications normally call flowmanager.Manager.NewStream instead.
func New(ctx context.Context, cfg Config, h Handler, env Env) (*Stream, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	if !cfg.LocalAddr.IsValid() {
		return nil, fmt.Errorf("%w: LocalAddr is required", ErrInvalidConfig)
	}
	if cfg.Security < Plain || cfg.Security > DTLS {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, cfg.Security)
	}
	if cfg.Security == DTLS && env.DTLS == nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, ErrNoDTLS)
	}
	if err := cfg.NAT.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if env.Listen == nil {
		env.Listen = listenUDP
	}
	ip := cfg.LocalAddr.Unmap()
	rc, cc, err := bindPair(env.Listen, ip, cfg.Port, cfg.RTCP, env.PortMin, env.PortMax)
	if err != nil {
		return nil, err
	}
	s := &Stream{
		cfg:     cfg,
		env:     env,
		h:       h,
		log:     pionlog.OrDiscard(env.Logger),
		closed:  make(chan struct{}),
		done:    make(chan struct{}),
		ready:   make(map[*flow.Flow]bool, 2),
		readyCh: make(chan struct{}),
		failCh:  make(chan struct{}),
		keyed:   make(map[*flow.Flow]flow.Keyed, 2),
		keyedCh: make(chan struct{}),
	}
	fc := flow.Config{NAT: cfg.NAT, Latch: cfg.Latch, QueueLen: cfg.QueueLen, Logger: env.Logger,
		Secure: cfg.Security != Plain, DTLSLinger: env.DTLSLinger, DTLSBudget: env.DTLSBudget, OnEvent: s.onFlowEvent}
	// Hold the lock so that events of a flow that is ready at once wait until
	// both flows are known.
	s.mu.Lock()
	fc.Component = flow.RTP
	s.rtp, err = flow.New(ctx, rc, fc)
	if err != nil {
		s.mu.Unlock()
		rc.Close()
		if cc != nil {
			cc.Close()
		}
		return nil, err
	}
	s.flows = append(s.flows, s.rtp)
	if cc != nil {
		fc.Component = flow.RTCP
		s.rtcp, err = flow.New(ctx, cc, fc)
		if err != nil {
			s.mu.Unlock()
			cc.Close()
			s.rtp.Close()
			return nil, err
		}
		s.flows = append(s.flows, s.rtcp)
	}
	s.mu.Unlock()
	s.checkReady()
	return s, nil
}

// SetOutboundSRTP protects what the stream sends with k, our SDES key (reflow's
// createOutboundSRTPSession): SRTP on the RTP flow, SRTCP on the RTCP flow (or
// on the RTP flow with rtcp-mux). It may be called at any time, also to re-key
// while media flows. On a Plain stream the zero Keys turn protection off; on
// an SDES or DTLS stream they stop sending instead.
func (s *Stream) SetOutboundSRTP(k srtp.Keys) error {
	if s.closing.Load() {
		return ErrClosed
	}
	if k.Suite == 0 {
		s.unkeyed()
	}
	for _, f := range s.flows {
		if err := f.SetOutboundSRTP(k); err != nil {
			return err
		}
	}
	return nil
}

// SetInboundSRTP authenticates and decrypts what the stream receives with k,
// the peer's SDES key (reflow's createInboundSRTPSession). Packets that fail
// authentication or replay protection are dropped and counted in the flows'
// Stats, never delivered. It may be called at any time to re-key.
func (s *Stream) SetInboundSRTP(k srtp.Keys) error {
	if s.closing.Load() {
		return ErrClosed
	}
	if k.Suite == 0 {
		s.unkeyed()
	}
	for _, f := range s.flows {
		if err := f.SetInboundSRTP(k, s.cfg.ReplayWindow); err != nil {
			return err
		}
	}
	return nil
}

// unkeyed forgets that the stream was keyed: the next keying is reported again.
func (s *Stream) unkeyed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.keyed)
	if s.keyedFired {
		s.keyedFired = false
		s.keyedCh = make(chan struct{})
	}
}

// ErrNoDTLS is returned by DTLS methods of a stream whose manager has no DTLS configuration.
var ErrNoDTLS = errors.New("mediastream: DTLS-SRTP not configured")

// Fingerprint returns the sha-256 fingerprint of our DTLS certificate, for the
// stream's SDP (a=fingerprint), or the zero Fingerprint without DTLS.
func (s *Stream) Fingerprint() dtlssrtp.Fingerprint {
	if s.env.DTLS == nil {
		return dtlssrtp.Fingerprint{}
	}
	cfg, err := s.env.DTLS()
	if err != nil {
		return dtlssrtp.Fingerprint{}
	}
	fp, err := dtlssrtp.CertificateFingerprint(cfg.Certificate, dtlssrtp.SHA256)
	if err != nil {
		return dtlssrtp.Fingerprint{}
	}
	return fp
}

// SetRemoteFingerprint pins the peer's DTLS certificate on every flow to the
// fingerprints of its SDP (reflow's setRemoteSDPFingerprint), before or after
// the handshake. A mismatch after the handshake ends the association and is
// returned as well as reported through OnError.
func (s *Stream) SetRemoteFingerprint(fps ...dtlssrtp.Fingerprint) error {
	if s.closing.Load() {
		return ErrClosed
	}
	var errs []error
	for _, f := range s.flows {
		if err := f.SetRemoteFingerprint(fps...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// StartDTLS starts (or, for a re-offer with a new fingerprint, restarts)
// DTLS-SRTP on every flow of the stream in role: as client towards the flow's
// active destination, as server answering a ClientHello from it (reflow's
// startDtlsClient). It returns at once; OnKeyed (and WaitKeyed) tell when
// every flow is keyed.
//
// It is atomic per stream: the preconditions of every flow are checked before
// any flow changes (a client needs an active destination on each flow), and
// concurrent calls are serialised. Until a flow's handshake has finished and
// the peer matches the pinned fingerprint, that flow sends and delivers no
// media. A restart never reports the old association's end as an error, and a
// DTLS failure reported before is cleared once the new association keys.
// Failures reach OnError, matching the dtlssrtp sentinels.
func (s *Stream) StartDTLS(role dtlssrtp.Role) error {
	if s.closing.Load() {
		return ErrClosed
	}
	if s.env.DTLS == nil {
		return ErrNoDTLS
	}
	if s.cfg.Security == SDES {
		return fmt.Errorf("%w: DTLS on a stream configured for SDES", ErrInvalidConfig)
	}
	cfg, err := s.env.DTLS()
	if err != nil {
		return err
	}
	s.dtlsMu.Lock()
	defer s.dtlsMu.Unlock()
	if role == dtlssrtp.Client {
		for _, f := range s.flows {
			if !f.ActiveDestination().IsValid() {
				return fmt.Errorf("%v flow: DTLS client: %w", f.Component(), flow.ErrNoDestination)
			}
		}
	}
	s.mu.Lock()
	if s.failed != nil && s.failedDTLS {
		// The application restarts DTLS in answer to a DTLS failure: the
		// new association starts clean.
		s.failed, s.failedDTLS = nil, false
		s.failCh = make(chan struct{})
	}
	s.mu.Unlock()
	s.unkeyed()
	for _, f := range s.flows {
		if err := f.StartDTLS(role, cfg); err != nil {
			return err
		}
	}
	return nil
}

// SetICECredentials makes every flow of the stream an ICE-lite responder
// (RFC 8445 §2.5) with our a=ice-ufrag/a=ice-pwd and the peer's a=ice-ufrag;
// see flow.Flow.SetICECredentials.
func (s *Stream) SetICECredentials(localUfrag, localPwd, remoteUfrag string) error {
	if s.closing.Load() {
		return ErrClosed
	}
	for _, f := range s.flows {
		if err := f.SetICECredentials(localUfrag, localPwd, remoteUfrag); err != nil {
			return err
		}
	}
	return nil
}

// RTP returns the RTP flow.
func (s *Stream) RTP() *flow.Flow { return s.rtp }

// RTCP returns the RTCP flow, or nil when RTCP is off (multiplexed on RTP).
func (s *Stream) RTCP() *flow.Flow { return s.rtcp }

// Flows returns the stream's flows, RTP first.
func (s *Stream) Flows() []*flow.Flow { return append([]*flow.Flow(nil), s.flows...) }

// Config returns the stream's configuration.
func (s *Stream) Config() Config { return s.cfg }

// Done is closed once the stream is closed and its last handler call has
// returned. A handler must not wait for it (it would wait for itself).
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err returns the root cause of the stream's current failure, or nil.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// IsReady reports whether OnReady has been (or is being) delivered.
func (s *Stream) IsReady() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fired
}

// WaitReady waits until every flow is ready and returns the session tuples
// OnReady gets. It returns the stream's failure, ErrClosed, or ctx's error
// if one comes first.
func (s *Stream) WaitReady(ctx context.Context) (rtp, rtcp flow.Tuple, err error) {
	s.mu.Lock()
	ready, failCh := s.readyCh, s.failCh
	s.mu.Unlock()
	select {
	case <-ready:
		rtp = s.rtp.SessionTuple()
		if s.rtcp != nil {
			rtcp = s.rtcp.SessionTuple()
		}
		return rtp, rtcp, nil
	case <-failCh:
		return rtp, rtcp, s.Err()
	case <-s.closed:
		return rtp, rtcp, ErrClosed
	case <-ctx.Done():
		return rtp, rtcp, ctx.Err()
	}
}

// WaitKeyed waits until every flow of the stream has SRTP keys in both
// directions (see KeyedHandler) and returns the RTP flow's. It returns the
// stream's failure, ErrClosed, or ctx's error if one comes first.
func (s *Stream) WaitKeyed(ctx context.Context) (flow.Keyed, error) {
	for {
		s.mu.Lock()
		keyedCh, failCh := s.keyedCh, s.failCh
		s.mu.Unlock()
		select {
		case <-keyedCh:
			s.mu.Lock()
			k, fired, same := s.keyed[s.rtp], s.keyedFired, keyedCh == s.keyedCh
			s.mu.Unlock()
			if fired && same {
				return k, nil
			}
			// a restart began meanwhile: wait for the new keys
		case <-failCh:
			return flow.Keyed{}, s.Err()
		case <-s.closed:
			return flow.Keyed{}, ErrClosed
		case <-ctx.Done():
			return flow.Keyed{}, ctx.Err()
		}
	}
}

func (s *Stream) onFlowEvent(ev flow.Event) {
	switch ev.Kind {
	case flow.EventReady:
		s.mu.Lock()
		s.ready[ev.Flow] = true
		s.mu.Unlock()
		s.checkReady()
	case flow.EventError:
		s.mu.Lock()
		if s.failed != nil {
			s.mu.Unlock()
			// A consequence of the failure already reported.
			s.log.Debug("stream already failed; not reported again", "err", ev.Err, "cause", s.failed)
			return
		}
		s.failed = ev.Err
		s.failedDTLS = isDTLSError(ev.Err)
		close(s.failCh)
		s.mu.Unlock()
		s.post(func() { s.h.OnError(s, ev.Err) })
	case flow.EventKeyed:
		s.mu.Lock()
		s.keyed[ev.Flow] = ev.Keyed
		if s.keyedFired || len(s.keyed) < len(s.flows) {
			s.mu.Unlock()
			return
		}
		s.keyedFired = true
		close(s.keyedCh)
		if s.failed != nil && s.failedDTLS && ev.Keyed.DTLS {
			// A new association keyed: the DTLS failure is over.
			s.failed, s.failedDTLS = nil, false
			s.failCh = make(chan struct{})
		}
		k := s.keyed[s.rtp]
		s.mu.Unlock()
		if kh, ok := s.h.(KeyedHandler); ok {
			s.post(func() { kh.OnKeyed(s, k) })
		}
	case flow.EventSourceChanged:
		if sh, ok := s.h.(SourceHandler); ok {
			s.post(func() { sh.OnSourceChanged(s, ev.Flow, ev.From, ev.To) })
		}
	case flow.EventICESelected:
		s.iceSelected(ev) // ice.go
	}
}

func isDTLSError(err error) bool {
	var fe *flow.Error
	return errors.As(err, &fe) && strings.HasPrefix(fe.Op, "dtls")
}

// checkReady queues OnReady once every flow is ready and none has failed.
func (s *Stream) checkReady() {
	s.mu.Lock()
	if s.fired || s.failed != nil || len(s.flows) == 0 {
		s.mu.Unlock()
		return
	}
	for _, f := range s.flows {
		if !s.ready[f] && !f.IsReady() {
			s.mu.Unlock()
			return
		}
	}
	s.fired = true
	close(s.readyCh)
	rtp := s.rtp.SessionTuple()
	var rtcp flow.Tuple
	if s.rtcp != nil {
		rtcp = s.rtcp.SessionTuple()
	}
	s.mu.Unlock()
	s.post(func() { s.h.OnReady(s, rtp, rtcp) })
}

// post queues a handler call (internal/notify: ordered, never blocking).
func (s *Stream) post(fn func()) {
	if !s.q.Post(fn) && !s.q.Closed() {
		s.log.Warn("handler queue full: event dropped")
	}
}

// Close closes the stream's flows (RTCP first) and stops event delivery: no
// handler call starts after Close returns. It is idempotent and safe from any
// goroutine, a Handler method included. It returns once the stream's own
// resources (sockets, allocations, goroutines) are released; it does not wait
// for a handler call in progress (Done tells when that has returned), so a
// handler that closes its stream, or one that blocks while another goroutine
// closes it, cannot deadlock Close.
func (s *Stream) Close() error {
	if !s.closing.CompareAndSwap(false, true) {
		<-s.closed
		return nil
	}
	s.q.Close()
	var errs []error
	for i := len(s.flows) - 1; i >= 0; i-- {
		if err := s.flows[i].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	close(s.closed)
	go func() { // Done: after the last handler call (never blocks Close)
		<-s.q.Done()
		close(s.done)
	}()
	if s.env.OnClose != nil {
		s.env.OnClose(s)
	}
	return errors.Join(errs...)
}
