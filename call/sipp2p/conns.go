package sipp2p

import (
	"net"
	"sync"
	"time"
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
