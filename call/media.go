package call

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/mediastream"
)

// Media adapts one flowmanager stream to the call core: it records the
// stream's readiness and session tuples, and reports its failures to one
// function. A binding that builds its own offers (or a test) can use it
// directly; calls make theirs with OpenMedia.
type Media struct {
	stream *mediastream.Stream
	cancel context.CancelFunc
	ready  chan struct{}
	fail   chan struct{} // closed on the first failure

	mu        sync.Mutex
	rtp, rtcp flow.Tuple
	err       error
	onError   func(*Media, error)
	ice       iceCredentials // in force on the stream
	iceRemote string
}

// OpenMedia asks m for a stream configured from cfg and returns at once; Wait
// blocks until it is ready. onError (may be nil) receives every failure of
// the stream, before or after ready, on the stream's goroutine. timeout
// bounds the NAT setup (zero: 10 s).
func OpenMedia(m *flowmanager.Manager, cfg MediaConfig, timeout time.Duration, onError func(*Media, error)) (*Media, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	md := &Media{cancel: cancel, ready: make(chan struct{}), fail: make(chan struct{}), onError: onError}
	s, err := m.NewStream(ctx, mediastream.Config{
		LocalAddr: cfg.LocalAddr,
		RTCP:      !cfg.RTCPMux,
		NAT:       cfg.NAT,
		Latch:     cfg.Latch,
	}, mediastream.HandlerFuncs{Ready: md.onReady, Error: md.onFail})
	if err != nil {
		cancel()
		return nil, err
	}
	md.mu.Lock()
	md.stream = s
	md.mu.Unlock()
	return md, nil
}

func (m *Media) onReady(_ *mediastream.Stream, rtp, rtcp flow.Tuple) {
	m.mu.Lock()
	m.rtp, m.rtcp = rtp, rtcp
	m.mu.Unlock()
	m.cancel()
	close(m.ready)
}

func (m *Media) onFail(_ *mediastream.Stream, err error) {
	m.mu.Lock()
	if m.err == nil {
		m.err = err
		close(m.fail)
	}
	f := m.onError
	m.mu.Unlock()
	if f != nil {
		f(m, err)
	}
}

// Wait blocks until the stream is ready (nil), failed (its error) or ctx ends.
func (m *Media) Wait(ctx context.Context) error {
	select {
	case <-m.ready:
		return nil
	default:
	}
	select {
	case <-m.ready:
		return nil
	case <-m.fail:
		return m.Err()
	case <-ctx.Done():
		return ctx.Err()
	case <-m.stream.Done():
		return ErrClosed
	}
}

// Err returns the stream's first failure, or nil.
func (m *Media) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Tuples returns the session tuples to advertise: RTP, and RTCP (the zero
// Tuple with rtcp-mux). Both are zero before the stream is ready.
func (m *Media) Tuples() (rtp, rtcp flow.Tuple) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rtp, m.rtcp
}

// Stream returns the media stream, for RTP/RTCP I/O.
func (m *Media) Stream() *mediastream.Stream { return m.stream }

// Candidates returns our ICE candidates (RFC 8445 §5.1.1) for the stream's
// flows: component 1 for the RTP flow and 2 for the RTCP flow (none with
// rtcp-mux), each with a host candidate for its local address, a
// server-reflexive one for its STUN- or TURN-learnt public address and a
// relayed one for its TURN allocation, as the NAT mode gives them. Host and
// reflexive candidates are left out when the flow reaches its TURN server
// over TCP or TLS (the peer cannot send UDP there).
func (m *Media) Candidates() []sdpx.Candidate {
	var out []sdpx.Candidate
	for _, f := range []*flow.Flow{m.stream.RTP(), m.stream.RTCP()} {
		if f == nil {
			continue
		}
		comp := sdpx.ComponentRTP
		if f.Component() == flow.RTCP {
			comp = sdpx.ComponentRTCP
		}
		var host, refl netip.AddrPort
		if lt := f.LocalTuple(); lt.Transport == flow.UDP && !lt.Addr.Addr().IsUnspecified() {
			host = lt.Addr
			if rt := f.ReflexiveTuple(); rt.Transport == flow.UDP {
				refl = rt.Addr
			}
		}
		out = append(out, sdpx.LocalCandidates(comp, host, refl, f.RelayTuple().Addr)...)
	}
	return out
}

// setICE puts our ICE credentials and the peer's ufrag in force on the
// stream's flows when they changed; zero credentials stop answering checks.
func (m *Media) setICE(ours iceCredentials, remote string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ours.ufrag == "" {
		remote = ""
	}
	if m.ice == ours && m.iceRemote == remote {
		return nil
	}
	if err := m.stream.SetICECredentials(ours.ufrag, ours.pwd, remote); err != nil {
		return err
	}
	m.ice, m.iceRemote = ours, remote
	return nil
}

// offerICE puts our ICE credentials in force for an offer: checks from any
// peer ufrag are answered until the answer names it. Credentials already in
// force are kept.
func (m *Media) offerICE(ours iceCredentials) error {
	m.mu.Lock()
	same := m.ice == ours
	m.mu.Unlock()
	if same {
		return nil
	}
	return m.setICE(ours, "")
}

// Fingerprint returns our DTLS certificate's fingerprint, for a=fingerprint.
func (m *Media) Fingerprint() dtlssrtp.Fingerprint { return m.stream.Fingerprint() }

// Close closes the stream. It is idempotent.
func (m *Media) Close() error {
	m.cancel()
	err := m.stream.Close()
	if errors.Is(err, mediastream.ErrClosed) {
		return nil
	}
	return err
}
