package flow

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v2"
	"github.com/pion/transport/v3"
	"github.com/pion/transport/v3/stdnet"
	"github.com/pion/turn/v3"
	"github.com/reflow-go/reflow/internal/demux"
	"github.com/reflow-go/reflow/internal/pionlog"
	"github.com/reflow-go/reflow/internal/stunx"
	"github.com/reflow-go/reflow/natmode"
)

// TURN errors, matched with errors.Is.
var (
	// ErrAllocationLost means a TURN allocation ended after it was made: a
	// refresh failed or was refused (437), no refresh succeeded within the
	// allocation's lifetime, or the TCP/TLS connection to the server closed.
	ErrAllocationLost = errors.New("flow: TURN allocation lost")
	// ErrTURNAuth means the TURN server refused the credentials (401 after authenticating).
	ErrTURNAuth = errors.New("flow: TURN authentication failed")
	// ErrTURNUnreachable means the TURN server did not answer (or refused the connection) within the timeout.
	ErrTURNUnreachable = errors.New("flow: TURN server unreachable")
	// ErrTURNTLS means the TLS handshake with the TURN server failed (for example an untrusted certificate).
	ErrTURNTLS = errors.New("flow: TURN TLS handshake failed")
	// ErrTURNRejected means the TURN server refused the allocation with another error code.
	ErrTURNRejected = errors.New("flow: TURN allocation rejected")
)

// STUN/TURN methods (RFC 8656 §17) and attributes this file reads.
const (
	methodRefresh          = stun.Method(0x004)
	methodCreatePermission = stun.Method(0x008)
	methodChannelBind      = stun.Method(0x009)
	attrLifetime           = stun.AttrType(0x000D)
	attrData               = stun.AttrType(0x0013)
	codeAllocMismatch      = 437
	codeStaleNonce         = 438
	lostGrace              = 5 * time.Second
	defaultLifetime        = 10 * time.Minute // RFC 8656 §3.2, when a response has no LIFETIME
)

// turnState is the TURN client side of a flow.
type turnState struct {
	client   *turn.Client
	relay    atomic.Pointer[relayConn]
	stream   net.PacketConn // TCP/TLS: the framed connection to the server
	lifetime atomic.Int64   // granted lifetime, ns
	lastCode atomic.Int32   // last error code of an Allocate response
	heard    atomic.Bool    // any response from the server
	watchdog *time.Timer    // guarded by Flow.mu
	permTick *time.Timer    // guarded by Flow.mu
	lost     atomic.Bool
}

// permRefresh is how often the flow re-creates the permission of its active
// destination: permissions live 300 s (RFC 8656 §9), and pion refreshes only
// those of peers it has sent to, so a receive-only flow would lose its own.
const permRefresh = 120 * time.Second

// relayConn is the pion relay of an allocation.
type relayConn struct {
	pc     net.PacketConn
	finder interface{ FindAddrByChannelNumber(uint16) (net.Addr, bool) }
}

// clientConn is the net.PacketConn the pion TURN client writes through. It
// never reads: the flow's reader owns the socket and hands over responses.
type clientConn struct {
	f      *Flow
	stream net.PacketConn // TCP/TLS, else nil: write to the UDP socket
	done   chan struct{}
}

func (c *clientConn) ReadFrom([]byte) (int, net.Addr, error) {
	<-c.done
	return 0, nil, net.ErrClosed
}

func (c *clientConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	b = c.f.rewriteRequest(b)
	if c.stream != nil {
		return c.stream.WriteTo(b, nil)
	}
	return c.f.conn.WriteToUDPAddrPort(b, c.f.server)
}
func (c *clientConn) Close() error                     { return nil }
func (c *clientConn) LocalAddr() net.Addr              { return c.f.LocalAddr() }
func (c *clientConn) SetDeadline(time.Time) error      { return nil }
func (c *clientConn) SetReadDeadline(time.Time) error  { return nil }
func (c *clientConn) SetWriteDeadline(time.Time) error { return nil }

// anyNet resolves UDP addresses for any family: turn/v3 asks for "udp4" only,
// which fails for an IPv6 server.
type anyNet struct{ transport.Net }

func (n anyNet) ResolveUDPAddr(_ string, address string) (*net.UDPAddr, error) {
	return n.Net.ResolveUDPAddr("udp", address)
}

func (f *Flow) turnErr(err error) error { return &Error{f.cfg.Component, "turn allocate", err} }

// setupTURN connects to the server (TCP/TLS), allocates a relayed address and
// arms the allocation watchdog.
func (f *Flow) setupTURN(ctx context.Context) error {
	nat := f.cfg.NAT
	ctx, cancel := context.WithTimeout(ctx, nat.TimeoutOrDefault())
	defer cancel()
	t := &turnState{}
	cc := &clientConn{f: f, done: f.stopped}

	if nat.Mode == natmode.TURNTCP || nat.Mode == natmode.TURNTLS {
		stream, local, err := f.dialServer(ctx)
		if err != nil {
			return f.turnErr(err)
		}
		t.stream, cc.stream = stream, stream
		f.mu.Lock()
		if f.closed.Load() {
			f.mu.Unlock()
			stream.Close()
			return ErrClosed
		}
		f.local = local
		f.wg.Add(1)
		f.mu.Unlock()
		go f.streamLoop(stream)
	}
	std, err := stdnet.NewNet()
	if err != nil {
		return f.turnErr(err)
	}
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: f.server.String(),
		TURNServerAddr: f.server.String(),
		Username:       nat.Username,
		Password:       nat.Password,
		Software:       "reflow-go",
		Conn:           cc,
		Net:            anyNet{std},
		LoggerFactory:  pionlog.Factory(f.log),
	})
	if err != nil {
		return f.turnErr(err)
	}
	t.client = client
	f.mu.Lock()
	if f.closed.Load() {
		f.mu.Unlock()
		client.Close()
		return ErrClosed
	}
	f.turn.Store(t)
	f.mu.Unlock()

	stop := context.AfterFunc(ctx, client.Close) // Allocate takes no context
	relay, err := client.Allocate()
	stop()
	if err != nil {
		switch {
		case f.closed.Load():
			return ErrClosed
		case t.lastCode.Load() == 401 || t.lastCode.Load() == 400:
			// RFC 8489 §9.2.4 answers bad credentials with 401; pion/turn
			// servers answer 400 to an unknown user or a wrong MESSAGE-INTEGRITY.
			// Our requests are well formed, so 400 to an authenticated
			// Allocate means the credentials.
			return f.turnErr(fmt.Errorf("%w: %s refused the credentials of %q", ErrTURNAuth, f.server, nat.Username))
		case t.lastCode.Load() != 0:
			return f.turnErr(fmt.Errorf("%w: error %d from %s", ErrTURNRejected, t.lastCode.Load(), f.server))
		case !t.heard.Load():
			return f.turnErr(fmt.Errorf("%w: no answer from %s within %v", ErrTURNUnreachable, f.server, nat.TimeoutOrDefault()))
		case ctx.Err() != nil:
			return f.turnErr(fmt.Errorf("%w: allocation on %s not done within %v", ErrTURNUnreachable, f.server, nat.TimeoutOrDefault()))
		}
		return f.turnErr(fmt.Errorf("%w: %v", ErrTURNRejected, err))
	}
	rc := &relayConn{pc: relay}
	rc.finder, _ = relay.(interface{ FindAddrByChannelNumber(uint16) (net.Addr, bool) })
	t.relay.Store(rc)
	lifetime := time.Duration(t.lifetime.Load())
	if lifetime <= 0 {
		lifetime = defaultLifetime
	}
	f.mu.Lock()
	if ap, ok := addrPortOf(relay.LocalAddr()); ok {
		f.relayed = Tuple{UDP, ap}
	}
	closed := f.closed.Load()
	if !closed {
		t.watchdog = time.AfterFunc(lifetime+lostGrace, f.allocationExpired)
	}
	f.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if nat.Mode == natmode.TURNUDP {
		f.startKeepalive() // keeps the NAT binding towards the server open between refreshes
	}
	f.log.Debug("turn allocation done", "relayed", f.relayed.Addr, "reflexive", f.ReflexiveTuple().Addr, "lifetime", time.Duration(t.lifetime.Load()))
	return nil
}

// dialServer opens the TCP or TLS connection to the TURN server from the flow's local IP.
func (f *Flow) dialServer(ctx context.Context) (net.PacketConn, Tuple, error) {
	nat := f.cfg.NAT
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: f.local.Addr.Addr().AsSlice()}}
	conn, err := d.DialContext(ctx, "tcp", f.server.String())
	if err != nil {
		return nil, Tuple{}, fmt.Errorf("%w: %w", ErrTURNUnreachable, err)
	}
	tr := TCP
	if nat.Mode == natmode.TURNTLS {
		tr = TLS
		cfg := nat.TLSConfig
		if cfg == nil {
			name := nat.ServerName
			if name == "" {
				name = f.server.Addr().String()
			}
			cfg = &tls.Config{ServerName: name, RootCAs: nat.RootCAs, MinVersion: tls.VersionTLS12}
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			if ctx.Err() != nil {
				return nil, Tuple{}, fmt.Errorf("%w: TLS handshake with %s: %w", ErrTURNUnreachable, f.server, err)
			}
			return nil, Tuple{}, fmt.Errorf("%w: %w", ErrTURNTLS, err)
		}
		conn = tc
	}
	local, _ := addrPortOf(conn.LocalAddr())
	return turn.NewSTUNConn(conn), Tuple{tr, local}, nil
}

// streamLoop reads the framed TCP/TLS connection to the TURN server.
func (f *Flow) streamLoop(stream net.PacketConn) {
	defer f.wg.Done()
	var pkt *packet
	defer func() {
		if pkt != nil {
			putPacket(pkt)
		}
	}()
	for {
		if pkt == nil {
			pkt = getPacket()
		}
		n, _, err := stream.ReadFrom(pkt.buf[:])
		if err != nil {
			if f.closed.Load() {
				return
			}
			f.lose(fmt.Errorf("connection to %s closed: %w", f.server, err))
			return
		}
		pkt.n, pkt.from = n, f.server
		if f.receive(pkt) {
			pkt = nil
		}
	}
}

// lose reports the loss of the allocation once.
func (f *Flow) lose(why error) {
	t := f.turn.Load()
	if t == nil || !t.lost.CompareAndSwap(false, true) || f.closed.Load() {
		return
	}
	f.ready.Store(false)
	f.fail(&Error{f.cfg.Component, "turn", fmt.Errorf("%w: %w", ErrAllocationLost, why)})
}

func (f *Flow) allocationExpired() {
	f.lose(fmt.Errorf("no successful refresh from %s within the allocation lifetime", f.server))
}

// turnInbound takes a datagram from the TURN server. Relayed media (ChannelData,
// Data indications) goes to the media path with the peer as source; responses
// are checked, inspected and handed to the pion client.
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
		if 4+size > len(b) {
			f.stats.dropped[DropMalformed].Add(1)
			return false
		}
		rc := t.relay.Load()
		if rc == nil || rc.finder == nil {
			f.stats.dropped[DropUnexpected].Add(1)
			return false
		}
		peer, ok := rc.finder.FindAddrByChannelNumber(num)
		ap, ok2 := addrPortOf(peer)
		if !ok || !ok2 {
			f.stats.dropped[DropUnexpected].Add(1)
			return false
		}
		copy(pkt.buf[:], b[4:4+size])
		pkt.n, pkt.from = size, ap
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
		var peer stun.XORMappedAddress
		var data []byte
		perr := stunx.Safe(func() {
			err = peer.GetFromAs(m, stun.AttrXORPeerAddress)
			if err == nil {
				data, err = m.Get(attrData)
			}
		})
		if perr != nil || err != nil {
			f.stats.dropped[DropMalformed].Add(1)
			return false
		}
		ip, ok := netip.AddrFromSlice(peer.IP)
		if !ok || len(data) > bufSize {
			f.stats.dropped[DropMalformed].Add(1)
			return false
		}
		n := copy(pkt.buf[:], data)
		pkt.n, pkt.from = n, netip.AddrPortFrom(ip.Unmap(), uint16(peer.Port))
		return f.dispatch(pkt)
	case stun.ClassRequest:
		f.stats.dropped[DropUnexpected].Add(1)
		return false
	}
	t.heard.Store(true)
	f.inspectResponse(t, m)
	if err := stunx.Safe(func() { _, _ = t.client.HandleInbound(b, net.UDPAddrFromAddrPort(f.server)) }); err != nil {
		f.stats.dropped[DropPanic].Add(1)
	}
	return false
}

// inspectResponse watches the TURN client's transactions: it records what the
// allocate response says, re-arms the watchdog on each successful refresh, and
// reports the allocation lost when the server no longer knows it.
func (f *Flow) inspectResponse(t *turnState, m *stun.Message) {
	var code stun.ErrorCodeAttribute
	isErr := m.Type.Class == stun.ClassErrorResponse
	if isErr {
		_ = stunx.Safe(func() { _ = code.GetFrom(m) })
	}
	switch m.Type.Method {
	case stun.MethodAllocate:
		if isErr {
			t.lastCode.Store(int32(code.Code))
			return
		}
		if ap, err := stunx.MappedAddress(m); err == nil {
			f.mu.Lock()
			f.reflexive = Tuple{UDP, ap}
			f.mu.Unlock()
		}
		t.lifetime.Store(int64(lifetimeOf(m)))
	case methodRefresh:
		switch {
		case !isErr:
			lt := lifetimeOf(m)
			t.lifetime.Store(int64(lt))
			f.mu.Lock()
			if t.watchdog != nil && lt > 0 {
				t.watchdog.Reset(lt + lostGrace)
			}
			f.mu.Unlock()
		case int(code.Code) != codeStaleNonce:
			f.lose(fmt.Errorf("refresh refused by %s: error %d %s", f.server, code.Code, code.Reason))
		}
	case methodCreatePermission, methodChannelBind:
		if isErr && int(code.Code) == codeAllocMismatch {
			f.lose(fmt.Errorf("%s answered %d to %s: it no longer has the allocation", f.server, code.Code, m.Type.Method))
		}
	}
}

func lifetimeOf(m *stun.Message) time.Duration {
	v, err := m.Get(attrLifetime)
	if err != nil || len(v) != 4 {
		return 0
	}
	return time.Duration(binary.BigEndian.Uint32(v)) * time.Second
}

// rewriteRequest adds the configured LIFETIME to the pion client's Allocate
// requests (pion never sends one), re-signing authenticated ones.
func (f *Flow) rewriteRequest(b []byte) []byte {
	lt := f.cfg.NAT.Lifetime
	if lt <= 0 || len(b) < 20 || b[0] != 0x00 || b[1] != 0x03 { // Allocate request
		return b
	}
	m, err := stunx.Decode(b)
	if err != nil || m.Contains(attrLifetime) {
		return b
	}
	out := &stun.Message{TransactionID: m.TransactionID}
	out.SetType(m.Type)
	out.WriteHeader()
	var realm, user []byte
	for _, a := range m.Attributes {
		switch a.Type {
		case stun.AttrMessageIntegrity, stun.AttrFingerprint:
			continue
		case stun.AttrRealm:
			realm = a.Value
		case stun.AttrUsername:
			user = a.Value
		}
		out.Add(a.Type, a.Value)
	}
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], uint32(lt/time.Second))
	out.Add(attrLifetime, v[:])
	if m.Contains(stun.AttrMessageIntegrity) {
		if realm == nil || user == nil {
			return b
		}
		if err := stun.NewLongTermIntegrity(string(user), string(realm), f.cfg.NAT.Password).AddTo(out); err != nil {
			return b
		}
	}
	if err := stun.Fingerprint.AddTo(out); err != nil {
		return b
	}
	return out.Raw
}

// relayWrite sends media to a peer through the allocation.
func (f *Flow) relayWrite(b []byte, dst netip.AddrPort) (int, error) {
	t := f.turn.Load()
	if t == nil {
		return 0, ErrNotReady
	}
	rc := t.relay.Load()
	if rc == nil {
		return 0, ErrNotReady
	}
	var addr net.Addr
	if d := f.dst.Load(); dst == d.ap {
		addr = d.addr
	}
	if addr == nil {
		addr = net.UDPAddrFromAddrPort(dst)
	}
	return rc.pc.WriteTo(b, addr)
}

// onDestination creates the TURN permission for a new active destination in
// the background and keeps it refreshed every permRefresh (pion binds the
// channel on the first packet sent and refreshes it as media flows).
func (f *Flow) onDestination(dst netip.AddrPort) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.turn.Load()
	if t == nil || t.relay.Load() == nil || f.closed.Load() {
		return
	}
	if t.permTick != nil {
		t.permTick.Stop()
	}
	var tick func()
	tick = func() {
		f.mu.Lock()
		if f.closed.Load() || f.dst.Load().ap != dst {
			f.mu.Unlock()
			return
		}
		f.wg.Add(1)
		t.permTick = time.AfterFunc(permRefresh, tick)
		f.mu.Unlock()
		defer f.wg.Done()
		if err := t.client.CreatePermission(net.UDPAddrFromAddrPort(dst)); err != nil && !f.closed.Load() {
			f.log.Warn("turn permission failed", "peer", dst, "err", err)
		}
	}
	t.permTick = time.AfterFunc(0, tick)
}

// closeNAT releases the allocation (Refresh with LIFETIME 0) and closes the
// relay, the client and the server connection, in that order.
func (f *Flow) closeNAT() {
	t := f.turn.Load()
	if t == nil {
		return
	}
	f.mu.Lock()
	if t.watchdog != nil {
		t.watchdog.Stop()
	}
	if t.permTick != nil {
		t.permTick.Stop()
	}
	f.mu.Unlock()
	if rc := t.relay.Load(); rc != nil {
		_ = rc.pc.Close() // sends Refresh(0); the answer arrives on the reader, still running
	}
	t.client.Close()
	if t.stream != nil {
		_ = t.stream.Close()
	}
}
