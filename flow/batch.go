package flow

import (
	"errors"
	"net"
	"sync"

	"github.com/reflow-go/reflow/internal/batchio"
)

// Batched socket I/O.
//
// On Linux a flow on a *net.UDPConn reads its socket with recvmmsg: one
// system call takes every datagram already queued (up to batchio.MaxBatch),
// and returns at once with a lone one, so a single packet waits for nothing.
// Each datagram of a batch is then sorted exactly as if it had been read
// alone (receive: STUN, TURN, DTLS, media, SRTP, latching), in order.
//
// The batch (its packet buffers and kernel headers) is taken from a pool only
// while the socket is readable and given back before the reader waits, so an
// idle flow holds no receive buffer at all.
//
// WriteBatch is the write side: sendmmsg, with each packet SRTP-protected.

// rxBatch is the receive buffers of one batch; pooled with its packets.
type rxBatch struct {
	pkts [batchio.MaxBatch]*packet
	msgs [batchio.MaxBatch]batchio.Msg
}

var rxPool = sync.Pool{New: func() any { return new(rxBatch) }}

// batchRx supplies a flow's batch reads with buffers (batchio.Buffers). Only
// the goroutine holding the socket token touches it.
type batchRx struct{ cur *rxBatch }

// Buffers takes a batch (when none is held) and fills its empty slots.
func (r *batchRx) Buffers() []batchio.Msg {
	b := r.cur
	if b == nil {
		b = rxPool.Get().(*rxBatch)
		r.cur = b
	}
	for i, p := range b.pkts {
		if p == nil {
			p = getPacket()
			b.pkts[i], b.msgs[i].Buf = p, p.buf[:]
		}
	}
	return b.msgs[:]
}

// Idle gives the batch back to the pool while the socket has nothing.
func (r *batchRx) Idle() {
	if r.cur != nil {
		rxPool.Put(r.cur)
		r.cur = nil
	}
}

// initBatch enables batched reads and writes on a *net.UDPConn where the
// platform has them.
func (f *Flow) initBatch() {
	if u, ok := f.conn.(*net.UDPConn); ok {
		if b, ok := batchio.New(u); ok {
			f.bio = b
		}
	}
}

// readBatch reads one batch of datagrams (waiting for the first) and sorts
// each as if it had been read alone; it returns how many it read. The caller
// holds the socket token.
func (f *Flow) readBatch() (int, error) {
	n, err := f.bio.ReadBatch(&f.rb)
	if err != nil {
		return 0, err
	}
	b := f.rb.cur
	for i := range n {
		m, p := &b.msgs[i], b.pkts[i]
		p.n, p.from = m.N, unmap(m.Addr)
		if f.receive(p) { // ownership passed on
			b.pkts[i], m.Buf = nil, nil
		}
	}
	return n, nil
}

// txBatch holds the SRTP output of one sendmmsg; pooled with its packets.
type txBatch struct {
	pkts [batchio.MaxBatch]*packet
	msgs [batchio.MaxBatch]batchio.Msg
}

var txPool = sync.Pool{New: func() any { return new(txBatch) }}

// WriteBatch sends pkts, in order, to the active destination, each as Write
// would: SRTP- or SRTCP-protected when outbound keys are set (refused with
// ErrNotSecure on a secure flow without them), at most MaxPacketSize bytes.
// On Linux, on a flow whose media goes straight from its UDP socket (no TURN
// relay; with ICE, the selected pair is direct), the packets leave in
// sendmmsg calls of up to 16; otherwise one by one. It returns how many
// packets were sent; an error stops it at the first packet that could not be
// sent (the ones before it were). It does not allocate.
func (f *Flow) WriteBatch(pkts [][]byte) (int, error) {
	if f.closed.Load() {
		return 0, f.writeErr(ErrClosed)
	}
	dst := f.dst.Load().ap
	if !dst.IsValid() {
		return 0, f.writeErr(ErrNoDestination)
	}
	direct, err := f.icePath(dst)
	if err != nil {
		return 0, f.writeErr(err)
	}
	if f.bio == nil || (!direct && (f.ice.Load() != nil || f.cfg.NAT.Mode.IsTURN())) {
		for i, p := range pkts {
			if _, err := f.WriteToAddrPort(p, dst); err != nil {
				return i, err
			}
		}
		return len(pkts), nil
	}
	tb := txPool.Get().(*txBatch)
	defer txPool.Put(tb)
	sent := 0
	for sent < len(pkts) {
		k := 0
		var stop error
		for ; k < batchio.MaxBatch && sent+k < len(pkts); k++ {
			p := pkts[sent+k]
			if len(p) > MaxPacketSize {
				stop = ErrPacketTooLarge
				break
			}
			out, err := f.protectBatch(tb, k, p)
			if err != nil {
				stop = err
				break
			}
			tb.msgs[k].Buf, tb.msgs[k].Addr = out, dst
		}
		n, err := f.bio.WriteBatch(tb.msgs[:k])
		clear(tb.msgs[:k]) // no references to the caller's packets in the pool
		if n > 0 {
			bytes := 0
			for _, p := range pkts[sent : sent+n] {
				bytes += len(p)
			}
			f.stats.packetsOut.Add(uint64(n))
			f.stats.bytesOut.Add(uint64(bytes))
		}
		sent += n
		if err != nil {
			if f.closed.Load() || errors.Is(err, net.ErrClosed) {
				return sent, f.writeErr(ErrClosed)
			}
			return sent, f.writeErr(err)
		}
		if stop != nil {
			return sent, f.writeErr(stop)
		}
	}
	return sent, nil
}

// protectBatch returns p protected for the wire in tb's slot i (p itself
// when no protection applies).
func (f *Flow) protectBatch(tb *txBatch, i int, p []byte) ([]byte, error) {
	e, err := f.encrypter()
	if err != nil {
		return nil, err
	}
	if e == nil {
		return p, nil
	}
	pkt := tb.pkts[i]
	if pkt == nil {
		pkt = getPacket()
		tb.pkts[i] = pkt
	}
	return f.seal(e, pkt, p)
}
