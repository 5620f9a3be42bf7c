// Package udpgate is a UDP forwarder for tests: it stands in front of a
// server (a TURN server, say) and drops everything until the test opens it,
// so that a client behind it cannot get an answer before the test says so.
// It serves one client at a time (the last one that sent while open).
package udpgate

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

// Gate is a closed-at-first UDP forwarder on 127.0.0.1.
type Gate struct {
	front, back *net.UDPConn
	open        atomic.Bool
	client      atomic.Pointer[netip.AddrPort]
	wg          sync.WaitGroup
}

// Start opens a gate in front of server; it is closed (and its goroutines
// ended) when tb ends.
func Start(tb testing.TB, server netip.AddrPort) *Gate {
	tb.Helper()
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	back, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		front.Close()
		tb.Fatal(err)
	}
	g := &Gate{front: front, back: back}
	g.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := front.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if g.open.Load() {
				g.client.Store(&from)
				_, _ = back.Write(buf[:n])
			}
		}
	})
	g.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, err := back.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // ICMP port unreachable and the like
			}
			if c := g.client.Load(); c != nil {
				_, _ = front.WriteToUDPAddrPort(buf[:n], *c)
			}
		}
	})
	tb.Cleanup(func() {
		front.Close()
		back.Close()
		g.wg.Wait()
	})
	return g
}

// Addr is where clients send to reach the server through the gate.
func (g *Gate) Addr() netip.AddrPort { return g.front.LocalAddr().(*net.UDPAddr).AddrPort() }

// Open lets datagrams through from now on.
func (g *Gate) Open() { g.open.Store(true) }
