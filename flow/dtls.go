package flow

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/srtp"
)

// dtlsQueueLen bounds the DTLS records waiting for the handshake.
const dtlsQueueLen = 64

// dtlsAssoc is one DTLS association of a flow.
type dtlsAssoc struct {
	role     dtlssrtp.Role
	ep       *dtlsEndpoint
	verifier *dtlssrtp.Verifier
	cancel   context.CancelFunc
	done     chan struct{} // closed when the association's goroutine ended

	mu    sync.Mutex
	sess  *dtlssrtp.Session
	keyed bool
}

// StartDTLSClient starts a DTLS-SRTP association in the client (active) role
// towards the active destination (reflow's startDtlsClient). See StartDTLS.
func (f *Flow) StartDTLSClient(cfg dtlssrtp.Config) error { return f.StartDTLS(dtlssrtp.Client, cfg) }

// StartDTLS starts a DTLS-SRTP association (RFC 5763/5764) in role: the client
// sends its ClientHello to the active destination; the server answers a
// ClientHello from the active destination only. It returns at once; the
// handshake runs in the background, bounded by cfg.HandshakeTimeout.
//
// From this call on the flow sends and delivers no media in clear: writes
// fail with ErrNotSecure and received media is dropped (DropNotSecure) until
// the handshake has finished AND the peer's certificate matches the pinned
// fingerprint (SetRemoteFingerprint, before or after the handshake). Then the
// flow keys its SRTP from the DTLS exporter with the negotiated profile.
// A failure (fingerprint mismatch, handshake timeout, fatal alert, the peer
// closing) reaches OnEvent as an *Error matching the dtlssrtp sentinels.
//
// Calling StartDTLS again replaces the association (a re-offer with a new
// fingerprint); the fingerprints pinned so far are kept.
func (f *Flow) StartDTLS(role dtlssrtp.Role, cfg dtlssrtp.Config) error {
	if f.closed.Load() {
		return ErrClosed
	}
	if role == dtlssrtp.Client && !f.ActiveDestination().IsValid() {
		return fmt.Errorf("%v flow: DTLS client: %w", f.cfg.Component, ErrNoDestination)
	}
	f.RequireSRTP(true)
	f.stopDTLS() // a new association replaces the old one, and its keys
	f.tx.Store(nil)
	f.rx.Store(nil)

	v := &dtlssrtp.Verifier{}
	f.mu.Lock()
	pins := f.pins
	f.mu.Unlock()
	if len(pins) > 0 {
		if err := v.SetFingerprints(pins...); err != nil {
			return fmt.Errorf("%v flow: %w", f.cfg.Component, err)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = f.log
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &dtlsAssoc{role: role, ep: newDTLSEndpoint(f), verifier: v, cancel: cancel, done: make(chan struct{})}
	f.mu.Lock()
	if f.closed.Load() {
		f.mu.Unlock()
		cancel()
		return ErrClosed
	}
	f.dtls.Store(a)
	f.wg.Add(1)
	f.mu.Unlock()
	go f.runDTLS(ctx, a, cfg)
	return nil
}

// runDTLS performs the handshake, keys SRTP once the peer is verified, and
// waits for the association to end.
func (f *Flow) runDTLS(ctx context.Context, a *dtlsAssoc, cfg dtlssrtp.Config) {
	defer f.wg.Done()
	defer close(a.done)
	start := time.Now()
	sess, err := dtlssrtp.Handshake(ctx, a.ep, a.role, cfg, a.verifier)
	if err != nil {
		if ctx.Err() == nil && !f.closed.Load() {
			f.fail(&Error{f.cfg.Component, "dtls handshake", err})
		}
		return
	}
	a.mu.Lock()
	a.sess = sess
	a.mu.Unlock()
	f.log.Debug("dtls handshake done", "role", a.role, "suite", sess.Suite(), "took", time.Since(start))
	f.applyDTLSKeys(a)
	select {
	case <-sess.Done():
		if ctx.Err() == nil && !f.closed.Load() {
			f.tx.Store(nil)
			f.rx.Store(nil)
			f.fail(&Error{f.cfg.Component, "dtls", sess.Err()})
		}
	case <-ctx.Done():
	}
	_ = sess.Close()
}

// applyDTLSKeys keys the flow's SRTP from a finished handshake once the peer's
// certificate matches a pinned fingerprint.
func (f *Flow) applyDTLSKeys(a *dtlsAssoc) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sess == nil || a.keyed || !a.verifier.Verified() || f.dtls.Load() != a {
		return
	}
	local, remote := a.sess.Keys()
	if err := f.SetOutboundSRTP(local); err != nil {
		f.fail(&Error{f.cfg.Component, "dtls keys", err})
		return
	}
	if err := f.SetInboundSRTP(remote, 0); err != nil {
		f.fail(&Error{f.cfg.Component, "dtls keys", err})
		return
	}
	a.keyed = true
}

// SetRemoteFingerprint pins the peer's certificate to the fingerprints of its
// SDP (reflow's setRemoteSDPFingerprint), before or after the handshake. After
// the handshake a mismatch ends the association and is returned (and reported
// through OnEvent); a match releases media.
func (f *Flow) SetRemoteFingerprint(fps ...dtlssrtp.Fingerprint) error {
	if f.closed.Load() {
		return ErrClosed
	}
	f.mu.Lock()
	f.pins = append([]dtlssrtp.Fingerprint(nil), fps...)
	f.mu.Unlock()
	a := f.dtls.Load()
	if a == nil {
		return nil
	}
	if err := a.verifier.SetFingerprints(fps...); err != nil {
		err = &Error{f.cfg.Component, "dtls fingerprint", err}
		if errors.Is(err, dtlssrtp.ErrFingerprintMismatch) {
			f.tx.Store(nil)
			f.rx.Store(nil)
		}
		return err
	}
	f.applyDTLSKeys(a)
	return nil
}

// IsSecure reports whether the flow protects its media with SRTP keys in both directions.
func (f *Flow) IsSecure() bool { return f.tx.Load() != nil && f.rx.Load() != nil }

// DTLSSuite returns the SRTP profile negotiated by the current DTLS
// association, or zero before its handshake finished.
func (f *Flow) DTLSSuite() srtp.Suite {
	if a := f.dtls.Load(); a != nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.sess != nil {
			return a.sess.Suite()
		}
	}
	return 0
}

// stopDTLS ends the current association, if any, without reporting it.
func (f *Flow) stopDTLS() {
	a := f.dtls.Swap(nil)
	if a == nil {
		return
	}
	a.cancel()
	<-a.done // the session's Close sent close_notify through the endpoint
	a.ep.Close()
}

// dtlsInbound hands a DTLS record from src to the association.
func (f *Flow) dtlsInbound(pkt *packet) bool {
	a := f.dtls.Load()
	if a == nil {
		f.stats.dropped[DropUnexpected].Add(1)
		return false
	}
	if isDest, _ := f.source(pkt.from); !isDest {
		f.stats.dropped[DropSource].Add(1)
		return false
	}
	return a.ep.push(pkt)
}

// dtlsEndpoint is the net.Conn DTLS runs on: it reads the records the flow's
// reader hands over and writes to the active destination, unprotected and
// through the relay in TURN modes. Closing it never closes the flow's socket.
type dtlsEndpoint struct {
	f      *Flow
	in     chan *packet
	closed chan struct{}
	once   sync.Once
	rdl    *deadline
}

func newDTLSEndpoint(f *Flow) *dtlsEndpoint {
	return &dtlsEndpoint{f: f, in: make(chan *packet, dtlsQueueLen), closed: make(chan struct{}), rdl: newDeadline()}
}

func (e *dtlsEndpoint) push(pkt *packet) bool {
	select {
	case <-e.closed:
		e.f.stats.dropped[DropUnexpected].Add(1)
		return false
	default:
	}
	select {
	case e.in <- pkt:
		return true
	default:
		e.f.stats.dropped[DropQueueFull].Add(1)
		return false
	}
}

func (e *dtlsEndpoint) Read(p []byte) (int, error) {
	select {
	case pkt := <-e.in:
		n := copy(p, pkt.buf[:pkt.n])
		putPacket(pkt)
		return n, nil
	case <-e.closed:
		return 0, net.ErrClosed
	case <-e.rdl.wait():
		return 0, errTimeout
	}
}

func (e *dtlsEndpoint) Write(p []byte) (int, error) {
	select {
	case <-e.closed:
		return 0, net.ErrClosed
	default:
	}
	dst := e.f.ActiveDestination()
	if !dst.IsValid() {
		return 0, ErrNoDestination
	}
	return e.f.sendRaw(p, dst)
}

func (e *dtlsEndpoint) Close() error {
	e.once.Do(func() {
		close(e.closed)
		e.rdl.stop()
		for {
			select {
			case pkt := <-e.in:
				putPacket(pkt)
				continue
			default:
			}
			return
		}
	})
	return nil
}

func (e *dtlsEndpoint) LocalAddr() net.Addr { return e.f.LocalAddr() }
func (e *dtlsEndpoint) RemoteAddr() net.Addr {
	return net.UDPAddrFromAddrPort(e.f.ActiveDestination())
}
func (e *dtlsEndpoint) SetDeadline(t time.Time) error      { e.rdl.set(t); return nil }
func (e *dtlsEndpoint) SetReadDeadline(t time.Time) error  { e.rdl.set(t); return nil }
func (e *dtlsEndpoint) SetWriteDeadline(t time.Time) error { return nil }
