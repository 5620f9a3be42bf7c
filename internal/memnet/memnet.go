// Package memnet is an in-memory datagram network for tests that run under
// testing/synctest, where goroutines blocked on real sockets would keep fake
// time from advancing. Its sockets implement flow.PacketConn and net.PacketConn.
package memnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Network is a set of sockets that reach each other by address.
type Network struct {
	mu    sync.Mutex
	conns map[netip.AddrPort]*Conn
	next  uint16
}

// New returns an empty network.
func New() *Network { return &Network{conns: make(map[netip.AddrPort]*Conn), next: 20000} }

type datagram struct {
	b    []byte
	from netip.AddrPort
}

// Conn is one socket. Its queue holds 256 datagrams; more are dropped.
type Conn struct {
	n      *Network
	addr   netip.AddrPort
	in     chan datagram
	closed chan struct{}
	once   sync.Once

	mu    sync.Mutex
	timer *time.Timer
	dlch  chan struct{}
}

// Listen opens a socket; port 0 picks one. network is ignored.
func (n *Network) Listen(network string, addr netip.AddrPort) (*Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if addr.Port() == 0 {
		for {
			n.next++
			a := netip.AddrPortFrom(addr.Addr(), n.next)
			if _, used := n.conns[a]; !used {
				addr = a
				break
			}
		}
	} else if _, used := n.conns[addr]; used {
		return nil, fmt.Errorf("memnet: listen %s: address already in use", addr)
	}
	c := &Conn{n: n, addr: addr, in: make(chan datagram, 256), closed: make(chan struct{}), dlch: make(chan struct{})}
	n.conns[addr] = c
	return c, nil
}

// ReadFromUDPAddrPort reads one datagram.
func (c *Conn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	c.mu.Lock()
	dl := c.dlch
	c.mu.Unlock()
	select {
	case d := <-c.in:
		return copy(b, d.b), d.from, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	case <-dl:
		return 0, netip.AddrPort{}, os.ErrDeadlineExceeded
	}
}

// ReadFrom implements net.PacketConn.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteToUDPAddrPort sends one datagram; to an address nobody listens on it is lost.
func (c *Conn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.n.mu.Lock()
	dst := c.n.conns[to]
	c.n.mu.Unlock()
	if dst == nil {
		return len(b), nil
	}
	select {
	case dst.in <- datagram{append([]byte(nil), b...), c.addr}:
	default:
	}
	return len(b), nil
}

// WriteTo implements net.PacketConn.
func (c *Conn) WriteTo(b []byte, to net.Addr) (int, error) {
	u, ok := to.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("memnet: not a UDP address")
	}
	ap := u.AddrPort()
	return c.WriteToUDPAddrPort(b, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// LocalAddr returns the socket's address.
func (c *Conn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.addr) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.dlch = make(chan struct{})
	if t.IsZero() {
		return nil
	}
	ch := c.dlch
	c.timer = time.AfterFunc(time.Until(t), func() { close(ch) })
	return nil
}

// SetWriteDeadline is a no-op: writes never block.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the read deadline.
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// Close closes the socket.
func (c *Conn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.n.mu.Lock()
		delete(c.n.conns, c.addr)
		c.n.mu.Unlock()
		c.mu.Lock()
		if c.timer != nil {
			c.timer.Stop()
		}
		c.mu.Unlock()
	})
	return nil
}
