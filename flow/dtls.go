package flow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
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

	mu       sync.Mutex
	sess     *dtlssrtp.Session
	suite    srtp.Suite
	keyed    bool
	linger   *time.Timer // releases the DTLS state after keying
	released bool        // the DTLS state is gone; the keys stay
	lingers  bool        // holds one of the budget's lingering grants

	// After the release: the datagrams of the last flight we sent, to answer
	// a retransmission of the peer's final flight (server role only); final
	// is written before gone is set and only read by the reader goroutine.
	final [][]byte
	gone  atomic.Bool
}

// DefaultDTLSLinger is how long an association keeps its DTLS state after the
// flow is keyed, when Config.DTLSLinger is zero.
const DefaultDTLSLinger = 30 * time.Second

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
	f.dtlsStart.Lock() // concurrent calls: one association at a time
	defer f.dtlsStart.Unlock()
	f.RequireSRTP(true)
	f.stopDTLS() // a new association replaces the old one, and its keys
	f.dropKeys(true, true)

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
	if early := f.takeEarlyHello(f.ActiveDestination()); early != nil {
		if role == dtlssrtp.Server {
			// The reader cannot see a yet: push is still ours to call.
			a.ep.push(early)
		} else {
			putPacket(early)
			f.stats.dropped[DropUnexpected].Add(1)
		}
	}
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

// runDTLS performs the handshake and keys SRTP once the peer is verified.
// It does not outlive the handshake: the session reports its end through
// OnEnd, so an established association parks no goroutine of the flow.
func (f *Flow) runDTLS(ctx context.Context, a *dtlsAssoc, cfg dtlssrtp.Config) {
	defer f.wg.Done()
	defer close(a.done)
	hsCtx := ctx
	if a.role == dtlssrtp.Client {
		// A bounded number of client handshakes at once (DTLSBudget); the
		// wait ends with the association.
		if !f.cfg.DTLSBudget.acquire(ctx.Done()) {
			return
		}
	} else {
		// The server's DTLS state is made when the client's first flight
		// arrives, not before: a server waiting for its client costs a
		// parked goroutine, not pion's conn. The handshake timeout counts
		// from StartDTLS.
		timeout := cfg.HandshakeTimeout
		if timeout <= 0 {
			timeout = dtlssrtp.DefaultHandshakeTimeout
		}
		var cancel context.CancelFunc
		hsCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
		select {
		case <-a.ep.arrived:
		case <-hsCtx.Done():
			if ctx.Err() != nil {
				return
			}
		}
	}
	start := time.Now()
	sess, err := dtlssrtp.Handshake(hsCtx, a.ep, a.role, cfg, a.verifier)
	if a.role == dtlssrtp.Client {
		f.cfg.DTLSBudget.release()
	}
	if err != nil {
		if ctx.Err() == nil && !f.closed.Load() {
			f.fail(&Error{f.cfg.Component, "dtls handshake", err})
		}
		return
	}
	a.mu.Lock()
	a.sess, a.suite = sess, sess.Suite()
	a.mu.Unlock()
	f.log.Debug("dtls handshake done", "role", a.role, "suite", sess.Suite(), "took", time.Since(start))
	f.applyDTLSKeys(a)
	sess.OnEnd(func(err error) {
		a.mu.Lock()
		released := a.released
		a.mu.Unlock()
		if released || ctx.Err() != nil || f.closed.Load() || f.dtls.Load() != a {
			return // we ended it
		}
		f.dropKeys(true, true)
		f.fail(&Error{f.cfg.Component, "dtls", err})
	})
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
	if err := f.setTx(local); err != nil {
		f.fail(&Error{f.cfg.Component, "dtls keys", err})
		return
	}
	if err := f.setRx(remote, 0); err != nil {
		f.fail(&Error{f.cfg.Component, "dtls keys", err})
		return
	}
	a.ep.established.Store(true)
	var pin dtlssrtp.Fingerprint
	if peer := a.verifier.PeerCertificate(); peer != nil {
		for _, fp := range a.verifier.Fingerprints() {
			if fp.Matches(peer) {
				pin = fp
				break
			}
		}
	}
	f.checkKeyed(Keyed{Suite: a.suite, DTLS: true, Role: a.role, PeerFingerprint: pin})
	a.keyed = true
	if linger := f.cfg.DTLSLinger; linger >= 0 {
		if linger == 0 {
			linger = DefaultDTLSLinger
		}
		if a.lingers = f.cfg.DTLSBudget.takeLinger(); !a.lingers {
			linger = 0 // over the budget's lingering count: release at once
		}
		a.linger = time.AfterFunc(linger, func() { f.releaseDTLS(a) })
	}
}

// releaseDTLS drops the DTLS state of a keyed association (pion's conn and its
// goroutines, some 150 KiB) and keeps the SRTP keys. Nothing is sent: the peer
// keeps its association. From then on DTLS records from the peer (a late
// retransmission, an alert, close_notify) are dropped and counted.
func (f *Flow) releaseDTLS(a *dtlsAssoc) {
	f.mu.Lock()
	if f.closed.Load() {
		f.mu.Unlock()
		return
	}
	f.wg.Add(1) // Close waits for a release in progress
	f.mu.Unlock()
	defer f.wg.Done()
	a.mu.Lock()
	sess := a.sess
	if a.released || sess == nil || f.dtls.Load() != a {
		a.mu.Unlock()
		return
	}
	a.released, a.sess = true, nil
	if a.lingers {
		a.lingers = false
		f.cfg.DTLSBudget.giveLinger()
	}
	a.mu.Unlock()
	a.ep.muted.Store(true) // no close_notify: the association lives on with its keys
	_ = sess.Close()
	a.ep.Close()
	if a.role == dtlssrtp.Server {
		// The client may not have received our final flight; it then
		// retransmits its own, which we answer with a copy (RFC 6347 §4.2.4).
		a.final = a.ep.lastFlight()
	} else {
		a.ep.lastFlight() // only a server answers with it
	}
	a.gone.Store(true)
	f.log.Debug("dtls state released after keying", "suite", a.suite)
}

// answerFinal answers a DTLS datagram that reaches a released association:
// when it carries an epoch-0 handshake record (the peer retransmitting its
// final flight because ours was lost), our final flight is sent again,
// within the association's rate budget. It runs on the reader goroutine.
func (f *Flow) answerFinal(a *dtlsAssoc, pkt *packet) {
	if len(a.final) == 0 || !hasHandshake(pkt.buf[:pkt.n]) || !a.ep.budget.take(clock()) {
		f.stats.dropped[DropUnexpected].Add(1)
		return
	}
	dst := f.ActiveDestination()
	for _, dg := range a.final {
		if _, err := f.sendRaw(dg, dst); err != nil {
			f.log.Debug("dtls: final flight not sent again", "error", err)
			return
		}
	}
}

// hasHandshake reports whether the DTLS datagram b holds an epoch-0
// handshake record (content type 22, RFC 6347 §4.1).
func hasHandshake(b []byte) bool {
	for len(b) >= 13 {
		size := 13 + (int(b[11])<<8 | int(b[12]))
		if size > len(b) {
			return false
		}
		if b[0] == 22 && b[3] == 0 && b[4] == 0 {
			return true
		}
		b = b[size:]
	}
	return false
}

// SetRemoteFingerprint pins the peer's certificate to the fingerprints of its
// SDP (reflow's setRemoteSDPFingerprint), before or after the handshake.
//
// The first pin after a handshake is checked at once: a mismatch ends the
// association and is returned (and reported through OnEvent); a match
// releases media. A later, different set of fingerprints whose hash the
// current peer does not match announces a new DTLS association (RFC 8842 §5,
// a re-offer with a new certificate): the current association is ended
// quietly, media stops, and the next StartDTLS runs the new one.
func (f *Flow) SetRemoteFingerprint(fps ...dtlssrtp.Fingerprint) error {
	if f.closed.Load() {
		return ErrClosed
	}
	f.mu.Lock()
	previous := f.pins
	f.pins = append([]dtlssrtp.Fingerprint(nil), fps...)
	f.mu.Unlock()
	a := f.dtls.Load()
	if a == nil {
		return nil
	}
	if len(previous) > 0 && !samePins(previous, fps) {
		if peer := a.verifier.PeerCertificate(); peer == nil || !matchesAny(fps, peer) {
			f.log.Debug("new remote fingerprint: ending the current DTLS association")
			f.stopDTLS()
			f.dropKeys(true, true)
			return nil
		}
	}
	if err := a.verifier.SetFingerprints(fps...); err != nil {
		err = &Error{f.cfg.Component, "dtls fingerprint", err}
		if errors.Is(err, dtlssrtp.ErrFingerprintMismatch) {
			f.dropKeys(true, true)
		}
		return err
	}
	f.applyDTLSKeys(a)
	return nil
}

func samePins(a, b []dtlssrtp.Fingerprint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func matchesAny(fps []dtlssrtp.Fingerprint, cert []byte) bool {
	for _, fp := range fps {
		if fp.Matches(cert) {
			return true
		}
	}
	return false
}

// IsSecure reports whether the flow protects its media with SRTP keys in both directions.
func (f *Flow) IsSecure() bool { return f.tx.Load() != nil && f.rx.Load() != nil }

// DTLSSuite returns the SRTP profile negotiated by the current DTLS
// association, or zero before its handshake finished.
func (f *Flow) DTLSSuite() srtp.Suite {
	if a := f.dtls.Load(); a != nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.suite
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
	<-a.done // the handshake is over or abandoned
	a.mu.Lock()
	sess := a.sess
	if a.linger != nil {
		a.linger.Stop()
	}
	if a.lingers {
		a.lingers = false
		f.cfg.DTLSBudget.giveLinger()
	}
	a.mu.Unlock()
	if sess != nil {
		_ = sess.Close() // sends close_notify through the endpoint, still open
	}
	a.ep.Close()
}

// dtlsInbound hands a DTLS record from src to the association.
func (f *Flow) dtlsInbound(pkt *packet) bool {
	a := f.dtls.Load()
	if a == nil {
		if f.cfg.Secure && isClientHello(pkt.buf[:pkt.n]) {
			// A ClientHello that overtook the signalling: the peer (the
			// DTLS client) answered and started its handshake before our
			// StartDTLS. Kept, the latest one only, for a StartDTLS in the
			// server role whose active destination is its source; else the
			// client would wait for its first retransmission (1 s).
			if old := f.earlyHello.Swap(pkt); old != nil {
				putPacket(old)
				f.stats.dropped[DropUnexpected].Add(1)
			}
			return true
		}
		f.stats.dropped[DropUnexpected].Add(1)
		return false
	}
	if pkt.from != f.dst.Load().ap {
		f.stats.dropped[DropSource].Add(1)
		return false
	}
	if a.gone.Load() {
		f.answerFinal(a, pkt)
		return false
	}
	return a.ep.push(pkt)
}

// isClientHello reports whether the DTLS datagram b starts with an epoch-0
// handshake record holding a ClientHello (RFC 6347 §4.1, §4.2.2).
func isClientHello(b []byte) bool {
	return len(b) > 13 && b[0] == 22 && b[3] == 0 && b[4] == 0 && b[13] == 1
}

// takeEarlyHello returns the ClientHello kept by dtlsInbound if it came from
// dst, and drops it otherwise.
func (f *Flow) takeEarlyHello(dst netip.AddrPort) *packet {
	pkt := f.earlyHello.Swap(nil)
	if pkt == nil {
		return nil
	}
	if !dst.IsValid() || pkt.from != dst {
		putPacket(pkt)
		f.stats.dropped[DropSource].Add(1)
		return nil
	}
	return pkt
}

// dtlsEndpoint is the net.Conn DTLS runs on: it reads the records the flow's
// reader hands over and writes to the active destination, unprotected and
// through the relay in TURN modes. Closing it never closes the flow's socket.
type dtlsEndpoint struct {
	f           *Flow
	muted       atomic.Bool // writes are dropped (the DTLS state is being released)
	established atomic.Bool // the handshake finished and the flow is keyed
	budget      rateBudget  // records handed to pion once established; only push uses it
	held        *packet     // a datagram that did not fit the last Read; only Read uses it
	sawCCS      bool        // the peer's ChangeCipherSpec has arrived; only the reader uses it
	in          chan *packet
	closed      chan struct{}
	arrived     chan struct{} // closed when the first record was queued
	sawFirst    bool          // arrived is closed; only push uses it

	flightMu  sync.Mutex
	flight    [][]byte // the datagrams written since the last Read, until established
	newFlight bool     // a Read returned since the last Write

	once sync.Once
	rdl  *deadline
}

func newDTLSEndpoint(f *Flow) *dtlsEndpoint {
	return &dtlsEndpoint{f: f, in: make(chan *packet, dtlsQueueLen), closed: make(chan struct{}),
		arrived: make(chan struct{}), rdl: newDeadline()}
}

func (e *dtlsEndpoint) push(pkt *packet) bool {
	select {
	case <-e.closed:
		e.f.stats.dropped[DropUnexpected].Add(1)
		return false
	default:
	}
	if !e.sawCCS {
		pkt.n, e.sawCCS = stripEarlyEpochs(pkt.buf[:pkt.n])
		if pkt.n == 0 {
			e.f.stats.dropped[DropUnexpected].Add(1)
			return false
		}
	}
	if e.established.Load() {
		// Once keyed, only records protected under the current epoch can end
		// or change the association (RFC 6347 §4.1.2.7): an epoch-0 alert or
		// application-data record is unauthenticated and discarded. Epoch-0
		// handshake and ChangeCipherSpec records stay: they are the peer's
		// retransmitted final flight, which must be answered. What is left is
		// rate-limited, so a flood of forged records costs a classification
		// and a drop each, not a pion record decryption.
		pkt.n = stripUnauthenticated(pkt.buf[:pkt.n])
		if pkt.n == 0 || !e.budget.take(clock()) {
			e.f.stats.dropped[DropUnexpected].Add(1)
			return false
		}
	}
	select {
	case e.in <- pkt:
		if !e.sawFirst {
			e.sawFirst = true
			close(e.arrived)
		}
		return true
	default:
		e.f.stats.dropped[DropQueueFull].Add(1)
		return false
	}
}

// Read returns the next DTLS datagram, joined with the ones already waiting
// behind it while they fit in p (RFC 6347 §4.1.1 allows several records per
// datagram). Handing pion/dtls v2 a whole flight at once matters: it queues
// records of the next epoch as slices of its pooled read buffer and reuses
// that buffer for the next read before it processes them, so a flight split
// over several reads can have its Finished overwritten (a data race inside
// pion/dtls v2.2.12). With the flight in one read, pion processes the queued
// records before it reads again.
func (e *dtlsEndpoint) Read(p []byte) (n int, err error) {
	defer func() {
		if n > 0 {
			e.flightMu.Lock()
			e.newFlight = true
			e.flightMu.Unlock()
		}
	}()
	if pkt := e.held; pkt != nil {
		e.held = nil
		n = copy(p, pkt.buf[:pkt.n])
		putPacket(pkt)
	} else {
		select {
		case pkt := <-e.in:
			n = copy(p, pkt.buf[:pkt.n])
			putPacket(pkt)
		case <-e.closed:
			return 0, net.ErrClosed
		case <-e.rdl.wait():
			return 0, errTimeout
		}
	}
	var wait *time.Timer
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	for n < len(p) {
		var more <-chan time.Time
		if endsWithCCS(p[:n]) {
			// The Finished of this flight follows the ChangeCipherSpec at
			// once; wait briefly for it so that pion gets both in one read.
			if wait == nil {
				wait = time.NewTimer(ccsJoinWait)
			}
			more = wait.C
		}
		select {
		case pkt := <-e.in:
			if pkt.n > len(p)-n {
				e.held = pkt
				return n, nil
			}
			n += copy(p[n:], pkt.buf[:pkt.n])
			putPacket(pkt)
			continue
		case <-more:
		default:
			if more != nil {
				select {
				case pkt := <-e.in:
					if pkt.n > len(p)-n {
						e.held = pkt
						return n, nil
					}
					n += copy(p[n:], pkt.buf[:pkt.n])
					putPacket(pkt)
					continue
				case <-more:
				case <-e.closed:
				}
			}
		}
		break
	}
	return n, nil
}

// stripEarlyEpochs removes from the DTLS datagram b, in place, the records of
// epoch 1 and later that do not follow a ChangeCipherSpec, and returns the new
// length and whether a ChangeCipherSpec was seen. In a new association the
// peer cannot send such records before its ChangeCipherSpec (RFC 6347 §4.1);
// they are leftovers of a previous association, such as its close_notify.
// Dropping them also keeps them out of pion/dtls v2's queue of next-epoch
// records, which aliases its reused read buffer (a data race in v2.2.12).
func stripEarlyEpochs(b []byte) (int, bool) {
	out, sawCCS := 0, false
	for i := 0; len(b)-i >= 13; {
		size := 13 + (int(b[i+11])<<8 | int(b[i+12]))
		if size > len(b)-i {
			break
		}
		epoch := int(b[i+3])<<8 | int(b[i+4])
		if sawCCS || epoch == 0 {
			if b[i] == 20 {
				sawCCS = true
			}
			out += copy(b[out:], b[i:i+size])
		}
		i += size
	}
	return out, sawCCS
}

// stripUnauthenticated removes from the DTLS datagram b, in place, the
// records of epoch 0 that are neither handshake (22) nor ChangeCipherSpec (20),
// and anything that does not parse as a record, and returns the new length.
func stripUnauthenticated(b []byte) int {
	out := 0
	for i := 0; len(b)-i >= 13; {
		size := 13 + (int(b[i+11])<<8 | int(b[i+12]))
		if size > len(b)-i {
			break
		}
		epoch := int(b[i+3])<<8 | int(b[i+4])
		if epoch != 0 || b[i] == 22 || b[i] == 20 {
			out += copy(b[out:], b[i:i+size])
		}
		i += size
	}
	return out
}

// rateBudget is a token bucket of dtlsBurst datagrams refilled at dtlsRate per
// second, for the DTLS records of an established association.
type rateBudget struct {
	tokens float64
	last   time.Duration
	init   bool
}

const (
	dtlsRate  = 50
	dtlsBurst = 20
)

func (r *rateBudget) take(now time.Duration) bool {
	if !r.init {
		r.tokens, r.last, r.init = dtlsBurst, now, true
	}
	r.tokens += (now - r.last).Seconds() * dtlsRate
	r.last = now
	if r.tokens > dtlsBurst {
		r.tokens = dtlsBurst
	}
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// ccsJoinWait bounds how long Read waits for the record that follows a
// ChangeCipherSpec.
const ccsJoinWait = 50 * time.Millisecond

// endsWithCCS reports whether the last DTLS record in b is a ChangeCipherSpec
// (content type 20, RFC 6347 §4.1).
func endsWithCCS(b []byte) bool {
	last := byte(0)
	for len(b) >= 13 {
		size := 13 + (int(b[11])<<8 | int(b[12]))
		if size > len(b) {
			return false
		}
		last, b = b[0], b[size:]
	}
	return last == 20 && len(b) == 0
}

func (e *dtlsEndpoint) Write(p []byte) (int, error) {
	select {
	case <-e.closed:
		return 0, net.ErrClosed
	default:
	}
	if e.muted.Load() {
		return len(p), nil
	}
	dst := e.f.ActiveDestination()
	if !dst.IsValid() {
		return 0, ErrNoDestination
	}
	if !e.established.Load() {
		e.flightMu.Lock()
		if e.newFlight {
			e.flight, e.newFlight = nil, false
		}
		e.flight = append(e.flight, bytes.Clone(p))
		e.flightMu.Unlock()
	}
	return e.f.sendRaw(p, dst)
}

// lastFlight returns the datagrams of the last flight written before the
// association was established.
func (e *dtlsEndpoint) lastFlight() [][]byte {
	e.flightMu.Lock()
	defer e.flightMu.Unlock()
	fl := e.flight
	e.flight = nil
	return fl
}

func (e *dtlsEndpoint) Close() error {
	e.once.Do(func() {
		close(e.closed)
		e.rdl.stop()
		// held belongs to Read, which pion has stopped calling by now or
		// will find e.closed; it is left to the garbage collector.
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
