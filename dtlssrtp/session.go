package dtlssrtp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/reflow-go/reflow/srtp"
)

// Session is one established DTLS-SRTP association, made by Handshake. It
// holds the negotiated SRTP profile and the keys exported from the
// handshake, and watches the association: a goroutine reads the DTLS conn
// so that alerts and close_notify are processed (application data is not
// expected on a DTLS-SRTP association and is discarded), and Done is closed
// when the association ends. Close must be called in every case to release
// the conn. All methods are safe for concurrent use.
type Session struct {
	conn    *dtls.Conn
	wire    *wireConn
	role    Role
	suite   srtp.Suite
	local   srtp.Keys
	remote  srtp.Keys
	v       *Verifier
	log     *slog.Logger
	started time.Time

	done chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	cause error // why we are ending it (Close, late fingerprint mismatch)
	err   error // final, set once before done is closed
	onEnd func(error)
	ended bool

	dtlsOnce  sync.Once
	dtlsErr   error
	closeOnce sync.Once
	closeErr  error
}

// testHookWatchRead, when set by a test, runs before every read of the
// watcher goroutine (used to inject a panic).
var testHookWatchRead func()

// OnEnd registers fn to be called once, with the value Err will return, when
// the association ends; if it has ended already, fn is called at once. fn runs
// on the session's own goroutine (or the caller's) and must not call Close.
// It lets a caller learn of the end without parking a goroutine on Done.
func (s *Session) OnEnd(fn func(error)) {
	s.mu.Lock()
	if s.ended {
		err := s.err
		s.mu.Unlock()
		fn(err)
		return
	}
	s.onEnd = fn
	s.mu.Unlock()
}

// Role returns our DTLS role in this association.
func (s *Session) Role() Role { return s.role }

// Suite returns the SRTP protection profile negotiated in the handshake (the
// first profile of the client's list that the server also offered).
func (s *Session) Suite() srtp.Suite { return s.suite }

// Keys returns the SRTP master keys and salts exported from the handshake
// with the RFC 5764 §4.2 exporter ("EXTRACTOR-dtls_srtp"): local is what we
// encrypt with (the client_write keys when we are the client), remote what
// the peer encrypts with and we decrypt with. Both carry Suite(); MKI is
// nil (use_srtp negotiates none). The slices are fresh copies.
func (s *Session) Keys() (local, remote srtp.Keys) {
	return cloneKeys(s.local), cloneKeys(s.remote)
}

func cloneKeys(k srtp.Keys) srtp.Keys {
	return srtp.Keys{Suite: k.Suite, Key: bytes.Clone(k.Key), Salt: bytes.Clone(k.Salt), MKI: bytes.Clone(k.MKI)}
}

// Verifier returns the Verifier that checks the peer's certificate (the one
// given to Handshake, or the one Handshake made when it was given nil).
func (s *Session) Verifier() *Verifier { return s.v }

// PeerCertificate returns a copy of the peer's DER-encoded certificate.
func (s *Session) PeerCertificate() []byte { return s.v.PeerCertificate() }

// Done returns a channel that is closed when the association has ended: the
// peer sent close_notify or a fatal alert, the conn was closed under the
// Session, a fingerprint set later did not match, or Close was called.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns nil while the association is up, and afterwards why it ended:
// an error matching ErrClosed and net.ErrClosed after Close; ErrPeerClosed
// and io.EOF after the peer's close_notify; ErrFatalAlert after a fatal
// alert from the peer (its description is encrypted and not known);
// ErrFingerprintMismatch after SetFingerprint on the Verifier found a
// mismatch; net.ErrClosed when the conn given to Handshake was closed or
// failed under the Session.
func (s *Session) Err() error {
	select {
	case <-s.done:
	default:
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the association: it sends close_notify to the peer, closes the
// DTLS conn and with it the net.Conn given to Handshake (pion's dtls.Conn
// always closes the conn under it), and waits for the goroutines the
// Session and pion started. Afterwards Done is closed. Close is idempotent;
// only the first call can return an error (a failure to close the conn
// other than it being closed already).
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.setCause(&kindError{msg: ErrClosed.Error(), errs: []error{ErrClosed, net.ErrClosed}})
		s.v.unbind()
		err := s.closeDTLS()
		s.wg.Wait()
		if err != nil && !isClosedErr(err) {
			s.closeErr = fmt.Errorf("dtlssrtp: close: %w", err)
		}
		s.log.Debug("dtls session closed", slog.Duration("lifetime", time.Since(s.started)))
	})
	return s.closeErr
}

func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, dtls.ErrConnClosed) || errors.Is(err, io.EOF)
}

// fail ends the association because of err (the Verifier's late mismatch)
// and returns once Done is closed.
func (s *Session) fail(err error) {
	s.setCause(err)
	_ = s.closeDTLS()
	<-s.done
}

func (s *Session) setCause(err error) {
	s.mu.Lock()
	if s.cause == nil {
		s.cause = err
	}
	s.mu.Unlock()
}

func (s *Session) closeDTLS() error {
	s.dtlsOnce.Do(func() {
		s.wire.expectLocalClose()
		s.dtlsErr = s.conn.Close()
	})
	return s.dtlsErr
}

// watch reads the DTLS conn until it ends. pion's read loop handles alerts;
// its Read returns io.EOF once that loop has stopped.
func (s *Session) watch() {
	defer s.wg.Done()
	var end error
	defer func() {
		if r := recover(); r != nil {
			end = fmt.Errorf("dtlssrtp: panic in DTLS read: %v", r)
			s.log.Error("dtls watcher panicked", slog.Any("panic", r))
			s.setCause(end)
			_ = s.closeDTLS()
			end = s.endCause()
		}
		s.mu.Lock()
		s.err = end
		s.ended = true
		fn := s.onEnd
		s.mu.Unlock()
		close(s.done)
		if fn != nil {
			fn(end)
		}
	}()
	// DTLS-SRTP carries no application data; a small buffer keeps this
	// goroutine's stack small (a large one would sit on it).
	buf := make([]byte, 2048)
	var (
		errs        int
		windowStart = time.Now()
	)
	for {
		if testHookWatchRead != nil {
			testHookWatchRead()
		}
		n, err := s.conn.Read(buf)
		switch {
		case err == nil:
			s.log.Debug("discarding DTLS application data", slog.Int("bytes", n))
			continue
		case errors.Is(err, io.EOF):
			end = s.endCause()
			s.log.Debug("dtls association ended", slog.Any("reason", end))
			return
		}
		// A non-fatal error: a warning alert, a bad record, an ICMP error.
		// pion keeps the association; so do we, unless errors come in a
		// flood, which would mean the conn under us is broken.
		s.wire.resetOutAlerts()
		s.log.Debug("dtls read error", slog.Any("error", err))
		if time.Since(windowStart) > time.Second {
			windowStart, errs = time.Now(), 0
		}
		if errs++; errs > maxReadErrorsPerSecond {
			s.setCause(wrapErr(nil, "too many DTLS read errors", err))
			_ = s.closeDTLS()
			end = s.endCause()
			return
		}
	}
}

// maxReadErrorsPerSecond ends a Session whose conn keeps failing.
const maxReadErrorsPerSecond = 100

// endCause decides why the association ended.
func (s *Session) endCause() error {
	s.mu.Lock()
	cause := s.cause
	s.mu.Unlock()
	if cause != nil {
		return cause
	}
	closedHere, outAlerts, readErr := s.wire.endState()
	switch {
	case closedHere && outAlerts > 0:
		// pion answered the peer's close_notify, then closed the conn.
		return &kindError{msg: ErrPeerClosed.Error() + " (close_notify)", errs: []error{ErrPeerClosed, io.EOF}}
	case closedHere:
		// pion closed the conn after an alert without answering: fatal.
		return &kindError{msg: ErrFatalAlert.Error(), errs: []error{ErrFatalAlert}}
	case readErr != nil:
		return &kindError{
			msg:  "dtlssrtp: conn closed under the session: " + readErr.Error(),
			errs: []error{net.ErrClosed, readErr},
		}
	}
	return &kindError{msg: "dtlssrtp: association ended", errs: []error{io.EOF}}
}
