package flow

import "sync"

// Defaults of NewDTLSBudget.
const (
	// DefaultDTLSHandshakes is how many DTLS handshakes in the client role a
	// budget lets run at once when NewDTLSBudget is given zero. A handshake
	// costs about 1.2 ms of CPU per side on loopback; 32 at once keep two
	// cores busy while the memory of the handshakes in flight stays bounded.
	DefaultDTLSHandshakes = 32
	// DefaultDTLSLingering is how many keyed associations of a budget keep
	// their DTLS state for the linger period when NewDTLSBudget is given zero.
	DefaultDTLSLingering = 32
)

// DTLSBudget bounds the DTLS-SRTP work of a group of flows (those of one
// flowmanager.Manager): how many handshakes in the client role run at once,
// and how many keyed associations keep pion's DTLS state for Config.DTLSLinger.
//
// Handshakes: a flow in the client role waits for a slot before it sends its
// ClientHello and frees it when the handshake ends; the wait counts against
// nothing but the flow's Close and StartDTLS. Server-role handshakes take no
// slot: they only work in answer to a client's flights, and a server that
// waited for a slot held by its own client (both ends in one process) would
// deadlock. Bounding the handshakes in flight bounds the memory they use at
// once (each holds some 100-150 KiB of pion state while it runs), which is
// what the process keeps mapped afterwards; it also avoids the lost flights
// and one-second retransmissions of thousands of handshakes started at once.
//
// Lingering: the DTLS state of a keyed association (pion's conn, its
// goroutines and handshake cache, some 150 KiB) is kept only so that a
// peer's close_notify or fatal alert is reported. At most the budget's
// lingering count keep it for the linger period; the state of any other
// association is released as soon as it is keyed. A released association
// still answers a retransmission of the peer's final flight (RFC 6347
// §4.2.4) with a copy of the flight it sent last, but the peer's
// close_notify or alerts are then no longer authenticated and are dropped:
// the end of such an association is noticed by the application's own means
// (RTP inactivity, ICE consent, signalling).
//
// A nil *DTLSBudget bounds nothing (every association lingers). All methods
// are safe for concurrent use.
type DTLSBudget struct {
	slots     chan struct{}
	maxLinger int // < 0: unbounded

	mu        sync.Mutex
	lingering int
}

// NewDTLSBudget returns a budget of handshakes concurrent client-role
// handshakes and lingering associations that keep their DTLS state after
// keying. Zero means the defaults (DefaultDTLSHandshakes,
// DefaultDTLSLingering); negative means no bound.
func NewDTLSBudget(handshakes, lingering int) *DTLSBudget {
	b := &DTLSBudget{maxLinger: lingering}
	if handshakes == 0 {
		handshakes = DefaultDTLSHandshakes
	}
	if handshakes > 0 {
		b.slots = make(chan struct{}, handshakes)
	}
	if lingering == 0 {
		b.maxLinger = DefaultDTLSLingering
	}
	return b
}

// acquire waits for a handshake slot until done is closed; it reports whether
// it got one.
func (b *DTLSBudget) acquire(done <-chan struct{}) bool {
	if b == nil || b.slots == nil {
		return true
	}
	select {
	case b.slots <- struct{}{}:
		return true
	case <-done:
		return false
	}
}

// release frees a slot taken by acquire.
func (b *DTLSBudget) release() {
	if b == nil || b.slots == nil {
		return
	}
	<-b.slots
}

// takeLinger reports whether one more keyed association may keep its DTLS
// state; a true answer must be returned with giveLinger.
func (b *DTLSBudget) takeLinger() bool {
	if b == nil || b.maxLinger < 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lingering >= b.maxLinger {
		return false
	}
	b.lingering++
	return true
}

// giveLinger returns what takeLinger granted.
func (b *DTLSBudget) giveLinger() {
	if b == nil || b.maxLinger < 0 {
		return
	}
	b.mu.Lock()
	b.lingering--
	b.mu.Unlock()
}

// Lingering returns how many keyed associations keep their DTLS state now.
func (b *DTLSBudget) Lingering() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lingering
}
