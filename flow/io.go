package flow

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"time"
)

// ReadFrom reads the next media packet (plain RTP or RTCP) into p and returns its
// length and source (net.PacketConn). A packet longer than p is truncated. The
// returned address is shared between calls for the same source and must not be
// modified.
func (f *Flow) ReadFrom(p []byte) (int, net.Addr, error) {
	pkt, err := f.next(netip.AddrPort{})
	if err != nil {
		return 0, nil, err
	}
	n, addr := copy(p, pkt.buf[:pkt.n]), pkt.addr
	putPacket(pkt)
	return n, addr, nil
}

// ReadFromAddrPort is ReadFrom returning a netip.AddrPort; it never allocates.
func (f *Flow) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	pkt, err := f.next(netip.AddrPort{})
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	n, from := copy(p, pkt.buf[:pkt.n]), pkt.from
	putPacket(pkt)
	return n, from, nil
}

// ReadFromSource reads the next media packet from src only, discarding (and
// counting as DropFiltered) packets from other sources: reflow's receiveFrom.
func (f *Flow) ReadFromSource(p []byte, src netip.AddrPort) (int, error) {
	pkt, err := f.next(unmap(src))
	if err != nil {
		return 0, err
	}
	n := copy(p, pkt.buf[:pkt.n])
	putPacket(pkt)
	return n, nil
}

// Read reads the next media packet, from any accepted source.
func (f *Flow) Read(p []byte) (int, error) {
	n, _, err := f.ReadFromAddrPort(p)
	return n, err
}

var errTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string {
	return "flow: read deadline exceeded: " + os.ErrDeadlineExceeded.Error()
}
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Is(err error) bool {
	return err == os.ErrDeadlineExceeded
}

func (f *Flow) next(only netip.AddrPort) (*packet, error) {
	if f.tok != nil {
		f.appWant.Add(1)
		defer f.appWant.Add(-1)
	}
	for {
		if pkt := f.fromQueue(only); pkt != nil { // fast path: a packet is waiting
			return pkt, nil
		}
		if f.closed.Load() {
			return nil, ErrClosed
		}
		select {
		case pkt := <-f.recvQueue():
			if only.IsValid() && pkt.from != only {
				f.stats.dropped[DropFiltered].Add(1)
				putPacket(pkt)
				continue
			}
			return pkt, nil
		case <-f.tok: // nil, so never ready, without a UDP socket
			pkt, err := f.readDirect(only)
			if err != nil {
				return nil, err
			}
			return pkt, nil
		case <-f.stopped:
			return nil, ErrClosed
		case <-f.rdeadline.wait():
			return nil, errTimeout
		}
	}
}

// SetReadDeadline sets the deadline for ReadFrom and friends; zero means none.
// A read past it fails with an error matching os.ErrDeadlineExceeded.
func (f *Flow) SetReadDeadline(t time.Time) error {
	if f.closed.Load() {
		return ErrClosed
	}
	f.rdeadline.set(t)
	if f.directing.Load() {
		// Wake an application goroutine blocked on the socket; a reader
		// goroutine that gets the deadline instead clears it.
		_ = f.conn.SetReadDeadline(t)
	}
	return nil
}

// SetWriteDeadline sets the deadline for writes on the flow's socket.
func (f *Flow) SetWriteDeadline(t time.Time) error {
	if f.closed.Load() {
		return ErrClosed
	}
	if f.conn == nil {
		return nil // TURN over TCP/TLS: writes go through the relay
	}
	return f.conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines.
func (f *Flow) SetDeadline(t time.Time) error {
	if err := f.SetReadDeadline(t); err != nil {
		return err
	}
	return f.SetWriteDeadline(t)
}

// Write sends p to the active destination.
// Like every write method it returns *Error values matching this package's
// sentinels (and net.ErrClosed once the flow is closed).
func (f *Flow) Write(p []byte) (int, error) {
	if f.closed.Load() {
		return 0, f.writeErr(ErrClosed)
	}
	dst := f.dst.Load().ap
	if !dst.IsValid() {
		return 0, f.writeErr(ErrNoDestination)
	}
	return f.WriteToAddrPort(p, dst)
}

// writeErr returns err as an *Error of a write: as it is when it is one
// already; a socket error that matches no sentinel of ours also matches
// ErrSocket.
func (f *Flow) writeErr(err error) error {
	var fe *Error
	if errors.As(err, &fe) {
		return err
	}
	for _, known := range []error{ErrClosed, ErrNoDestination, ErrPacketTooLarge, ErrInvalidAddress, ErrNotSecure} {
		if errors.Is(err, known) {
			return &Error{f.cfg.Component, "write", err}
		}
	}
	return &Error{f.cfg.Component, "write", errors.Join(ErrSocket, err)}
}

// WriteTo sends p to addr (net.PacketConn). addr must be a *net.UDPAddr or print as ip:port.
func (f *Flow) WriteTo(p []byte, addr net.Addr) (int, error) {
	ap, ok := addrPortOf(addr)
	if !ok {
		return 0, f.writeErr(ErrInvalidAddress)
	}
	return f.WriteToAddrPort(p, ap)
}

// WriteToAddrPort sends p to dst: through the TURN relay in TURN modes, SRTP
// protected once keys are set. It never allocates on the steady-state path.
func (f *Flow) WriteToAddrPort(p []byte, dst netip.AddrPort) (int, error) {
	if f.closed.Load() {
		return 0, f.writeErr(ErrClosed)
	}
	if len(p) > MaxPacketSize {
		return 0, f.writeErr(ErrPacketTooLarge)
	}
	if !dst.IsValid() || dst.Port() == 0 {
		return 0, f.writeErr(ErrInvalidAddress)
	}
	dst = unmap(dst)
	if _, err := f.send(p, dst); err != nil {
		if f.closed.Load() || errors.Is(err, net.ErrClosed) {
			return 0, f.writeErr(ErrClosed)
		}
		return 0, f.writeErr(err)
	}
	f.stats.packetsOut.Add(1)
	f.stats.bytesOut.Add(uint64(len(p)))
	return len(p), nil
}

// send transmits one media packet: protect (when keyed) and hand to the NAT path.
func (f *Flow) send(p []byte, dst netip.AddrPort) (int, error) {
	out, buf, err := f.protect(p)
	if err != nil {
		return 0, err
	}
	n, err := f.sendRaw(out, dst)
	if buf != nil {
		putPacket(buf)
	}
	return n, err
}

// sendRaw transmits a datagram unchanged to dst, through the relay in TURN modes.
func (f *Flow) sendRaw(b []byte, dst netip.AddrPort) (int, error) {
	if direct, err := f.icePath(dst); err != nil || direct { // ICE: consent, and the selected pair's path
		if err != nil {
			return 0, err
		}
		return f.conn.WriteToUDPAddrPort(b, dst)
	}
	if f.cfg.NAT.Mode.IsTURN() {
		return f.relayWrite(b, dst)
	}
	return f.conn.WriteToUDPAddrPort(b, dst)
}
