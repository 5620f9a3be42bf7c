package flow

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v2"
	"github.com/reflow-go/reflow/internal/demux"
	"github.com/reflow-go/reflow/internal/stunx"
	"github.com/reflow-go/reflow/natmode"
)

// TURN errors, matched with errors.Is.
var (
	// ErrAllocationLost means a TURN allocation ended after it was made: the
	// server did not answer Refresh requests within natmode.Config.Liveness,
	// answered one with a signed error (437: it no longer has the
	// allocation), or the TCP/TLS connection to the server closed.
	ErrAllocationLost = errors.New("flow: TURN allocation lost")
	// ErrTURNAuth means the TURN server refused the credentials (401 after authenticating).
	ErrTURNAuth = errors.New("flow: TURN authentication failed")
	// ErrTURNUnreachable means the TURN server did not answer (or refused the
	// connection, or its name did not resolve) within the timeout.
	ErrTURNUnreachable = errors.New("flow: TURN server unreachable")
	// ErrTURNTLS means the TLS handshake with the TURN server failed (for example an untrusted certificate).
	ErrTURNTLS = errors.New("flow: TURN TLS handshake failed")
	// ErrTURNRejected means the TURN server refused the allocation with another error code.
	ErrTURNRejected = errors.New("flow: TURN allocation rejected")
	// ErrPermissionFailed means a TURN permission or channel binding for a
	// peer (RFC 8656 §9, §12) could not be made or refreshed: refused (then
	// the error also matches ErrPermissionDenied) or not answered in time.
	// The error names the peer.
	ErrPermissionFailed = errors.New("flow: TURN permission failed")
	// ErrPermissionDenied means the TURN server refused a permission or
	// channel binding for a peer (403 Forbidden or another 4xx); it comes
	// wrapped together with ErrPermissionFailed.
	ErrPermissionDenied = errors.New("flow: TURN permission denied")
)

// STUN/TURN methods and attributes (RFC 8656 §17, §18).
const (
	methodAllocate         = stun.MethodAllocate
	methodRefresh          = stun.Method(0x004)
	methodCreatePermission = stun.Method(0x008)
	methodChannelBind      = stun.Method(0x009)
	attrChannelNumber      = stun.AttrType(0x000C)
	attrLifetime           = stun.AttrType(0x000D)
	attrData               = stun.AttrType(0x0013)
	attrXORRelayedAddress  = stun.AttrType(0x0016)
	attrRequestedFamily    = stun.AttrType(0x0017)
	attrRequestedTransport = stun.AttrType(0x0019)
	attrAdditionalFamily   = stun.AttrType(0x8000)
	attrAddressErrorCode   = stun.AttrType(0x8001)
	// coturn (4.6) still uses the code points of the draft that became
	// RFC 8656 for these two; both are comprehension-optional.
	attrAdditionalFamilyDraft = stun.AttrType(0x8032)
	attrAddressErrorCodeDraft = stun.AttrType(0x8033)
	codeAllocMismatch         = 437
	defaultLifetime           = 10 * time.Minute // RFC 8656 §3.2, when a response has no LIFETIME
	deallocWait               = time.Second      // Close waits this long for the answer to Refresh(0)
)

// turnState is the TURN client of a flow: one allocation on one server.
type turnState struct {
	f      *Flow
	server netip.AddrPort // resolved; fixed before the state is published
	tr     Transport      // to the server
	stream net.Conn       // TCP/TLS connection, nil over UDP

	ctx       context.Context // control work; cancelled by closeNAT
	cancel    context.CancelFunc
	setupDone chan struct{}

	authMu             sync.Mutex
	realm, nonce       string
	key                stun.MessageIntegrity
	txMu               sync.Mutex
	txns               map[[stun.TransactionIDSize]byte]*txn
	allocated, lost    atomic.Bool
	allocSent          atomic.Bool // a signed Allocate went out
	lostErr            atomic.Pointer[Error]
	lifetime, expiry   atomic.Int64 // granted lifetime (ns), expiry (unix ns)
	refreshes, probeKO atomic.Uint64
	relays             []Tuple // set once before allocated

	peerState
	framing framingState // TCP/TLS only
}

// setupTURN resolves the server, connects to it (TCP/TLS), allocates a
// relayed address and starts the allocation's refresh/liveness loop.
func (f *Flow) setupTURN(ctx context.Context) error {
	nat := f.cfg.NAT
	ctx, cancel := context.WithTimeout(ctx, nat.TimeoutOrDefault())
	defer cancel()
	server, host, err := f.resolveServer(ctx)
	if err != nil {
		return f.turnErr(fmt.Errorf("%w: %w", ErrTURNUnreachable, err))
	}
	t := &turnState{f: f, server: server, tr: UDP, setupDone: make(chan struct{}),
		txns: make(map[[stun.TransactionIDSize]byte]*txn)}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.initPeers()
	defer close(t.setupDone)

	if nat.Mode == natmode.TURNTCP || nat.Mode == natmode.TURNTLS {
		conn, local, err := f.dialServer(ctx, server, host)
		if err != nil {
			t.cancel()
			return f.turnErr(err)
		}
		t.stream, t.tr = conn, local.Transport
		f.mu.Lock()
		if f.closed.Load() {
			f.mu.Unlock()
			t.cancel()
			conn.Close()
			return ErrClosed
		}
		f.local = local
		f.turn.Store(t)
		f.wg.Add(1)
		f.mu.Unlock()
		go t.streamLoop()
	} else {
		f.mu.Lock()
		if f.closed.Load() {
			f.mu.Unlock()
			t.cancel()
			return ErrClosed
		}
		f.turn.Store(t)
		f.mu.Unlock()
	}
	if err := t.allocate(ctx); err != nil {
		if f.closed.Load() {
			return ErrClosed
		}
		return f.turnErr(err)
	}
	f.mu.Lock()
	closed := f.closed.Load()
	if !closed {
		f.relayed = t.relays[0]
	}
	f.mu.Unlock()
	if closed {
		return ErrClosed // closeNAT, waiting for setupDone, deallocates
	}
	if !t.spawn(t.liveLoop) {
		return ErrClosed
	}
	if d := f.dst.Load().ap; d.IsValid() { // set before the allocation was done
		_, _ = t.peerFor(d)
	}
	if nat.Mode == natmode.TURNUDP && nat.LivenessOrDefault() == 0 {
		f.startKeepaliveTo(server) // no probes: keep the NAT binding open between refreshes
	}
	f.log.Debug("turn allocation done", "relayed", t.relays, "reflexive", f.ReflexiveTuple(), "lifetime", time.Duration(t.lifetime.Load()))
	return nil
}

func (f *Flow) turnErr(err error) error { return &Error{f.cfg.Component, "turn allocate", err} }

// allocate runs the Allocate transaction (RFC 8656 §7.1, §7.3).
func (t *turnState) allocate(ctx context.Context) error {
	f, nat := t.f, t.f.cfg.NAT
	attrs := []stun.Setter{turnAttr{attrRequestedTransport, []byte{17, 0, 0, 0}}}
	switch nat.Family {
	case natmode.FamilyIPv4:
		attrs = append(attrs, turnAttr{attrRequestedFamily, []byte{1, 0, 0, 0}})
	case natmode.FamilyIPv6:
		attrs = append(attrs, turnAttr{attrRequestedFamily, []byte{2, 0, 0, 0}})
	case natmode.FamilyBoth:
		attrs = append(attrs, turnAttr{attrAdditionalFamily, []byte{2, 0, 0, 0}})
	}
	if nat.Lifetime > 0 {
		attrs = append(attrs, lifetimeAttr(nat.Lifetime))
	}
	both := nat.Family == natmode.FamilyBoth
	if both { // also in coturn's draft code point
		attrs = append(attrs, turnAttr{attrAdditionalFamilyDraft, []byte{2, 0, 0, 0}})
	}
	res, err := t.request(ctx, methodAllocate, attrs, rtx{first: stunRTO, max: 8 * time.Second})
	if err == nil && both && errorCode(res) == 400 {
		// A server that knows both code points may refuse the pair:
		// ask again with RFC 8656's alone.
		res, err = t.request(ctx, methodAllocate, attrs[:len(attrs)-1], rtx{first: stunRTO, max: 8 * time.Second})
	}
	switch {
	case err == nil:
	case errors.Is(err, errNoAnswer) || errors.Is(err, context.DeadlineExceeded):
		if t.heardAny() {
			return fmt.Errorf("%w: allocation on %s not done within %v", ErrTURNUnreachable, t.server, nat.TimeoutOrDefault())
		}
		return fmt.Errorf("%w: no answer from %s within %v", ErrTURNUnreachable, t.server, nat.TimeoutOrDefault())
	case errors.Is(err, ErrSocket):
		return fmt.Errorf("%w: %w", ErrTURNUnreachable, err)
	default:
		return err
	}
	if code := errorCode(res); code != 0 {
		switch {
		case code == 401 || (code == 400 && t.hasKey()):
			// RFC 8489 §9.2.4 answers bad credentials with 401; pion/turn
			// answers 400 to an unknown user. Our requests are well formed,
			// so 400 to a signed Allocate means the credentials.
			return fmt.Errorf("%w: %s refused the credentials of %q (%s)", ErrTURNAuth, t.server, nat.Username, errorReason(res))
		case code == 440:
			return fmt.Errorf("%w: error %s from %s: it does not relay the requested address family (natmode.Config.Family %v)", ErrTURNRejected, errorReason(res), t.server, nat.Family)
		}
		return fmt.Errorf("%w: error %s from %s", ErrTURNRejected, errorReason(res), t.server)
	}
	if res.Type.Class != stun.ClassSuccessResponse {
		return fmt.Errorf("%w: unexpected answer %v", ErrTURNRejected, res.Type)
	}
	var relays []Tuple
	for _, a := range res.Attributes {
		if a.Type == attrXORRelayedAddress {
			if ap, ok := xorAddr(a.Value, res.TransactionID); ok {
				relays = append(relays, Tuple{UDP, ap})
			}
		}
	}
	if len(relays) == 0 {
		return fmt.Errorf("%w: %s sent no XOR-RELAYED-ADDRESS", ErrTURNRejected, t.server)
	}
	for _, typ := range []stun.AttrType{attrAddressErrorCode, attrAddressErrorCodeDraft} {
		if v, err := res.Get(typ); err == nil && len(v) >= 8 {
			f.log.Warn("turn server did not allocate the additional address family", "family", v[0], "code", int(v[2]&7)*100+int(v[3]))
		}
	}
	lt := lifetimeOf(res)
	if lt <= 0 {
		lt = defaultLifetime
	}
	t.lifetime.Store(int64(lt))
	t.expiry.Store(time.Now().Add(lt).UnixNano())
	t.relays = relays
	f.mu.Lock()
	if ap, err := stunx.MappedAddress(res); err == nil {
		f.reflexive = Tuple{t.tr, ap}
	}
	f.mu.Unlock()
	t.allocated.Store(true)
	return nil
}

func (t *turnState) hasKey() bool {
	_, _, key := t.credentials()
	return key != nil
}

// heardAny reports whether the server answered anything (it knows a realm).
func (t *turnState) heardAny() bool {
	realm, _, _ := t.credentials()
	return realm != ""
}

func lifetimeAttr(d time.Duration) stun.Setter {
	return turnAttr{attrLifetime, binary.BigEndian.AppendUint32(nil, uint32(d/time.Second))}
}

func lifetimeOf(m *stun.Message) time.Duration {
	v, err := m.Get(attrLifetime)
	if err != nil || len(v) != 4 {
		return 0
	}
	return time.Duration(binary.BigEndian.Uint32(v)) * time.Second
}

// spawn runs fn on a goroutine the flow's Close waits for, unless the flow
// or the TURN client is closing.
func (t *turnState) spawn(fn func()) bool {
	f := t.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Load() || t.ctx.Err() != nil {
		return false
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn()
	}()
	return true
}

// lose reports the loss of the allocation once.
func (f *Flow) lose(why error) {
	t := f.turn.Load()
	if t == nil {
		return
	}
	e := &Error{f.cfg.Component, "turn", fmt.Errorf("%w: %w", ErrAllocationLost, why)}
	if !t.lost.CompareAndSwap(false, true) {
		return
	}
	t.lostErr.Store(e)
	t.cancel() // stop refreshing and binding
	if f.closed.Load() {
		return
	}
	f.ready.Store(false)
	f.fail(e)
}

// turnInbound takes a datagram (or a frame of the TCP/TLS connection) from
// the TURN server. Relayed media (ChannelData, Data indications) goes to
// the media path with the peer as source; responses are matched to the
// client's transactions.
func (f *Flow) turnInbound(pkt *packet) bool {
	t := f.turn.Load()
	b := pkt.buf[:pkt.n]
	if t == nil {
		f.stats.dropped[DropUnexpected].Add(1)
		return false
	}
	switch demux.Classify(b) {
	case demux.ChannelData:
		if len(b) < 4 {
			f.stats.dropped[DropMalformed].Add(1)
			return false
		}
		num, size := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if 4+size > len(b) { // over UDP the datagram may carry padding (RFC 8656 §12.5)
			f.stats.dropped[DropMalformed].Add(1)
			return false
		}
		peer, ok := t.channelPeer(num)
		if !ok {
			f.stats.dropped[DropUnexpected].Add(1)
			return false
		}
		copy(pkt.buf[:], b[4:4+size])
		pkt.n, pkt.from = size, peer
		return f.dispatch(pkt)
	case demux.STUN:
	default:
		f.stats.dropped[DropUnknown].Add(1)
		return false
	}
	m, err := stunx.Decode(b)
	if err != nil {
		if errors.Is(err, stunx.ErrPanic) {
			f.stats.dropped[DropPanic].Add(1)
		} else {
			f.stats.dropped[DropMalformed].Add(1)
		}
		return false
	}
	switch m.Type.Class {
	case stun.ClassIndication:
		if m.Type.Method != stun.MethodData {
			f.stats.dropped[DropUnexpected].Add(1)
			return false
		}
		pv, perr := m.Get(stun.AttrXORPeerAddress)
		data, derr := m.Get(attrData)
		peer, ok := xorAddr(pv, m.TransactionID)
		if perr != nil || derr != nil || !ok || len(data) > bufSize {
			f.stats.dropped[DropMalformed].Add(1)
			return false
		}
		n := copy(pkt.buf[:], data)
		pkt.n, pkt.from = n, peer
		return f.dispatch(pkt)
	case stun.ClassRequest:
		f.stats.dropped[DropUnexpected].Add(1)
		return false
	}
	t.onResponse(m)
	return false
}

// closeNAT releases the allocation (Refresh with LIFETIME 0: sent once over
// UDP; over TCP/TLS answered within deallocWait) and closes the connection to
// the server. An Allocate that succeeds while Close runs is released too.
func (f *Flow) closeNAT() {
	f.mu.Lock()
	t := f.turn.Load()
	f.mu.Unlock()
	if t == nil {
		return
	}
	t.cancel()
	<-t.setupDone // setup's context is cancelled: it ends at once
	t.stopPeers()
	if (t.allocated.Load() || t.allocSent.Load()) && !t.lost.Load() {
		// Also when Close cut the Allocate short: the server may have
		// allocated without our seeing the answer (a Refresh for an
		// allocation it does not have is answered 437, or not at all).
		if t.stream != nil {
			// Our own reader still reads the connection: wait for the
			// answer (a stale nonce gets a retry) before closing it.
			ctx, cancel := context.WithTimeout(context.Background(), deallocWait)
			_, _ = t.request(ctx, methodRefresh, []stun.Setter{lifetimeAttr(0)}, rtx{})
			cancel()
		} else if m, _, err := t.build(methodRefresh, []stun.Setter{lifetimeAttr(0)}); err == nil {
			// Over UDP the socket may have no reader any more (an
			// application read it directly); the answer is not needed.
			_ = t.writeControl(m.Raw)
		}
	}
	if t.stream != nil {
		_ = t.stream.Close()
	}
}
