package mediastream

import (
	"context"
	"errors"
	"fmt"
	"github.com/reflow-go/reflow/internal/goid"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/pionlog"
	"github.com/reflow-go/reflow/natmode"
	"github.com/reflow-go/reflow/srtp"
)

// Handler receives a stream's events (reflow's MediaStreamHandler). Calls are
// made one at a time, in order, on a goroutine owned by the stream, never with a
// lock held; a handler may call any method of the stream, Close included.
type Handler interface {
	// OnReady is called once, when every flow of the stream has finished its NAT
	// setup, with the session tuples to advertise (in SDP). rtcp is the zero
	// Tuple when RTCP is off (RTCP then shares the RTP flow, rtcp-mux).
	OnReady(s *Stream, rtp, rtcp flow.Tuple)
	// OnError is called for every failure, before or after ready. err is a
	// *flow.Error naming the component, matching the flow package's sentinels.
	OnError(s *Stream, err error)
}

// HandlerFuncs adapts two functions to Handler; a nil function ignores its event.
type HandlerFuncs struct {
	Ready func(s *Stream, rtp, rtcp flow.Tuple)
	Error func(s *Stream, err error)
}

// OnReady calls h.Ready.
func (h HandlerFuncs) OnReady(s *Stream, rtp, rtcp flow.Tuple) {
	if h.Ready != nil {
		h.Ready(s, rtp, rtcp)
	}
}

// OnError calls h.Error.
func (h HandlerFuncs) OnError(s *Stream, err error) {
	if h.Error != nil {
		h.Error(s, err)
	}
}

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
	// Latch makes each flow adopt the first media source as its destination
	// (symmetric RTP); see flow.Config.Latch.
	Latch bool
	// QueueLen is each flow's receive queue length; zero means flow.DefaultQueueLen.
	QueueLen int
	// ReplayWindow is the SRTP/SRTCP replay window of inbound sessions: zero
	// means srtp.DefaultReplayWindow (64), negative turns replay protection off.
	ReplayWindow int
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
	done    chan struct{}
	closing atomic.Bool

	mu       sync.Mutex
	ready    map[*flow.Flow]bool
	fired    bool // OnReady was queued
	failed   error
	pending  []event
	running  bool
	runnerID uint64
	wg       sync.WaitGroup
}

type event struct {
	ready     bool
	rtp, rtcp flow.Tuple
	err       error
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
		cfg:   cfg,
		env:   env,
		h:     h,
		log:   pionlog.OrDiscard(env.Logger),
		done:  make(chan struct{}),
		ready: make(map[*flow.Flow]bool, 2),
	}
	fc := flow.Config{NAT: cfg.NAT, Latch: cfg.Latch, QueueLen: cfg.QueueLen, Logger: env.Logger,
		DTLSLinger: env.DTLSLinger, OnEvent: s.onFlowEvent}
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
// while media flows; the zero Keys turn protection off.
func (s *Stream) SetOutboundSRTP(k srtp.Keys) error {
	if s.closing.Load() {
		return ErrClosed
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
	for _, f := range s.flows {
		if err := f.SetInboundSRTP(k, s.cfg.ReplayWindow); err != nil {
			return err
		}
	}
	return nil
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
// startDtlsClient). It returns at once. Until a flow's handshake has finished
// and the peer matches the pinned fingerprint, that flow sends and delivers no
// media. Failures reach OnError, matching the dtlssrtp sentinels.
func (s *Stream) StartDTLS(role dtlssrtp.Role) error {
	if s.closing.Load() {
		return ErrClosed
	}
	if s.env.DTLS == nil {
		return ErrNoDTLS
	}
	cfg, err := s.env.DTLS()
	if err != nil {
		return err
	}
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

// Done is closed when the stream is closed.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err returns the stream's first failure, or nil.
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

func (s *Stream) onFlowEvent(ev flow.Event) {
	switch ev.Kind {
	case flow.EventReady:
		s.mu.Lock()
		s.ready[ev.Flow] = true
		s.mu.Unlock()
		s.checkReady()
	case flow.EventError:
		s.mu.Lock()
		if s.failed == nil {
			s.failed = ev.Err
		}
		s.mu.Unlock()
		s.post(event{err: ev.Err})
	}
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
	ev := event{ready: true, rtp: s.rtp.SessionTuple()}
	if s.rtcp != nil {
		ev.rtcp = s.rtcp.SessionTuple()
	}
	s.mu.Unlock()
	s.post(ev)
}

// post queues an event for the handler, starting the dispatch goroutine if none runs.
func (s *Stream) post(ev event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return
	}
	s.pending = append(s.pending, ev)
	if !s.running {
		s.running = true
		s.wg.Add(1)
		go s.dispatch()
	}
}

// dispatch delivers queued events in order and ends when the queue is empty.
func (s *Stream) dispatch() {
	defer s.wg.Done()
	id := goid.Current()
	s.mu.Lock()
	s.runnerID = id
	s.mu.Unlock()
	for {
		s.mu.Lock()
		if len(s.pending) == 0 || s.closing.Load() {
			s.pending = nil
			s.running = false
			s.runnerID = 0
			s.mu.Unlock()
			return
		}
		ev := s.pending[0]
		s.pending = s.pending[1:]
		s.mu.Unlock()
		if ev.ready {
			s.h.OnReady(s, ev.rtp, ev.rtcp)
		} else {
			s.h.OnError(s, ev.err)
		}
	}
}

// Close closes the stream's flows (RTCP first), stops event delivery and waits
// for the stream's goroutines. It is idempotent and may be called from a
// Handler method; no handler call starts after Close returns.
func (s *Stream) Close() error {
	if !s.closing.CompareAndSwap(false, true) {
		<-s.done
		return nil
	}
	var errs []error
	for i := len(s.flows) - 1; i >= 0; i-- {
		if err := s.flows[i].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	inHandler := s.running && s.runnerID == goid.Current()
	s.mu.Unlock()
	if !inHandler {
		s.wg.Wait()
	}
	close(s.done)
	if s.env.OnClose != nil {
		s.env.OnClose(s)
	}
	return errors.Join(errs...)
}
