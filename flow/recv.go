package flow

import (
	"net"
	"net/netip"
	"time"

	"github.com/reflow-go/reflow/internal/demux"
)

// receive sorts one datagram from the socket. It returns true when it kept pkt.
func (f *Flow) receive(pkt *packet) bool {
	if pkt.n >= bufSize {
		f.stats.dropped[DropOversize].Add(1)
		return false
	}
	if pkt.relayed = f.fromServer(pkt.from); pkt.relayed {
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

// latchState is what a latching flow knows about its sources. Only the
// goroutine that holds the socket (the reader, or a direct application reader)
// touches it.
type latchState struct {
	lastDest time.Duration  // clock() of the last genuine packet from the destination
	cand     netip.AddrPort // a source waiting to take over
	count    int            // its consecutive genuine packets
}

var clockBase = time.Now()

// clock is a monotonic reading.
func clock() time.Duration { return time.Since(clockBase) }

// accept decides, after pkt passed every check (SRTP included), whether it is
// delivered; on a latching flow it applies the latching rule (see
// Config.Latch). It returns the net.Addr to report.
func (f *Flow) accept(pkt *packet) (net.Addr, bool) {
	src := pkt.from
	for {
		d := f.dst.Load()
		if src == d.ap {
			if !f.cfg.Latch {
				return d.addr, true
			}
			f.latch.lastDest, f.latch.count = clock(), 0
			if !d.latchOpen {
				return d.addr, true
			}
			// Media from the destination itself: the source is learned.
			nd := &destination{ap: d.ap, addr: d.addr}
			if f.dst.CompareAndSwap(d, nd) {
				return nd.addr, true
			}
			continue
		}
		if !f.cfg.Latch {
			return nil, false
		}
		if !d.latchOpen {
			now := clock()
			if d.ap.IsValid() && now-f.latch.lastDest < f.cfg.LatchSilence {
				f.latch.cand, f.latch.count = netip.AddrPort{}, 0 // the learned source is alive
				return nil, false
			}
			if f.latch.cand != src {
				f.latch.cand, f.latch.count = src, 0
			}
			f.latch.count++
			if f.latch.count < f.cfg.LatchPackets {
				return nil, false
			}
		}
		nd := &destination{ap: src, addr: net.UDPAddrFromAddrPort(src)}
		if f.dst.CompareAndSwap(d, nd) {
			f.latch.lastDest, f.latch.cand, f.latch.count = clock(), netip.AddrPort{}, 0
			f.log.Info("latched onto media source", "addr", src, "previous", d.ap)
			f.emit(Event{Flow: f, Kind: EventSourceChanged, From: d.ap, To: src})
			return nd.addr, true
		}
	}
}

// deliver checks a media packet (source, length, SRTP) and queues it for the
// application. A latching flow adopts a new source only after its packet
// passed these checks.
func (f *Flow) deliver(pkt *packet, kind demux.Kind) bool {
	if !f.cfg.Latch && pkt.from != f.dst.Load().ap {
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
	addr, ok := f.accept(pkt)
	if !ok {
		f.stats.dropped[DropSource].Add(1)
		return false
	}
	pkt.addr = addr
	if f.directing.Load() && f.handed == nil {
		// The caller is an application goroutine reading the socket
		// itself (direct.go): hand the packet over without the queue.
		f.handed = pkt
		f.stats.direct.Add(1)
		f.stats.packetsIn.Add(1)
		f.stats.bytesIn.Add(uint64(pkt.n))
		return true
	}
	// Counted before the packet is queued: its reader may look at the
	// counters as soon as it has it. pkt belongs to that reader once sent.
	n := uint64(pkt.n)
	f.stats.packetsIn.Add(1)
	f.stats.bytesIn.Add(n)
	select {
	case f.recvQueue() <- pkt:
		return true
	default:
		f.stats.packetsIn.Add(^uint64(0))
		f.stats.bytesIn.Add(-n)
		f.stats.dropped[DropQueueFull].Add(1)
		return false
	}
}
