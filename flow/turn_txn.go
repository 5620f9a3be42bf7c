package flow

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/stun/v2"
	"github.com/reflow-go/reflow/internal/stunx"
)

// Transactions of the flow's TURN client (RFC 8489 §6.2, §9.2; RFC 8656).
//
// Every request gets a fresh random transaction ID and is remembered until
// its transaction ends. A response from the server is used only when its
// transaction ID, method and class match a request in flight, and, for a
// request that carried MESSAGE-INTEGRITY (every request once the realm and
// nonce are known), when its own MESSAGE-INTEGRITY verifies with the
// allocation's long-term key. The one exception are the error responses the
// RFC forbids the server to sign (400, 401 and 438, RFC 8489 §9.2.4): they
// are matched on the transaction ID alone, and they never end an
// allocation. Everything else from the server's address is dropped and
// counted (DropUnexpected, or DropAuth for a bad MESSAGE-INTEGRITY).

// txn is one request in flight.
type txn struct {
	id     [stun.TransactionIDSize]byte
	method stun.Method
	key    stun.MessageIntegrity // nil: the request was not signed
	res    chan *stun.Message    // buffered 1
}

// rtx is a retransmission schedule over UDP: the first retransmission after
// first, doubling up to max. Over TCP/TLS requests are sent once (RFC 8489 §6.2.2).
type rtx struct{ first, max time.Duration }

// register and unregister track a transaction in flight.
func (t *turnState) register(x *txn) {
	t.txMu.Lock()
	t.txns[x.id] = x
	t.txMu.Unlock()
}

func (t *turnState) unregister(x *txn) {
	t.txMu.Lock()
	delete(t.txns, x.id)
	t.txMu.Unlock()
}

// onResponse matches a response from the server to a transaction in flight.
func (t *turnState) onResponse(m *stun.Message) {
	f := t.f
	t.txMu.Lock()
	x := t.txns[m.TransactionID]
	t.txMu.Unlock()
	if x == nil || x.method != m.Type.Method {
		f.stats.dropped[DropUnexpected].Add(1)
		return
	}
	if m.Contains(stun.AttrFingerprint) {
		var bad error
		if err := stunx.Safe(func() { bad = stun.Fingerprint.Check(m) }); err != nil || bad != nil {
			f.stats.dropped[DropMalformed].Add(1)
			return
		}
	}
	if x.key != nil {
		signed := m.Contains(stun.AttrMessageIntegrity)
		if !signed && (m.Type.Class == stun.ClassSuccessResponse || !unsignedCode(errorCode(m))) {
			f.stats.dropped[DropAuth].Add(1)
			return
		}
		if signed {
			var bad error
			if err := stunx.Safe(func() { bad = x.key.Check(m) }); err != nil || bad != nil {
				f.stats.dropped[DropAuth].Add(1)
				return
			}
		}
	}
	select {
	case x.res <- m:
	default: // a duplicate answer to a retransmission
		f.stats.dropped[DropUnexpected].Add(1)
	}
}

// unsignedCode reports whether an error code may come without MESSAGE-INTEGRITY (RFC 8489 §9.2.4).
func unsignedCode(code int) bool { return code == 400 || code == 401 || code == 438 }

// errorCode returns the code of an error response, or 0.
func errorCode(m *stun.Message) int {
	if m.Type.Class != stun.ClassErrorResponse {
		return 0
	}
	var c stun.ErrorCodeAttribute
	if err := stunx.Safe(func() { _ = c.GetFrom(m) }); err != nil {
		return 0
	}
	return int(c.Code)
}

func errorReason(m *stun.Message) string {
	var c stun.ErrorCodeAttribute
	_ = stunx.Safe(func() { _ = c.GetFrom(m) })
	return fmt.Sprintf("%d %s", c.Code, c.Reason)
}

// isSigned reports whether a response was authenticated with the long-term
// key (onResponse let it through only if its MESSAGE-INTEGRITY verified).
func isSigned(m *stun.Message) bool { return m.Contains(stun.AttrMessageIntegrity) }

// errNoAnswer ends a transaction that got no response before its deadline.
var errNoAnswer = errors.New("no answer")

// exchange sends raw and waits for the response to x, retransmitting over
// UDP on schedule r, until ctx ends.
func (t *turnState) exchange(ctx context.Context, x *txn, raw []byte, r rtx) (*stun.Message, error) {
	t.register(x)
	defer t.unregister(x)
	if err := t.writeControl(raw); err != nil {
		return nil, err
	}
	var tick <-chan time.Time
	var timer *time.Timer
	rto := r.first
	if t.stream == nil && rto > 0 {
		timer = time.NewTimer(rto)
		defer timer.Stop()
		tick = timer.C
	}
	for {
		select {
		case m := <-x.res:
			return m, nil
		case <-tick:
			if err := t.writeControl(raw); err != nil {
				return nil, err
			}
			rto = min(2*rto, r.max)
			timer.Reset(rto)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, errNoAnswer
			}
			return nil, ctx.Err()
		}
	}
}

// writeControl sends a STUN message to the server.
func (t *turnState) writeControl(raw []byte) error {
	var err error
	if t.stream != nil {
		_, err = t.stream.Write(raw)
	} else {
		_, err = t.f.conn.WriteToUDPAddrPort(raw, t.server)
		if err != nil && isTransient(err) {
			err = nil // a retransmission follows
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSocket, err)
	}
	return nil
}

// credentials returns the current realm, nonce and key (nil before the
// first 401).
func (t *turnState) credentials() (realm, nonce string, key stun.MessageIntegrity) {
	t.authMu.Lock()
	defer t.authMu.Unlock()
	return t.realm, t.nonce, t.key
}

// learn takes REALM and NONCE from a 401 or 438 answer. It reports whether
// they changed (a retry can then succeed).
func (t *turnState) learn(m *stun.Message) bool {
	var realm stun.Realm
	var nonce stun.Nonce
	var rerr, nerr error
	if err := stunx.Safe(func() { rerr = realm.GetFrom(m); nerr = nonce.GetFrom(m) }); err != nil || nerr != nil {
		return false
	}
	t.authMu.Lock()
	defer t.authMu.Unlock()
	changed := nonce.String() != t.nonce
	t.nonce = nonce.String()
	if rerr == nil && (realm.String() != t.realm || t.key == nil) {
		t.realm = realm.String()
		t.key = stun.NewLongTermIntegrity(t.f.cfg.NAT.Username, t.realm, t.f.cfg.NAT.Password)
		changed = true
	}
	return changed && t.key != nil
}

// request runs a request transaction of method with attrs, signing it once
// the realm and nonce are known and retrying after 401/438 with a new
// nonce (RFC 8489 §9.2.3). It returns the final response: a success, a
// signed error, or an unsigned 400/401/438 that a retry could not fix.
func (t *turnState) request(ctx context.Context, method stun.Method, attrs []stun.Setter, r rtx) (*stun.Message, error) {
	for try := 0; ; try++ {
		m, key, err := t.build(method, attrs)
		if err != nil {
			return nil, err
		}
		if method == methodAllocate && key != nil {
			t.allocSent.Store(true) // the server may allocate from now on
		}
		x := &txn{id: m.TransactionID, method: method, key: key, res: make(chan *stun.Message, 1)}
		res, err := t.exchange(ctx, x, m.Raw, r)
		if err != nil {
			return nil, err
		}
		code := errorCode(res)
		if (code == 401 || code == 438) && try < 3 && t.learn(res) {
			continue
		}
		return res, nil
	}
}

// build makes a request of method with attrs, signed once the realm and
// nonce are known; it returns the key it was signed with.
func (t *turnState) build(method stun.Method, attrs []stun.Setter) (*stun.Message, stun.MessageIntegrity, error) {
	realm, nonce, key := t.credentials()
	setters := make([]stun.Setter, 0, len(attrs)+8)
	setters = append(setters, stun.TransactionID, stun.NewType(method, stun.ClassRequest))
	setters = append(setters, attrs...)
	setters = append(setters, stun.NewSoftware(stunx.Software))
	if key != nil {
		setters = append(setters, stun.NewUsername(t.f.cfg.NAT.Username), stun.NewRealm(realm), stun.NewNonce(nonce), key)
	}
	setters = append(setters, stun.Fingerprint)
	m, err := stun.Build(setters...)
	return m, key, err
}

// xorAddr decodes an XOR-encoded address attribute value already checked
// by stunx.Validate (family 1 and 8 bytes, or family 2 and 20 bytes).
func xorAddr(v []byte, id [stun.TransactionIDSize]byte) (netip.AddrPort, bool) {
	if len(v) != 8 && len(v) != 20 {
		return netip.AddrPort{}, false
	}
	port := binary.BigEndian.Uint16(v[2:4]) ^ 0x2112
	var mask [16]byte
	binary.BigEndian.PutUint32(mask[:], stunMagic)
	copy(mask[4:], id[:])
	if v[1] == 1 && len(v) == 8 {
		var ip [4]byte
		for i := range ip {
			ip[i] = v[4+i] ^ mask[i]
		}
		return netip.AddrPortFrom(netip.AddrFrom4(ip), port), true
	}
	if v[1] == 2 && len(v) == 20 {
		var ip [16]byte
		for i := range ip {
			ip[i] = v[4+i] ^ mask[i]
		}
		return netip.AddrPortFrom(netip.AddrFrom16(ip).Unmap(), port), true
	}
	return netip.AddrPort{}, false
}

const stunMagic = 0x2112A442

// peerAttr is an XOR-PEER-ADDRESS setter.
type peerAttr netip.AddrPort

func (p peerAttr) AddTo(m *stun.Message) error {
	ap := netip.AddrPort(p)
	a := stun.XORMappedAddress{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	return a.AddToAs(m, stun.AttrXORPeerAddress)
}

// turnAttr is an attribute setter with a fixed value.
type turnAttr struct {
	t stun.AttrType
	v []byte
}

func (r turnAttr) AddTo(m *stun.Message) error { m.Add(r.t, r.v); return nil }
