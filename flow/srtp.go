package flow

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/reflow-go/reflow/internal/demux"
	"github.com/reflow-go/reflow/srtp"
)

// ErrNotSecure is returned by writes on a flow that requires SRTP (DTLS-SRTP
// expected) before its keys exist: no media goes out in clear.
var ErrNotSecure = errors.New("flow: media is not secured yet")

// SetOutboundSRTP protects everything the application writes from now on
// with k (SRTP for RTP, SRTCP for RTCP). It may be called at any time, also to
// re-key while media flows. Nil keys (the zero Keys) turn protection off.
//
// On a flow with Config.Secure, the zero Keys do not turn protection off:
// writes fail with ErrNotSecure until keys are set again.
func (f *Flow) SetOutboundSRTP(k srtp.Keys) error {
	if err := f.setTx(k); err != nil {
		return err
	}
	f.checkKeyed(Keyed{Suite: k.Suite})
	return nil
}

func (f *Flow) setTx(k srtp.Keys) error {
	if f.closed.Load() {
		return ErrClosed
	}
	if k.Suite == 0 {
		f.dropKeys(true, false)
		return nil
	}
	if err := k.Validate(); err != nil {
		return &Error{f.cfg.Component, "outbound SRTP", err}
	}
	f.tx.Store(&lazyEncrypter{keys: k})
	return nil
}

// dropKeys forgets the outbound and/or inbound keys.
func (f *Flow) dropKeys(tx, rx bool) {
	if tx {
		f.tx.Store(nil)
	}
	if rx {
		f.rx.Store(nil)
	}
	f.keyed.Store(false)
}

// checkKeyed emits EventKeyed once when the flow has keys in both directions.
func (f *Flow) checkKeyed(k Keyed) {
	if f.IsSecure() && f.keyed.CompareAndSwap(false, true) {
		f.emit(Event{Flow: f, Kind: EventKeyed, Keyed: k})
	}
}

// SetInboundSRTP authenticates and decrypts every received media packet with
// k from now on; packets that fail authentication or replay protection
// (window replayWindow: 0 means srtp.DefaultReplayWindow, negative turns it
// off) are dropped and counted, never delivered. It may be called at any time
// to re-key. The zero Keys turn unprotection off.
func (f *Flow) SetInboundSRTP(k srtp.Keys, replayWindow int) error {
	if err := f.setRx(k, replayWindow); err != nil {
		return err
	}
	f.checkKeyed(Keyed{Suite: k.Suite})
	return nil
}

func (f *Flow) setRx(k srtp.Keys, replayWindow int) error {
	if f.closed.Load() {
		return ErrClosed
	}
	if k.Suite == 0 {
		f.dropKeys(false, true)
		return nil
	}
	if err := k.Validate(); err != nil {
		return &Error{f.cfg.Component, "inbound SRTP", err}
	}
	if replayWindow > srtp.MaxReplayWindow {
		return &Error{f.cfg.Component, "inbound SRTP",
			fmt.Errorf("%w: replay window %d above %d", srtp.ErrUnsupportedParam, replayWindow, srtp.MaxReplayWindow)}
	}
	f.rx.Store(&lazyDecrypter{keys: k, window: replayWindow})
	return nil
}

// lazyEncrypter makes its srtp.Encrypter on first use, so that a keyed flow
// that sends nothing holds only its keys, not the cipher state (several KiB
// with AES-GCM: its tables and the derived session keys).
type lazyEncrypter struct {
	keys srtp.Keys
	once sync.Once
	e    atomic.Pointer[srtp.Encrypter] // atomic only so that tests may look
	err  error
}

func (l *lazyEncrypter) get() (*srtp.Encrypter, error) {
	l.once.Do(func() {
		e, err := srtp.NewEncrypter(l.keys)
		l.e.Store(e)
		l.err, l.keys = err, srtp.Keys{}
	})
	return l.e.Load(), l.err
}

// lazyDecrypter is lazyEncrypter for the inbound direction: the decrypter
// is made when the first packet arrives.
type lazyDecrypter struct {
	keys   srtp.Keys
	window int
	once   sync.Once
	d      atomic.Pointer[srtp.Decrypter] // atomic only so that tests may look
	err    error
}

func (l *lazyDecrypter) get() (*srtp.Decrypter, error) {
	l.once.Do(func() {
		d, err := srtp.NewDecrypter(l.keys, l.window)
		l.d.Store(d)
		l.err, l.keys = err, srtp.Keys{}
	})
	return l.d.Load(), l.err
}

// RequireSRTP makes the flow refuse to send or deliver media in clear until
// outbound and inbound keys are set (used for DTLS-SRTP, where keys arrive
// after the handshake). On a flow created with Config.Secure it cannot be
// turned off.
func (f *Flow) RequireSRTP(on bool) { f.secure.Store(on || f.cfg.Secure) }

// Secure reports whether the flow refuses clear media (Config.Secure, or
// DTLS-SRTP started).
func (f *Flow) Secure() bool { return f.secure.Load() }

// protect returns p protected for the wire, in a pooled buffer the caller
// releases with putPacket (nil when no protection applies).
func (f *Flow) protect(p []byte) ([]byte, *packet, error) {
	e, err := f.encrypter()
	if err != nil {
		return nil, nil, err
	}
	if e == nil {
		return p, nil, nil
	}
	pkt := getPacket()
	out, err := f.seal(e, pkt, p)
	if err != nil {
		putPacket(pkt)
		return nil, nil, err
	}
	return out, pkt, nil
}

// encrypter returns the flow's outbound SRTP context: nil without an error
// when media goes clear, ErrNotSecure when it must not.
func (f *Flow) encrypter() (*srtp.Encrypter, error) {
	l := f.tx.Load()
	if l == nil {
		if f.secure.Load() {
			return nil, ErrNotSecure
		}
		return nil, nil
	}
	e, err := l.get()
	if err != nil {
		return nil, fmt.Errorf("%v flow: SRTP protect: %w", f.cfg.Component, err)
	}
	return e, nil
}

// seal protects RTP or RTCP p with e into pkt's buffer.
func (f *Flow) seal(e *srtp.Encrypter, pkt *packet, p []byte) ([]byte, error) {
	var out []byte
	var err error
	if demux.Classify(p) == demux.RTCP {
		out, err = e.ProtectRTCP(pkt.buf[:0], p)
	} else {
		out, err = e.ProtectRTP(pkt.buf[:0], p)
	}
	if err != nil {
		return nil, fmt.Errorf("%v flow: SRTP protect: %w", f.cfg.Component, err)
	}
	return out, nil
}

// unprotect decrypts pkt in place; it reports false (and counts the drop)
// when the packet must not be delivered.
func (f *Flow) unprotect(pkt *packet, kind demux.Kind) bool {
	l := f.rx.Load()
	if l == nil {
		if f.secure.Load() {
			f.stats.dropped[DropNotSecure].Add(1)
			return false
		}
		return true
	}
	d, err := l.get()
	if err != nil {
		f.stats.dropped[DropMalformed].Add(1)
		return false
	}
	b := pkt.buf[:pkt.n]
	var out []byte
	if kind == demux.RTCP {
		out, err = d.UnprotectRTCP(b[:0], b)
	} else {
		out, err = d.UnprotectRTP(b[:0], b)
	}
	switch {
	case err == nil:
		pkt.n = len(out)
		return true
	case errors.Is(err, srtp.ErrReplay):
		f.stats.dropped[DropReplay].Add(1)
	case errors.Is(err, srtp.ErrAuthFailed):
		f.stats.dropped[DropAuth].Add(1)
	default:
		f.stats.dropped[DropMalformed].Add(1)
	}
	return false
}
