package flow

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v2"
	"github.com/reflow-go/reflow/internal/demux"
	"github.com/reflow-go/reflow/internal/stunx"
	"github.com/reflow-go/reflow/natmode"
)

// STUN retransmission (RFC 8489 §6.2.1): RTO starts at 500 ms and doubles; Rc = 7
// requests; after the last one the client waits Rm = 16 RTOs.
const (
	stunRTO = 500 * time.Millisecond
	stunRc  = 7
	stunRm  = 16
)

// stunTxn is one outstanding STUN transaction of the flow's own STUN client.
type stunTxn struct {
	id     [stun.TransactionIDSize]byte
	server netip.AddrPort
	res    chan *stun.Message // buffered 1
}

// fromServer reports whether a datagram on the UDP socket came from the flow's
// STUN or TURN-over-UDP server (once its address is known).
func (f *Flow) fromServer(src netip.AddrPort) bool {
	s := f.natServer()
	return s.IsValid() && src == s
}

// natServer returns the STUN or TURN server's resolved address, or the
// zero AddrPort before it is known (a Host not yet resolved) or in mode
// None. Code that needs the server's address (ICE foundations) should use
// it rather than f.server, which is zero for a server given by host name.
func (f *Flow) natServer() netip.AddrPort {
	switch mode := f.cfg.NAT.Mode; {
	case mode == natmode.STUNBinding:
		if txn := f.stunTxn.Load(); txn != nil {
			return txn.server
		}
		return f.server
	case mode.IsTURN():
		if t := f.turn.Load(); t != nil {
			return t.server
		}
		return f.server
	}
	return netip.AddrPort{}
}

// resolveServer returns the server's address (resolving a host name under
// ctx, in the local address's family) and the name for TLS verification.
func (f *Flow) resolveServer(ctx context.Context) (netip.AddrPort, string, error) {
	nat := f.cfg.NAT
	host, port, err := nat.HostPort()
	if err != nil {
		return netip.AddrPort{}, "", err
	}
	if nat.Server.Addr().IsValid() {
		return unmap(nat.ServerAddr()), host, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), port), host, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, "", fmt.Errorf("resolve %q: %w", host, err)
	}
	want4 := f.local.Addr.Addr().Unmap().Is4()
	for _, ip := range ips {
		if ip = ip.Unmap(); ip.Is4() == want4 {
			return netip.AddrPortFrom(ip, port), host, nil
		}
	}
	return netip.AddrPort{}, "", fmt.Errorf("%q has no address of the local address's family (%v)", host, ips)
}

// handleServer takes a datagram from the NAT server; it returns true when it kept pkt.
func (f *Flow) handleServer(pkt *packet) bool {
	if f.cfg.NAT.Mode.IsTURN() {
		return f.turnInbound(pkt)
	}
	f.stunInbound(pkt.buf[:pkt.n])
	return false
}

// stunInbound takes a datagram from the STUN server.
func (f *Flow) stunInbound(b []byte) {
	if demux.Classify(b) != demux.STUN {
		f.stats.dropped[DropUnexpected].Add(1)
		return
	}
	m, err := stunx.Decode(b)
	if err != nil {
		if errors.Is(err, stunx.ErrPanic) {
			f.stats.dropped[DropPanic].Add(1)
		} else {
			f.stats.dropped[DropMalformed].Add(1)
		}
		return
	}
	txn := f.stunTxn.Load()
	if txn == nil || txn.res == nil || m.TransactionID != txn.id || m.Type.Method != stun.MethodBinding ||
		(m.Type.Class != stun.ClassSuccessResponse && m.Type.Class != stun.ClassErrorResponse) {
		f.stats.dropped[DropUnexpected].Add(1)
		return
	}
	select {
	case txn.res <- m:
	default:
	}
}

// discover runs a STUN Binding transaction with RFC 8489 retransmissions and
// records the reflexive address; then it starts the keep-alive.
func (f *Flow) discover(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.NAT.TimeoutOrDefault())
	defer cancel()
	server, _, err := f.resolveServer(ctx)
	if err != nil {
		return &Error{f.cfg.Component, "stun binding", fmt.Errorf("%w: %w", ErrSTUNTimeout, err)}
	}
	req, err := stunx.NewBindingRequest()
	if err != nil {
		return &Error{f.cfg.Component, "stun binding", err}
	}
	txn := &stunTxn{id: req.TransactionID, server: server, res: make(chan *stun.Message, 1)}
	f.stunTxn.Store(txn)
	defer f.stunTxn.Store(&stunTxn{server: server}) // no transaction; the server stays known

	rto := stunRTO
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for sent := 0; ; {
		if sent < stunRc {
			if _, err := f.conn.WriteToUDPAddrPort(req.Raw, server); err != nil && !isTransient(err) {
				return &Error{f.cfg.Component, "stun binding", errors.Join(ErrSocket, err)}
			}
			sent++
			wait := rto
			if sent == stunRc {
				wait = stunRm * stunRTO
			}
			timer.Reset(wait)
			rto *= 2
		}
		select {
		case m := <-txn.res:
			if m.Type.Class == stun.ClassErrorResponse {
				var code stun.ErrorCodeAttribute
				_ = stunx.Safe(func() { _ = code.GetFrom(m) })
				return &Error{f.cfg.Component, "stun binding", fmt.Errorf("%w: error response %d %s", ErrSTUNFailed, code.Code, code.Reason)}
			}
			addr, err := stunx.MappedAddress(m)
			if err != nil {
				return &Error{f.cfg.Component, "stun binding", fmt.Errorf("%w: %v", ErrSTUNFailed, err)}
			}
			f.mu.Lock()
			f.reflexive = Tuple{UDP, addr}
			f.mu.Unlock()
			f.log.Debug("stun binding done", "reflexive", addr)
			f.startKeepaliveTo(server)
			return nil
		case <-timer.C:
			if sent >= stunRc {
				return &Error{f.cfg.Component, "stun binding", fmt.Errorf("%w after %d requests to %s", ErrSTUNTimeout, sent, server)}
			}
		case <-ctx.Done():
			err := ctx.Err()
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w: no answer from %s within %v", ErrSTUNTimeout, server, f.cfg.NAT.TimeoutOrDefault())
			}
			return &Error{f.cfg.Component, "stun binding", err}
		}
	}
}

// startKeepaliveTo sends a Binding indication to server every keep-alive
// interval, which keeps the NAT binding open (RFC 8489 §5, RFC 5626 §4.4.2 style).
func (f *Flow) startKeepaliveTo(server netip.AddrPort) {
	every := f.cfg.NAT.KeepaliveOrDefault()
	if every <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Load() {
		return
	}
	tick := func() {
		f.mu.Lock()
		if f.closed.Load() {
			f.mu.Unlock()
			return
		}
		f.wg.Add(1) // Close waits for a tick in flight
		f.mu.Unlock()
		defer f.wg.Done()
		if ind, err := stunx.NewBindingIndication(); err == nil {
			_, _ = f.conn.WriteToUDPAddrPort(ind.Raw, server)
		}
		f.mu.Lock()
		if !f.closed.Load() {
			f.keepalive.Reset(every)
		}
		f.mu.Unlock()
	}
	f.keepalive = time.AfterFunc(every, tick)
}

// isTransient reports whether a write error should be retried (a full socket buffer).
func isTransient(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}
