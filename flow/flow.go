package flow

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/internal/batchio"
	"github.com/reflow-go/reflow/internal/pionlog"
	"github.com/reflow-go/reflow/natmode"
	"github.com/reflow-go/reflow/srtp"
)

// MaxPacketSize is the largest media packet a flow sends or delivers. Received
// datagrams that do not fit the flow's 2048-byte receive buffer are dropped as
// DropOversize; writes above MaxPacketSize fail with ErrPacketTooLarge.
const MaxPacketSize = 1900

// bufSize is the receive buffer; a datagram that fills it completely was (or may
// have been) truncated by the kernel and is dropped.
const bufSize = 2048

// DefaultQueueLen is the receive queue length used when Config.QueueLen is zero.
const DefaultQueueLen = 128

// Latching defaults (Config.LatchSilence, Config.LatchPackets).
const (
	DefaultLatchSilence = 2 * time.Second
	DefaultLatchPackets = 5
)

// EventKind tells what happened to a flow.
type EventKind int

// The flow events.
const (
	// EventReady: the flow's NAT setup finished; its session tuple is final.
	EventReady EventKind = iota + 1
	// EventError: the flow failed (before or after it was ready); Event.Err says why.
	EventError
	// EventKeyed: the flow has SRTP keys in both directions now (SDES keys set,
	// or a DTLS-SRTP association verified and keyed). Event.Keyed describes them.
	EventKeyed
	// EventSourceChanged: a latching flow adopted a new media source as its
	// active destination (Event.From is the old one, zero for the first).
	EventSourceChanged
)

// Keyed describes how a flow's media is protected, in an EventKeyed.
type Keyed struct {
	// Suite is the SRTP protection profile in use.
	Suite srtp.Suite
	// DTLS is true when the keys come from a DTLS-SRTP association, false for SDES.
	DTLS bool
	// Role is our DTLS role (DTLS only).
	Role dtlssrtp.Role
	// PeerFingerprint is the pinned fingerprint the peer's certificate
	// matched (DTLS only).
	PeerFingerprint dtlssrtp.Fingerprint
}

// Event is a change of a flow's state, passed to Config.OnEvent.
type Event struct {
	Flow *Flow
	Kind EventKind
	Err  error // an *Error for EventError
	// Keyed is set for EventKeyed.
	Keyed Keyed
	// From and To are the old and new source of an EventSourceChanged.
	From, To netip.AddrPort
}

// Config configures one flow. Zero fields take the documented defaults.
type Config struct {
	// Component is RTP or RTCP; it only names the flow in errors and logs. Zero means RTP.
	Component Component
	// NAT is the traversal mode, server and credentials.
	NAT natmode.Config
	// Secure makes the flow refuse media in clear from the moment it exists:
	// writes fail with ErrNotSecure until outbound SRTP keys are set, and
	// received media is dropped (DropNotSecure) until inbound keys are set,
	// whatever the order in which destinations and keys are given. A stream
	// configured for SDES or DTLS-SRTP sets it.
	Secure bool
	// Latch makes the flow adopt the source of the first genuine media packet
	// as its active destination (symmetric RTP, "comedia"), instead of
	// dropping media from addresses other than the active destination. A
	// packet is genuine when it passed every check, SRTP authentication and
	// replay protection included on a keyed flow. The first packet latches
	// (after each SetActiveDestination, and before the first call); after
	// that a new source takes over only when the learned one has been silent
	// for LatchSilence and the new one sent LatchPackets consecutive genuine
	// packets meanwhile, so that a stranger's packets cannot hijack a live
	// call ("RTP Bleed", CVE-2017-14099). Every switch is reported as an
	// EventSourceChanged.
	Latch bool
	// LatchSilence is how long the learned source must have been silent before
	// another may take over; zero means DefaultLatchSilence.
	LatchSilence time.Duration
	// LatchPackets is how many consecutive genuine packets a new source must
	// send before it takes over; zero means DefaultLatchPackets.
	LatchPackets int
	// QueueLen bounds the receive queue of media packets; what overflows is
	// dropped and counted as DropQueueFull. Zero means DefaultQueueLen.
	QueueLen int
	// Logger receives the flow's (and pion's) log records. Nil discards them.
	Logger *slog.Logger
	// DTLSLinger is how long a DTLS-SRTP association keeps its DTLS state
	// once the flow is keyed; then the state is dropped (the keys stay) and
	// DTLS records from the peer are no longer answered. Zero means
	// DefaultDTLSLinger (30 s, well past any retransmission of the final
	// flight); negative keeps the state for the association's whole life,
	// so that a peer's close_notify or alert is reported.
	DTLSLinger time.Duration
	// DTLSBudget, shared by the flows of one manager, bounds the client-role
	// DTLS handshakes running at once and the keyed associations that keep
	// their DTLS state for DTLSLinger; the others release it as soon as they
	// are keyed (see DTLSBudget). Nil bounds nothing.
	DTLSBudget *DTLSBudget
	// OnEvent is called when the flow becomes ready or fails. It is called from
	// the flow's own goroutines and must not block or call back into the flow.
	OnEvent func(Event)
}

// Flow is one socket carrying one media component (reflow's Flow). It implements
// net.PacketConn: the application writes and reads plain RTP/RTCP; STUN, TURN,
// DTLS and SRTP are handled inside.
//
// A flow has one reader goroutine that owns its socket and sorts every datagram
// by its first byte (RFC 7983): STUN/TURN to the NAT client, DTLS to the DTLS
// association, RTP/RTCP to a bounded receive queue read by ReadFrom.
//
// All methods are safe for concurrent use.
type Flow struct {
	cfg   Config
	log   *slog.Logger
	conn  PacketConn // the UDP socket; nil for TURN over TCP/TLS until dialled
	local Tuple

	dst atomic.Pointer[destination] // read on every packet, so not under mu

	mu        sync.Mutex
	reflexive Tuple
	relayed   Tuple

	ready   atomic.Bool
	closed  atomic.Bool
	done    chan struct{} // closed when Close has finished
	stopped chan struct{} // closed when Close starts
	wg      sync.WaitGroup

	queue     atomic.Pointer[chan *packet] // made on first use: recvQueue
	rdeadline *deadline
	stats     counters

	setupCancel context.CancelFunc
	stunTxn     atomic.Pointer[stunTxn]
	keepalive   *time.Timer
	server      netip.AddrPort // the STUN/TURN server, with its default port

	tok       chan struct{}             // the right to read the UDP socket (direct.go); nil for TCP/TLS
	bgWake    chan struct{}             // wakes the reader goroutine to take the socket back
	grace     *time.Timer               // fires bgWake when the application stays away from ReadFrom
	appWant   atomic.Int32              // application goroutines waiting to read
	directing atomic.Bool               // an application goroutine reads the socket now
	handed    *packet                   // media for that goroutine; only the token holder touches it
	turn      atomic.Pointer[turnState] // TURN modes only

	tx        atomic.Pointer[lazyEncrypter] // outbound SRTP, nil = clear
	rx        atomic.Pointer[lazyDecrypter] // inbound SRTP, nil = clear
	secure    atomic.Bool                   // refuse clear media (SRTP configured or DTLS-SRTP expected)
	keyed     atomic.Bool                   // EventKeyed was emitted for the current keys
	latch     latchState                    // Latch: candidate source; only the socket reader touches it
	dtls      atomic.Pointer[dtlsAssoc]     // the current DTLS association
	dtlsStart sync.Mutex                    // serialises StartDTLS
	pins      []dtlssrtp.Fingerprint        // the peer's fingerprints; guarded by mu
	ice       atomic.Pointer[iceState]      // ICE-lite responder credentials, nil = off
	// earlyHello is a DTLS ClientHello that arrived before StartDTLS (the
	// reader keeps the latest; StartDTLS takes it).
	earlyHello atomic.Pointer[packet]
	bio        *batchio.Conn // batched reads and writes (batch.go); nil where unavailable
	rb         batchRx       // the batch being read; only the token holder touches it
}

// destination is the active destination, replaced as a whole.
type destination struct {
	ap        netip.AddrPort
	addr      net.Addr // ap as a net.Addr, shared by every ReadFrom from it
	latchOpen bool     // Latch: the next genuine media source becomes the destination
}

// packet is a pooled receive buffer.
type packet struct {
	buf  [bufSize]byte
	n    int
	from netip.AddrPort
	addr net.Addr
	// relayed: the datagram came through the TURN server (ICE answers on that path)
	relayed bool
}

var packetPool = sync.Pool{New: func() any { return new(packet) }}

func getPacket() *packet  { return packetPool.Get().(*packet) }
func putPacket(p *packet) { p.addr = nil; packetPool.Put(p) }

// New starts a flow on conn, which the flow owns from now on (Close closes it),
// and begins its NAT setup in the background: ready or failure is reported
// through cfg.OnEvent. ctx bounds the setup only (STUN binding, TURN
// allocation); cancelling it after the flow is ready has no effect.
//
// For TURN over TCP or TLS, conn is only the local binding: the flow dials the
// server from the same local IP address.
func New(ctx context.Context, conn PacketConn, cfg Config) (*Flow, error) {
	if err := cfg.NAT.Validate(); err != nil {
		return nil, err
	}
	if cfg.Component == 0 {
		cfg.Component = RTP
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.LatchSilence <= 0 {
		cfg.LatchSilence = DefaultLatchSilence
	}
	if cfg.LatchPackets <= 0 {
		cfg.LatchPackets = DefaultLatchPackets
	}
	local, ok := addrPortOf(conn.LocalAddr())
	if !ok {
		return nil, &Error{cfg.Component, "bind", ErrInvalidAddress}
	}
	f := &Flow{
		cfg:       cfg,
		log:       pionlog.Discard,
		conn:      conn,
		local:     Tuple{UDP, local},
		done:      make(chan struct{}),
		stopped:   make(chan struct{}),
		rdeadline: newDeadline(),
		server:    unmap(cfg.NAT.ServerAddr()),
	}
	f.dst.Store(&destination{latchOpen: cfg.Latch})
	f.secure.Store(cfg.Secure)
	if cfg.Logger != nil { // With clones the handler: not for the discard logger
		f.log = cfg.Logger.With("component", cfg.Component.String())
	}
	sctx, cancel := context.WithCancel(ctx)
	f.setupCancel = cancel
	if cfg.NAT.Mode == natmode.TURNTCP || cfg.NAT.Mode == natmode.TURNTLS {
		// The UDP socket only named the local address: the flow dials the
		// server from that IP and reads the connection instead.
		conn.Close()
		f.conn = nil
	} else {
		f.initDirect()
		f.initBatch()
		f.tok <- struct{}{}
		f.wg.Add(1)
		go f.readLoop()
	}
	f.wg.Add(1)
	go f.setup(sctx)
	return f, nil
}

// setup runs the NAT step for the flow's mode and reports the outcome.
func (f *Flow) setup(ctx context.Context) {
	defer f.wg.Done()
	defer f.setupCancel()
	var err error
	switch f.cfg.NAT.Mode {
	case natmode.None:
	case natmode.STUNBinding:
		err = f.discover(ctx)
	default:
		err = f.setupTURN(ctx)
	}
	if f.closed.Load() {
		return
	}
	if err != nil {
		f.fail(err)
		return
	}
	f.ready.Store(true)
	f.emit(Event{Flow: f, Kind: EventReady})
}

func (f *Flow) emit(ev Event) {
	if f.cfg.OnEvent != nil && !f.closed.Load() {
		f.cfg.OnEvent(ev)
	}
}

// fail reports err (an *Error) unless the flow is closed.
func (f *Flow) fail(err error) {
	f.log.Warn("flow failed", "err", err)
	f.emit(Event{Flow: f, Kind: EventError, Err: err})
}

// Component returns the component the flow carries.
func (f *Flow) Component() Component { return f.cfg.Component }

// Mode returns the flow's NAT traversal mode.
func (f *Flow) Mode() natmode.Mode { return f.cfg.NAT.Mode }

// IsReady reports whether the flow's NAT setup has finished.
func (f *Flow) IsReady() bool { return f.ready.Load() }

// Done is closed when the flow is closed.
func (f *Flow) Done() <-chan struct{} { return f.done }

// LocalTuple returns the local socket address (for TURN over TCP/TLS, the local
// end of the connection to the server, known once connected).
func (f *Flow) LocalTuple() Tuple {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.local
}

// ReflexiveTuple returns the server-reflexive address learnt from STUN or from
// the TURN allocate response, or the zero Tuple.
func (f *Flow) ReflexiveTuple() Tuple {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reflexive
}

// RelayTuple returns the relayed address of the TURN allocation, or the zero Tuple.
func (f *Flow) RelayTuple() Tuple {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.relayed
}

// SessionTuple returns the address to advertise to the peer (in SDP): the relayed
// address in TURN modes, the reflexive address in STUN mode, else the local one.
func (f *Flow) SessionTuple() Tuple {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.cfg.NAT.Mode.IsTURN():
		return f.relayed
	case f.cfg.NAT.Mode == natmode.STUNBinding:
		return f.reflexive
	}
	return f.local
}

// LocalAddr returns the local socket address (net.PacketConn).
func (f *Flow) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(f.LocalTuple().Addr) }

// ActiveDestination returns where Write sends, or the zero AddrPort.
func (f *Flow) ActiveDestination() netip.AddrPort {
	return f.dst.Load().ap
}

// SetActiveDestination sets the peer that Write sends to and that media is
// accepted from. With Latch on, the next media source may replace it once. In
// TURN modes it also creates a permission and binds a channel for the peer
// (in the background; failures reach OnEvent).
func (f *Flow) SetActiveDestination(dst netip.AddrPort) error {
	if f.closed.Load() {
		return ErrClosed
	}
	dst = unmap(dst)
	if !dst.IsValid() || dst.Port() == 0 {
		return ErrInvalidAddress
	}
	f.dst.Store(&destination{ap: dst, addr: net.UDPAddrFromAddrPort(dst), latchOpen: f.cfg.Latch})
	f.onDestination(dst)
	return nil
}

// Stats returns the flow's counters.
func (f *Flow) Stats() Stats { return f.stats.snapshot() }

// recvQueue returns the queue of media for the application, made on first
// use (the first media packet, or the first read): a flow that nobody reads
// and that receives no media holds none.
func (f *Flow) recvQueue() chan *packet {
	if q := f.queue.Load(); q != nil {
		return *q
	}
	q := make(chan *packet, f.cfg.QueueLen)
	if f.queue.CompareAndSwap(nil, &q) {
		return q
	}
	return *f.queue.Load()
}

// Close stops the flow: it cancels setup, releases a TURN allocation, closes the
// socket and waits for the flow's goroutines. It is idempotent and safe from any
// goroutine except an OnEvent callback.
func (f *Flow) Close() error {
	if !f.closed.CompareAndSwap(false, true) {
		<-f.done
		return nil
	}
	close(f.stopped)
	f.setupCancel()
	if f.grace != nil {
		f.grace.Stop()
	}
	f.mu.Lock()
	if f.keepalive != nil {
		f.keepalive.Stop()
	}
	f.mu.Unlock()
	f.stopDTLS()
	f.closeNAT()
	f.stopICE() // after closeNAT: closing the TURN client ends a permission in flight
	var err error
	if f.conn != nil {
		err = f.conn.Close()
	}
	f.rdeadline.stop()
	f.wg.Wait()
	for q := f.queue.Load(); q != nil; { // return queued buffers to the pool
		select {
		case p := <-*q:
			putPacket(p)
			continue
		default:
		}
		break
	}
	close(f.done)
	return err
}
