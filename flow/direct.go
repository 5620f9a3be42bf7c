package flow

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"time"
)

// Direct reads.
//
// The flow's reader goroutine owns the UDP socket while nobody else reads it,
// so that STUN, TURN and DTLS are served at all times. But handing every media
// packet from that goroutine to the application's goroutine costs a goroutine
// switch per packet. So an application goroutine blocked in ReadFrom takes
// over the socket: it reads datagrams itself, sorts them with the same code
// (control traffic is handled inline) and returns the first media packet.
//
// The right to read the socket is a token (tok). The reader goroutine yields
// it when it sees an application reader waiting, and takes it back only when
// the application has stayed away from ReadFrom for directGrace, so that an
// application reading in a loop keeps the socket without a switch per packet.

// directGrace is how long the application may be away from ReadFrom before
// the flow's reader goroutine takes the socket back.
const directGrace = 10 * time.Millisecond

// initDirect sets up direct reads for a flow on a UDP socket.
func (f *Flow) initDirect() {
	f.tok = make(chan struct{}, 1)
	f.bgWake = make(chan struct{}, 1)
	f.grace = time.AfterFunc(time.Hour, func() {
		select {
		case f.bgWake <- struct{}{}:
		default:
		}
	})
	f.grace.Stop()
}

// readLoop is the flow's reader goroutine: it reads the socket whenever it
// holds the token.
func (f *Flow) readLoop() {
	defer f.wg.Done()
	for {
		select {
		case <-f.tok:
		case <-f.stopped:
			return
		}
		if !f.readUntilYield() {
			return
		}
		select {
		case <-f.bgWake:
		case <-f.stopped:
			return
		}
	}
}

// readUntilYield reads and sorts datagrams until an application reader waits
// (then it hands over the token and returns true) or the socket ends (false).
func (f *Flow) readUntilYield() bool {
	var pkt *packet
	defer func() {
		if pkt != nil {
			putPacket(pkt)
		}
	}()
	for {
		if f.appWant.Load() > 0 {
			f.tok <- struct{}{} // f.rb goes with it
			// If the waiting reader is served from the queue instead and
			// never takes the token, the grace timer brings us back.
			if !f.closed.Load() {
				f.grace.Reset(directGrace)
			}
			return true
		}
		var err error
		if f.bio != nil {
			_, err = f.readBatch()
		} else {
			if pkt == nil {
				pkt = getPacket()
			}
			var n int
			var from netip.AddrPort
			n, from, err = f.conn.ReadFromUDPAddrPort(pkt.buf[:])
			if err == nil {
				pkt.n, pkt.from = n, unmap(from)
				if f.receive(pkt) {
					pkt = nil // ownership passed on
				}
			}
		}
		if err != nil {
			if f.closed.Load() || errors.Is(err, net.ErrClosed) {
				f.rb.Idle()
				return false
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// A deadline meant for a direct reader: this goroutine wants none.
				_ = f.conn.SetReadDeadline(time.Time{})
				continue
			}
			f.rb.Idle()
			f.fail(&Error{f.cfg.Component, "receive", errors.Join(ErrSocket, err)})
			return false
		}
	}
}

// readDirect reads the socket on the caller's goroutine, which holds the
// token, until a media packet (from only, when valid) is queued; it returns
// that packet. It gives the token back before returning.
func (f *Flow) readDirect(only netip.AddrPort) (*packet, error) {
	f.grace.Stop()
	f.directing.Store(true)
	var withDeadline bool
	defer func() {
		f.directing.Store(false)
		if withDeadline {
			_ = f.conn.SetReadDeadline(time.Time{})
		}
		f.tok <- struct{}{}
		if !f.closed.Load() {
			f.grace.Reset(directGrace)
		}
	}()
	if dl := f.rdeadline.when(); !dl.IsZero() {
		withDeadline = true
		_ = f.conn.SetReadDeadline(dl)
	}
	for {
		// The reader goroutine may have queued media before it yielded the
		// token (next's select picks the token or the queue at random).
		if p := f.fromQueue(only); p != nil {
			return p, nil
		}
		var err error
		if f.bio != nil {
			_, err = f.readBatch()
		} else {
			pkt := getPacket()
			var n int
			var from netip.AddrPort
			n, from, err = f.conn.ReadFromUDPAddrPort(pkt.buf[:])
			if err == nil {
				pkt.n, pkt.from = n, unmap(from)
				if !f.receive(pkt) {
					putPacket(pkt)
				}
			} else {
				putPacket(pkt)
			}
		}
		if err != nil {
			switch {
			case f.closed.Load() || errors.Is(err, net.ErrClosed):
				return nil, ErrClosed
			case errors.Is(err, os.ErrDeadlineExceeded):
				withDeadline = true
				if dl := f.rdeadline.when(); !dl.IsZero() && time.Now().Before(dl) {
					_ = f.conn.SetReadDeadline(dl) // moved later meanwhile
					continue
				}
				return nil, errTimeout
			}
			err = &Error{f.cfg.Component, "receive", errors.Join(ErrSocket, err)}
			f.fail(err)
			return nil, err
		}
		if p := f.handed; p != nil {
			f.handed = nil
			if !only.IsValid() || p.from == only {
				return p, nil
			}
			f.stats.dropped[DropFiltered].Add(1)
			putPacket(p)
		}
	}
}

// fromQueue returns the next queued media packet (from only, when valid),
// discarding others, or nil when the queue is empty.
func (f *Flow) fromQueue(only netip.AddrPort) *packet {
	q := f.queue.Load()
	if q == nil {
		return nil
	}
	for {
		select {
		case p := <-*q:
			if only.IsValid() && p.from != only {
				f.stats.dropped[DropFiltered].Add(1)
				putPacket(p)
				continue
			}
			return p
		default:
			return nil
		}
	}
}
