//go:build !linux

package batchio

import (
	"net"
	"syscall"
)

// Conn reads and writes one datagram per call on systems without
// recvmmsg/sendmmsg.
type Conn struct{ c *net.UDPConn }

// New returns a Conn on c when it is a *net.UDPConn.
func New(c syscall.Conn) (*Conn, bool) {
	u, ok := c.(*net.UDPConn)
	if !ok {
		return nil, false
	}
	return &Conn{u}, true
}

// ReadBatch reads one datagram into the first message from bufs.Buffers.
func (b *Conn) ReadBatch(bufs Buffers) (int, error) {
	ms := bufs.Buffers()
	if len(ms) == 0 {
		return 0, syscall.EINVAL
	}
	n, from, err := b.c.ReadFromUDPAddrPort(ms[0].Buf)
	if err != nil {
		return 0, err
	}
	ms[0].N, ms[0].Addr = n, from
	return 1, nil
}

// WriteBatch sends ms one by one.
func (b *Conn) WriteBatch(ms []Msg) (int, error) {
	for i := range ms {
		if _, err := b.c.WriteToUDPAddrPort(ms[i].Buf, ms[i].Addr); err != nil {
			return i, err
		}
	}
	return len(ms), nil
}
