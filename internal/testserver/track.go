package testserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// shutdownTimeout bounds how long Close waits for pion's goroutines to leave
// their sockets after every socket has been closed; it only matters if pion
// misbehaves.
const shutdownTimeout = 5 * time.Second

var errShutdownTimeout = errors.New("testserver: server goroutines did not stop")

// tracker knows every socket a server instance uses and which of pion's
// goroutines are still reading from one. pion/turn/v3's Server.Close closes
// only the listeners it was given, not the TCP/TLS connections it accepted,
// and does not wait for anything; the tracker does both.
type tracker struct {
	mu      sync.Mutex
	closing bool
	wg      sync.WaitGroup
	closers map[io.Closer]struct{}
}

func newTracker() *tracker { return &tracker{closers: map[io.Closer]struct{}{}} }

// add registers c (closed on shutdown) and one reader that will call done
// when it leaves. It fails once shutdown has begun.
func (tr *tracker) add(c io.Closer) (done func(), ok bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.closing {
		return nil, false
	}
	tr.wg.Add(1)
	tr.closers[c] = struct{}{}
	var once sync.Once
	return func() {
		once.Do(func() {
			tr.mu.Lock()
			delete(tr.closers, c)
			tr.mu.Unlock()
			tr.wg.Done()
		})
	}, true
}

// shutdown closes every registered socket and waits for every reader.
func (tr *tracker) shutdown() error {
	tr.mu.Lock()
	tr.closing = true
	cs := make([]io.Closer, 0, len(tr.closers))
	for c := range tr.closers {
		cs = append(cs, c)
	}
	tr.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
	waited := make(chan struct{})
	go func() {
		tr.wg.Wait()
		close(waited)
	}()
	t := time.NewTimer(shutdownTimeout)
	defer t.Stop()
	select {
	case <-waited:
		return nil
	case <-t.C:
		return errShutdownTimeout
	}
}

// trackedPacketConn reports when its reader gets an error (the reader then
// leaves: pion's loops end on any read error) and can rewrite what is read.
type trackedPacketConn struct {
	net.PacketConn
	done    func()
	inspect func([]byte) []byte // nil: no rewriting
}

func (c *trackedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err != nil {
		c.done()
		return n, addr, err
	}
	if c.inspect != nil {
		if out := c.inspect(p[:n]); out != nil && len(out) <= len(p) {
			n = copy(p, out)
		}
	}
	return n, addr, nil
}

// trackedListener registers every accepted connection with the tracker.
type trackedListener struct {
	net.Listener
	tr   *tracker
	done func()
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		l.done()
		return nil, err
	}
	done, ok := l.tr.add(c)
	if !ok {
		_ = c.Close()
		l.done()
		return nil, fmt.Errorf("testserver: accept during shutdown: %w", net.ErrClosed)
	}
	return &trackedConn{Conn: c, done: done}, nil
}

// trackedConn is an accepted connection: its reader is done on a read error
// or when the connection is closed (pion closes it when its loop ends, also
// after a failed TLS handshake that never saw a read error).
type trackedConn struct {
	net.Conn
	done func()
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.done()
	}
	return n, err
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.done()
	return err
}

// framingListener wraps accepted connections in a framedConn.
type framingListener struct {
	net.Listener
	inspect       func([]byte) []byte
	onChannelData func()
	noPad         bool // TURNConfig.ForwardPadding
}

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framedConn{Conn: c, inspect: l.inspect, onChannelData: l.onChannelData, noPad: l.noPad}, nil
}

// framedConn splits the stream a TURN client sends over TCP or TLS into STUN
// messages and ChannelData frames (RFC 8656 §12.5, padded to four bytes) so
// that STUN requests can be inspected and rewritten before pion reads them.
// Anything that is neither switches it to passing bytes through. With noPad
// it neither skips the padding of received ChannelData nor pads what it sends.
type framedConn struct {
	net.Conn
	inspect       func([]byte) []byte
	onChannelData func()
	noPad         bool
	pending       []byte
	passthrough   bool
}

// Write writes one message of the server; with noPad a ChannelData message
// loses its padding. pion writes each message with one Write.
func (c *framedConn) Write(p []byte) (int, error) {
	if c.noPad && len(p) >= 4 && p[0] >= 0x40 && p[0] <= 0x4F {
		if l := int(p[2])<<8 | int(p[3]); len(p) > 4+l {
			if _, err := c.Conn.Write(p[:4+l]); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

func (c *framedConn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		if c.passthrough {
			return c.Conn.Read(p)
		}
		var hdr [4]byte
		if _, err := io.ReadFull(c.Conn, hdr[:]); err != nil {
			return 0, err
		}
		l := int(hdr[2])<<8 | int(hdr[3])
		var total int
		switch {
		case hdr[0] <= 3: // STUN
			total = 20 + l
		case hdr[0] >= 0x40 && hdr[0] < 0x80: // ChannelData
			total = 4 + (l+3)&^3
			if c.noPad {
				total = 4 + l
			}
		default:
			c.passthrough = true
			c.pending = append([]byte(nil), hdr[:]...)
			continue
		}
		frame := make([]byte, total)
		copy(frame, hdr[:])
		if _, err := io.ReadFull(c.Conn, frame[4:]); err != nil {
			return 0, err
		}
		if c.noPad && hdr[0] >= 0x40 && len(frame)%4 != 0 {
			// pion's own reader wants the padding: add it behind the
			// client's back (which sent none, or desynchronised here).
			frame = append(frame, make([]byte, 4-len(frame)%4)...)
		}
		if hdr[0] >= 0x40 && c.onChannelData != nil {
			c.onChannelData()
		}
		if hdr[0] <= 3 && c.inspect != nil {
			if out := c.inspect(frame); out != nil {
				frame = out
			}
		}
		c.pending = frame
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}
