package flow

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v2"
)

// Permissions, channels and the relay's send path.
//
// Every peer the flow sends to through the relay (the active destination,
// WriteTo targets) gets a channel (RFC 8656 §12): a ChannelBind request,
// which also installs the permission for the peer's IP, is sent in the
// background and refreshed every permRefresh while the peer is in use
// (channels live 10 minutes, permissions 5). Media to a peer goes as
// ChannelData once its channel is bound; up to maxPending packets written
// before that are kept and sent when it is (the server would drop them
// without a permission); no write ever waits for a control transaction. A refused or
// unanswered ChannelBind is reported through OnEvent as an *Error matching
// ErrPermissionFailed (and ErrPermissionDenied when refused), naming the
// peer; if the permission was never made, writes to that peer then fail
// with the same error until a later attempt (every permRefresh) succeeds.
//
// For the ICE agent (flow/ice*.go) two internal calls work without waiting:
// relayPermit(ip, done) creates and keeps refreshing a permission for ip
// (CreatePermission) and reports the first outcome to done; relaySend(b,
// peer) writes b to peer through the relay (ChannelData or Send indication).

// permRefresh is how often a peer's channel binding (and so its permission) is refreshed.
const permRefresh = 120 * time.Second

// maxRelayed is the largest datagram the relay path frames in a pooled
// buffer: a Send indication adds 20+24+4+3+8 bytes.
const maxRelayed = bufSize - 64

// maxPeers bounds the peers a flow keeps channels for.
const maxPeers = 64

// channelFirst and channelLast bound the channel numbers (RFC 8656 §12).
const (
	channelFirst = 0x4000
	channelLast  = 0x4FFF
)

// peer is a transport address the relay sends to.
type peer struct {
	addr  netip.AddrPort
	ch    uint16      // 0: no channel number left, Send indications only
	ready atomic.Bool // the permission (and channel) is in place
	used  atomic.Bool
	err   atomic.Pointer[Error] // the last permission failure, nil after a success

	qmu     sync.Mutex
	pending [][]byte // written before ready; sent when it is, dropped on failure
}

// maxPending bounds the packets kept for a peer whose permission is being
// made (a DTLS ClientHello or the first RTP packets would otherwise be lost
// at the server, and DTLS retransmits only after a second).
const maxPending = 16

// permit is a permission the ICE agent asked for.
type permit struct {
	ip   netip.Addr
	done func(error)
	err  atomic.Pointer[Error]
}

// peerState is the part of turnState that knows the peers.
type peerState struct {
	peerMu   sync.Mutex
	peers    atomic.Pointer[map[netip.AddrPort]*peer] // copy on write
	chans    atomic.Pointer[map[uint16]netip.AddrPort]
	permits  map[netip.Addr]*permit // guarded by peerMu
	nextCh   uint16
	indTxn   [8]byte       // random prefix of Send indication transaction IDs
	indCount atomic.Uint32 // and their counter
	stopped  bool          // guarded by peerMu
}

func (t *turnState) initPeers() {
	empty := map[netip.AddrPort]*peer{}
	t.peers.Store(&empty)
	chans := map[uint16]netip.AddrPort{}
	t.chans.Store(&chans)
	t.permits = map[netip.Addr]*permit{}
	t.nextCh = channelFirst
	_, _ = rand.Read(t.indTxn[:])
}

func (t *turnState) stopPeers() {
	t.peerMu.Lock()
	t.stopped = true
	t.peerMu.Unlock()
}

// channelPeer returns the peer bound to channel num (also while the
// ChannelBind is in flight: RFC 8656 §12.2).
func (t *turnState) channelPeer(num uint16) (netip.AddrPort, bool) {
	ap, ok := (*t.chans.Load())[num]
	return ap, ok
}

// peerFor returns the peer entry for dst, creating it (and starting its
// channel binding in the background) if needed.
func (t *turnState) peerFor(dst netip.AddrPort) (*peer, error) {
	if p := (*t.peers.Load())[dst]; p != nil {
		return p, nil
	}
	t.peerMu.Lock()
	defer t.peerMu.Unlock()
	old := *t.peers.Load()
	if p := old[dst]; p != nil {
		return p, nil
	}
	if t.stopped {
		return nil, ErrClosed
	}
	if len(old) >= maxPeers {
		return nil, fmt.Errorf("%w: %v: the relay already serves %d peers", ErrInvalidAddress, dst, maxPeers)
	}
	p := &peer{addr: dst}
	if t.nextCh <= channelLast {
		p.ch = t.nextCh
		t.nextCh++
		chans := make(map[uint16]netip.AddrPort, len(*t.chans.Load())+1)
		for k, v := range *t.chans.Load() {
			chans[k] = v
		}
		chans[p.ch] = dst
		t.chans.Store(&chans)
	}
	peers := make(map[netip.AddrPort]*peer, len(old)+1)
	for k, v := range old {
		peers[k] = v
	}
	peers[dst] = p
	t.peers.Store(&peers)
	p.used.Store(true)
	t.spawnLocked(func() { t.bindLoop(p) })
	return p, nil
}

// spawnLocked is spawn for callers holding peerMu (spawn takes f.mu).
func (t *turnState) spawnLocked(fn func()) { t.spawn(fn) }

// dropPeer forgets a peer that is no longer used (its channel number is
// not reused: RFC 8656 §12 forbids rebinding it to another peer for a while).
func (t *turnState) dropPeer(p *peer) {
	t.peerMu.Lock()
	defer t.peerMu.Unlock()
	old := *t.peers.Load()
	peers := make(map[netip.AddrPort]*peer, len(old))
	for k, v := range old {
		if v != p {
			peers[k] = v
		}
	}
	t.peers.Store(&peers)
	if p.ch != 0 {
		chans := make(map[uint16]netip.AddrPort, len(*t.chans.Load()))
		for k, v := range *t.chans.Load() {
			if k != p.ch {
				chans[k] = v
			}
		}
		t.chans.Store(&chans)
	}
}

// bindLoop binds p's channel (or creates its permission) and refreshes it
// while p is in use.
func (t *turnState) bindLoop(p *peer) {
	f := t.f
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		method := methodChannelBind
		attrs := []stun.Setter{peerAttr(p.addr)}
		if p.ch != 0 {
			attrs = append(attrs, turnAttr{attrChannelNumber, []byte{byte(p.ch >> 8), byte(p.ch), 0, 0}})
		} else {
			method = methodCreatePermission
		}
		err := t.permission(method, attrs, p.addr.String())
		if t.ctx.Err() != nil {
			return
		}
		if err != nil {
			first := p.err.Load() == nil
			p.err.Store(err)
			p.qmu.Lock()
			p.pending = nil
			p.qmu.Unlock()
			if first {
				f.fail(err)
			}
		} else {
			p.err.Store(nil)
			t.flushPending(p)
		}
		timer.Reset(permRefresh)
		select {
		case <-timer.C:
		case <-t.ctx.Done():
			return
		}
		if !p.used.Swap(false) && f.dst.Load().ap != p.addr {
			t.dropPeer(p)
			return
		}
	}
}

// flushPending marks p ready and sends what was written before, in order;
// a writer waits for the lock meanwhile (a few sends, no transaction).
func (t *turnState) flushPending(p *peer) {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	for _, b := range p.pending {
		if err := t.sendReady(p, b); err != nil {
			break
		}
	}
	p.pending = nil
	p.ready.Store(true)
}

// sendReady sends b to a peer whose permission is in place.
func (t *turnState) sendReady(p *peer, b []byte) error {
	if p.ch != 0 {
		return t.sendChannelData(p.ch, b, p.addr)
	}
	return t.sendIndication(p.addr, b)
}

// permission runs one ChannelBind or CreatePermission transaction for the
// peer named what. A signed 437 loses the allocation.
func (t *turnState) permission(method stun.Method, attrs []stun.Setter, what string) *Error {
	f := t.f
	ctx, cancel := context.WithTimeout(t.ctx, f.cfg.NAT.TimeoutOrDefault())
	defer cancel()
	res, err := t.request(ctx, method, attrs, rtx{first: stunRTO, max: 4 * time.Second})
	op := "turn permission"
	switch {
	case t.ctx.Err() != nil:
		return nil
	case err != nil:
		return &Error{f.cfg.Component, op, fmt.Errorf("%w for %s: no answer from %s within %v", ErrPermissionFailed, what, t.server, f.cfg.NAT.TimeoutOrDefault())}
	case res.Type.Class == stun.ClassSuccessResponse:
		return nil
	}
	code := errorCode(res)
	if code == codeAllocMismatch && isSigned(res) {
		f.lose(fmt.Errorf("%s answered %s to %v: it no longer has the allocation", t.server, errorReason(res), method))
		return nil
	}
	return &Error{f.cfg.Component, op, fmt.Errorf("%w: %w: %s refused %s: %s", ErrPermissionFailed, ErrPermissionDenied, t.server, what, errorReason(res))}
}

// relayPermit creates a permission for ip on the allocation in the
// background and keeps it refreshed for the flow's life (for ICE checks to
// candidates that have no channel yet). done, if not nil, is called once
// with the first outcome (nil or an *Error matching ErrPermissionFailed),
// from a flow goroutine; it must not block. It returns an error when the
// flow has no allocation.
func (f *Flow) relayPermit(ip netip.Addr, done func(error)) error {
	t := f.turn.Load()
	if t == nil || !t.allocated.Load() {
		return &Error{f.cfg.Component, "turn permission", ErrNotReady}
	}
	if e := t.lostErr.Load(); e != nil {
		return e
	}
	ip = ip.Unmap()
	t.peerMu.Lock()
	if t.stopped {
		t.peerMu.Unlock()
		return ErrClosed
	}
	if t.permits[ip] != nil {
		t.peerMu.Unlock()
		if done != nil {
			done(nil) // already asked for; the loop reports failures through OnEvent
		}
		return nil
	}
	pm := &permit{ip: ip, done: done}
	t.permits[ip] = pm
	t.peerMu.Unlock()
	if !t.spawn(func() { t.permitLoop(pm) }) {
		return ErrClosed
	}
	return nil
}

func (t *turnState) permitLoop(pm *permit) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for first := true; ; first = false {
		err := t.permission(methodCreatePermission, []stun.Setter{peerAttr(netip.AddrPortFrom(pm.ip, 0))}, pm.ip.String())
		if t.ctx.Err() != nil {
			return
		}
		if first && pm.done != nil {
			if err != nil {
				pm.done(err)
			} else {
				pm.done(nil)
			}
		} else if err != nil && pm.err.Load() == nil {
			t.f.fail(err)
		}
		pm.err.Store(err)
		timer.Reset(permRefresh)
		select {
		case <-timer.C:
		case <-t.ctx.Done():
			return
		}
	}
}

// relaySend writes b to peer through the allocation without waiting for
// any control transaction and without creating peer state (for ICE
// responses and checks): ChannelData on a channel already bound to peer,
// else a Send indication, which needs a permission for peer's IP
// (relayPermit) to get through.
func (f *Flow) relaySend(b []byte, peer netip.AddrPort) error {
	if len(b) > maxRelayed {
		return &Error{f.cfg.Component, "write", ErrPacketTooLarge}
	}
	t := f.turn.Load()
	if t == nil || !t.allocated.Load() {
		return &Error{f.cfg.Component, "write", ErrNotReady}
	}
	if e := t.lostErr.Load(); e != nil {
		return e
	}
	var err error
	if p := (*t.peers.Load())[peer]; p != nil && p.ready.Load() && p.ch != 0 {
		err = t.sendChannelData(p.ch, b, peer)
	} else {
		err = t.sendIndication(peer, b)
	}
	if err != nil {
		return t.writeErr(err)
	}
	return nil
}

// relayWrite sends one datagram to dst through the allocation. It never
// blocks on control work and does not allocate on the steady-state path.
func (f *Flow) relayWrite(b []byte, dst netip.AddrPort) (int, error) {
	if len(b) > maxRelayed {
		return 0, &Error{f.cfg.Component, "write", ErrPacketTooLarge}
	}
	t := f.turn.Load()
	if t == nil || !t.allocated.Load() {
		return 0, &Error{f.cfg.Component, "write", ErrNotReady}
	}
	if e := t.lostErr.Load(); e != nil {
		return 0, e
	}
	p, err := t.peerFor(dst)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return 0, ErrClosed
		}
		return 0, &Error{f.cfg.Component, "write", err}
	}
	if !p.used.Load() {
		p.used.Store(true)
	}
	if p.ready.Load() {
		err = t.sendReady(p, b)
	} else if e := p.err.Load(); e != nil {
		return 0, e
	} else {
		p.qmu.Lock()
		if p.ready.Load() { // flushed meanwhile
			err = t.sendReady(p, b)
		} else if len(p.pending) < maxPending {
			p.pending = append(p.pending, append([]byte(nil), b...))
		}
		p.qmu.Unlock()
	}
	if err != nil {
		return 0, t.writeErr(err)
	}
	return len(b), nil
}

// writeErr turns a failed write to the server into an *Error: over TCP/TLS
// the connection is gone, which loses the allocation.
func (t *turnState) writeErr(err error) error {
	f := t.f
	if f.closed.Load() {
		return ErrClosed
	}
	if t.stream != nil {
		f.lose(fmt.Errorf("write to %s failed: %w", t.server, err))
		if e := t.lostErr.Load(); e != nil {
			return e
		}
	}
	return &Error{f.cfg.Component, "write", errors.Join(ErrSocket, err)}
}

// sendChannelData frames b as ChannelData (RFC 8656 §12.5): unpadded over
// UDP; over TCP/TLS padded to four bytes, or as the server frames its own
// (framing.go). Before the server's framing is known, an unaligned packet
// over TCP/TLS goes as a Send indication, which every server parses.
func (t *turnState) sendChannelData(ch uint16, b []byte, dst netip.AddrPort) error {
	n := 4 + len(b)
	if t.stream != nil && n%4 != 0 {
		switch t.framing.peerPads.Load() {
		case padUnknown:
			return t.sendIndication(dst, b)
		case padYes:
			n = (n + 3) &^ 3
		}
	}
	pkt := getPacket()
	defer putPacket(pkt)
	buf := pkt.buf[:n]
	binary.BigEndian.PutUint16(buf, ch)
	binary.BigEndian.PutUint16(buf[2:], uint16(len(b)))
	copy(buf[4:], b)
	clear(buf[4+len(b):])
	return t.writeData(buf)
}

// sendIndication frames b as a Send indication (RFC 8656 §11.1) with
// XOR-PEER-ADDRESS, DATA and FINGERPRINT, built in place.
func (t *turnState) sendIndication(dst netip.AddrPort, b []byte) error {
	pkt := getPacket()
	defer putPacket(pkt)
	buf := pkt.buf[:]
	var id [12]byte
	copy(id[:8], t.indTxn[:])
	binary.BigEndian.PutUint32(id[8:], t.indCount.Add(1))
	binary.BigEndian.PutUint16(buf[0:], 0x0016) // Send indication
	binary.BigEndian.PutUint32(buf[4:], stunMagic)
	copy(buf[8:20], id[:])
	off := 20
	ip := dst.Addr()
	alen := 8
	if ip.Is6() {
		alen = 20
	}
	binary.BigEndian.PutUint16(buf[off:], uint16(stun.AttrXORPeerAddress))
	binary.BigEndian.PutUint16(buf[off+2:], uint16(alen))
	buf[off+4] = 0
	buf[off+5] = 1
	binary.BigEndian.PutUint16(buf[off+6:], dst.Port()^0x2112)
	var mask [16]byte
	binary.BigEndian.PutUint32(mask[:], stunMagic)
	copy(mask[4:], id[:])
	if ip.Is6() {
		buf[off+5] = 2
		a := ip.As16()
		for i := range a {
			buf[off+8+i] = a[i] ^ mask[i]
		}
	} else {
		a := ip.As4()
		for i := range a {
			buf[off+8+i] = a[i] ^ mask[i]
		}
	}
	off += 4 + alen
	binary.BigEndian.PutUint16(buf[off:], uint16(attrData))
	binary.BigEndian.PutUint16(buf[off+2:], uint16(len(b)))
	copy(buf[off+4:], b)
	off += 4 + len(b)
	for off%4 != 0 {
		buf[off] = 0
		off++
	}
	// FINGERPRINT covers the header with the length including itself.
	binary.BigEndian.PutUint16(buf[2:], uint16(off-20+8))
	binary.BigEndian.PutUint16(buf[off:], uint16(stun.AttrFingerprint))
	binary.BigEndian.PutUint16(buf[off+2:], 4)
	binary.BigEndian.PutUint32(buf[off+4:], crc32.ChecksumIEEE(buf[:off])^0x5354554e)
	off += 8
	return t.writeData(buf[:off])
}

// writeData sends a media frame to the server.
func (t *turnState) writeData(b []byte) error {
	if t.stream != nil {
		_, err := t.stream.Write(b)
		return err
	}
	_, err := t.f.conn.WriteToUDPAddrPort(b, t.server)
	return err
}

// onDestination starts the channel binding for a new active destination in
// the background.
func (f *Flow) onDestination(dst netip.AddrPort) {
	t := f.turn.Load()
	if t == nil || !t.allocated.Load() || f.closed.Load() {
		return
	}
	_, _ = t.peerFor(dst)
}
