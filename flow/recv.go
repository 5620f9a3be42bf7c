package flow

import (
	"errors"
	"net"
	"net/netip"

	"github.com/reflow-go/reflow/internal/demux"
)

// readLoop owns the UDP socket: it reads every datagram and sorts it.
func (f *Flow) readLoop() {
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
		n, from, err := f.conn.ReadFromUDPAddrPort(pkt.buf[:])
		if err != nil {
			if f.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			f.fail(&Error{f.cfg.Component, "receive", errors.Join(ErrSocket, err)})
			return
		}
		pkt.n, pkt.from = n, unmap(from)
		if f.receive(pkt) {
			pkt = nil // ownership passed on
		}
	}
}

// receive sorts one datagram from the socket. It returns true when it kept pkt.
func (f *Flow) receive(pkt *packet) bool {
	if pkt.n >= bufSize {
		f.stats.dropped[DropOversize].Add(1)
		return false
	}
	if f.fromServer(pkt.from) {
		return f.handleServer(pkt)
	}
	return f.dispatch(pkt)
}

// dispatch sorts a datagram from a peer (directly or unwrapped from TURN).
func (f *Flow) dispatch(pkt *packet) bool {
	switch demux.Classify(pkt.buf[:pkt.n]) {
	case demux.RTP, demux.RTCP:
		return f.deliver(pkt)
	case demux.STUN:
		// Not from our NAT server: a stray request or a spoofed response.
		f.stats.dropped[DropUnexpected].Add(1)
	case demux.DTLS:
		f.stats.dropped[DropUnexpected].Add(1)
	default:
		f.stats.dropped[DropUnknown].Add(1)
	}
	return false
}

// accept applies the source filter to a media or DTLS packet from src and
// returns the net.Addr to report for it (cached per source).
func (f *Flow) accept(src netip.AddrPort) (net.Addr, bool) {
	f.mu.Lock()
	switch {
	case src == f.dest:
	case f.latchOpen:
		f.dest = src
		f.destAddr = net.UDPAddrFromAddrPort(src)
		f.latchOpen = false
		f.log.Info("latched onto media source", "addr", src)
	default:
		f.mu.Unlock()
		f.stats.dropped[DropSource].Add(1)
		return nil, false
	}
	addr := f.destAddr
	f.mu.Unlock()
	return addr, true
}

// deliver queues a media packet for the application.
func (f *Flow) deliver(pkt *packet) bool {
	addr, ok := f.accept(pkt.from)
	if !ok {
		return false
	}
	if len(pkt.buf[:pkt.n]) < 8 { // shorter than any RTCP header
		f.stats.dropped[DropMalformed].Add(1)
		return false
	}
	pkt.addr = addr
	n := uint64(pkt.n) // pkt belongs to the reader of the queue once sent
	select {
	case f.queue <- pkt:
		f.stats.packetsIn.Add(1)
		f.stats.bytesIn.Add(n)
		return true
	default:
		f.stats.dropped[DropQueueFull].Add(1)
		return false
	}
}
