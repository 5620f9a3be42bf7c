package flow

import (
	"net/netip"
	"time"

	"github.com/pion/stun/v2"
)

// Error responses to checks that fail authentication are rate limited per
// flow (a GCRA): errorInterval apart on average, errorBurst at once.
const (
	errorInterval = 50 * time.Millisecond
	errorBurst    = 10
)

var iceEpoch = time.Now()

// allowError reports whether one more error response may be sent now.
func (a *iceState) allowError() bool {
	now := int64(time.Since(iceEpoch))
	for {
		old := a.errTAT.Load()
		tat := max(old, now)
		if tat-now > int64(errorBurst*errorInterval) {
			return false
		}
		if a.errTAT.CompareAndSwap(old, tat+int64(errorInterval)) {
			return true
		}
	}
}

// respond answers a check (code 0: success) on the path it came in on. On the
// socket reader it only writes UDP datagrams; what must go into a TCP/TLS
// connection to the TURN server is handed to the worker.
func (a *iceState) respond(req *stun.Message, pkt *packet, c *iceCreds, code stun.ErrorCode, withMI bool) {
	f := a.f
	setters := []stun.Setter{req} // copies the transaction ID
	if code == 0 {
		setters = append(setters, stun.BindingSuccess,
			&stun.XORMappedAddress{IP: pkt.from.Addr().AsSlice(), Port: int(pkt.from.Port())})
	} else {
		setters = append(setters, stun.NewType(stun.MethodBinding, stun.ClassErrorResponse), code)
	}
	if withMI {
		setters = append(setters, c.integrity)
	}
	setters = append(setters, stun.Fingerprint)
	res, err := stun.Build(setters...)
	if err != nil {
		f.log.Debug("ice: building a response failed", "err", err)
		return
	}
	m := outMsg{res.Raw, pkt.from, pathOf(pkt)}
	if m.path == pathRelay && f.conn == nil { // TURN over TCP/TLS: not on the reader
		a.mu.Lock()
		queued := !a.closed && len(a.out) < maxOutQueue
		if queued {
			a.out = append(a.out, m)
		}
		a.mu.Unlock()
		if queued {
			a.kick()
		}
		return
	}
	a.sendOn(m)
}

// sendOn sends a STUN message to a peer on a path: from the flow's socket, or
// through the TURN server in a Send indication (RFC 8656 §11), which needs no
// transaction. It never blocks on the server's answer.
func (a *iceState) sendOn(m outMsg) {
	f := a.f
	if f.closed.Load() {
		return
	}
	var err error
	switch m.path {
	case pathHost:
		if f.conn == nil {
			return
		}
		_, err = f.conn.WriteToUDPAddrPort(m.b, m.dst)
	case pathRelay:
		// A Send indication: no channel, no peer state, no transaction.
		if t := f.turn.Load(); t != nil && t.allocated.Load() {
			err = t.sendIndication(m.dst, m.b)
		}
	}
	if err != nil && !f.closed.Load() {
		f.log.Debug("ice: send failed", "to", m.dst, "err", err)
	}
}

// permit asks the TURN client for a permission for ip (RFC 8656 §9), so
// that our checks from the relayed candidate reach it. relayPermit works in
// the background, keeps the permission refreshed and reports the first
// outcome to permitted; it never runs on the socket reader.
func (a *iceState) permit(ip netip.Addr) {
	f := a.f
	if f.closed.Load() {
		return
	}
	if err := f.relayPermit(ip, func(err error) { a.permitted(ip, err) }); err != nil && !f.closed.Load() {
		f.log.Debug("ice: TURN permission", "peer", ip, "err", err)
		a.permitted(ip, err)
	}
}
