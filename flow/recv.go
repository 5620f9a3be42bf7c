package flow

import (
	"net"
	"net/netip"

	"github.com/reflow-go/reflow/internal/demux"
)

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
	switch kind := demux.Classify(pkt.buf[:pkt.n]); kind {
	case demux.RTP, demux.RTCP:
		return f.deliver(pkt, kind)
	case demux.STUN:
		if ice := f.ice.Load(); ice != nil {
			f.iceInbound(ice, pkt) // a connectivity check (ICE-lite)
			return false
		}
		// Not from our NAT server: a stray request or a spoofed response.
		f.stats.dropped[DropUnexpected].Add(1)
	case demux.DTLS:
		return f.dtlsInbound(pkt)
	default:
		f.stats.dropped[DropUnknown].Add(1)
	}
	return false
}

// source reports whether src is the active destination (isDest) or may be
// latched onto once the packet has proved genuine (latch).
func (f *Flow) source(src netip.AddrPort) (isDest, latch bool) {
	d := f.dst.Load()
	if src == d.ap {
		return true, false
	}
	return false, d.latchOpen
}

// latchOnto makes src the active destination if the latch is still open, and
// returns the net.Addr to report for packets from the destination.
func (f *Flow) latchOnto(src netip.AddrPort) (net.Addr, bool) {
	for {
		d := f.dst.Load()
		if src == d.ap {
			return d.addr, true
		}
		if !d.latchOpen {
			return nil, false
		}
		nd := &destination{ap: src, addr: net.UDPAddrFromAddrPort(src)}
		if f.dst.CompareAndSwap(d, nd) {
			f.log.Info("latched onto media source", "addr", src)
			return nd.addr, true
		}
	}
}

// deliver checks a media packet (source, length, SRTP) and queues it for the
// application. A latching flow adopts a new source only after its packet
// passed these checks.
func (f *Flow) deliver(pkt *packet, kind demux.Kind) bool {
	isDest, latch := f.source(pkt.from)
	if !isDest && !latch {
		f.stats.dropped[DropSource].Add(1)
		return false
	}
	if pkt.n < 8 { // shorter than any RTCP header
		f.stats.dropped[DropMalformed].Add(1)
		return false
	}
	if !f.unprotect(pkt, kind) {
		return false
	}
	addr, ok := f.latchOnto(pkt.from)
	if !ok {
		f.stats.dropped[DropSource].Add(1)
		return false
	}
	pkt.addr = addr
	if f.directing.Load() && f.handed == nil {
		// The caller is an application goroutine reading the socket
		// itself (direct.go): hand the packet over without the queue.
		f.handed = pkt
		f.stats.packetsIn.Add(1)
		f.stats.bytesIn.Add(uint64(pkt.n))
		return true
	}
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
