package sipp2p

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// trackedListener wraps a TCP listener so that Close can wait for sipgo's
// reader of every accepted connection: sipgo starts one goroutine per
// connection and does not wait for it.
type trackedListener struct {
	net.Listener
	e *Endpoint
}

// Accept returns the next connection, tracked.
func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, ended: make(chan struct{})}
	l.e.mu.Lock()
	if l.e.closed {
		l.e.mu.Unlock()
		c.Close()
		return nil, net.ErrClosed
	}
	for o := range l.e.conns {
		select {
		case <-o.ended:
			delete(l.e.conns, o)
		default:
		}
	}
	l.e.conns[tc] = struct{}{}
	l.e.mu.Unlock()
	return tc, nil
}

// trackedConn is an accepted connection whose reader's end is observed:
// sipgo's reader returns at the first read error and closes the connection
// when it leaves.
type trackedConn struct {
	net.Conn
	mu      sync.Mutex
	reading bool
	closed  bool
	once    sync.Once
	ended   chan struct{} // closed when no reader can be left in Read
}

func (c *trackedConn) end() { c.once.Do(func() { close(c.ended) }) }

// Read reads from the connection and records a failure.
func (c *trackedConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	c.reading = true
	c.mu.Unlock()
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.reading = false
	closed := c.closed
	c.mu.Unlock()
	if err != nil || closed {
		c.end()
	}
	return n, err
}

// Close closes the connection; with no Read in progress the reader is done.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	c.closed = true
	idle := !c.reading
	c.mu.Unlock()
	if idle {
		c.end()
	}
	return err
}

// closeConns closes the accepted connections and waits (at most 2 s in all)
// until their readers have seen the close.
func (e *Endpoint) closeConns() {
	e.mu.Lock()
	cs := make([]*trackedConn, 0, len(e.conns))
	for c := range e.conns {
		cs = append(cs, c)
	}
	e.conns = make(map[*trackedConn]struct{})
	e.mu.Unlock()
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	for _, c := range cs {
		c.Close()
		select {
		case <-c.ended:
		case <-t.C:
			return
		}
	}
}

// outgoing is a TCP or TLS destination of our requests.
type outgoing struct {
	t    Transport
	addr netip.AddrPort
}

// maxOutgoing bounds the recorded destinations; past it those without an
// open connection are forgotten.
const maxOutgoing = 1024

// noteOutgoing records a TCP or TLS destination (host:port) of ours: sipgo
// may open a connection to it, with a reader of its own that Close must
// wait for (closeOutgoing). Destinations by name are not recorded.
func (e *Endpoint) noteOutgoing(t Transport, dest string) {
	if t == UDP {
		return
	}
	ap, err := netip.ParseAddrPort(dest)
	if err != nil {
		return
	}
	o := outgoing{t, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return
	}
	if e.outgoing == nil {
		e.outgoing = make(map[outgoing]struct{})
	}
	if len(e.outgoing) >= maxOutgoing {
		for k := range e.outgoing {
			if p := e.ua.TransportLayer().Pool(string(k.t)); p == nil || !inPool(p, k.addr.String(), nil) {
				delete(e.outgoing, k)
			}
		}
	}
	e.outgoing[o] = struct{}{}
}

// closeOutgoing closes the TCP and TLS connections sipgo opened to our
// destinations and waits (at most 2 s in all) until the reader of each has
// finished with it. sipgo starts a reader per connection it dials and does
// not wait for it; the reader's last step is to take the connection out of
// its pool under the connection's local address, which is what this waits
// for (a bounded poll: sipgo offers no signal).
func (e *Endpoint) closeOutgoing() {
	e.mu.Lock()
	dests := make([]outgoing, 0, len(e.outgoing))
	for o := range e.outgoing {
		dests = append(dests, o)
	}
	e.outgoing = nil
	e.mu.Unlock()
	type open struct {
		pool  *sip.ConnectionPool
		local string
		c     sip.Connection
	}
	var opened []open
	for _, o := range dests {
		pool := e.ua.TransportLayer().Pool(string(o.t))
		if pool == nil {
			continue
		}
		c := pool.Get(o.addr.String())
		if c == nil {
			continue
		}
		c.Ref(-1) // Get took a reference
		opened = append(opened, open{pool, c.LocalAddr().String(), c})
		c.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for _, o := range opened {
		for inPool(o.pool, o.local, o.c) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // bounded poll of sipgo's pool
		}
	}
}

// inPool reports whether pool holds c (any connection when c is nil) under addr.
func inPool(pool *sip.ConnectionPool, addr string, c sip.Connection) bool {
	cur := pool.Get(addr)
	if cur == nil {
		return false
	}
	cur.Ref(-1) // Get took a reference
	return c == nil || cur == c
}
