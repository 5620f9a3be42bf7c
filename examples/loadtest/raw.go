package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// rawConn is a plain UDP socket sending to one destination: the -raw baseline.
type rawConn struct {
	c   *net.UDPConn
	dst netip.AddrPort
}

func (r *rawConn) Write(p []byte) (int, error) { return r.c.WriteToUDPAddrPort(p, r.dst) }

func (r *rawConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return r.c.ReadFromUDPAddrPort(p)
}

// runRaw runs the same pairs, packets, senders and readers as runOneProcess on
// plain UDP sockets (one per RTP and per RTCP "flow"), without the library:
// the floor the library's figures compare against.
func runRaw(ctx context.Context, o *opts) (*report, error) {
	r := newReport(o, "raw-udp", 2*o.n)
	r.Run.SRTP, r.Run.Suite, r.Run.NAT = "none (raw UDP baseline)", "", "none"
	r.sampleBaseline()
	eps := make([]*endpoint, 2*o.n)
	for i := range eps {
		eps[i] = &endpoint{idx: i, ssrc: uint32(0x10000 + i)}
	}
	defer closeAll(eps)
	start := time.Now()
	comps := 1
	if o.rtcp {
		comps = 2
	}
	for i := range eps {
		e := eps[i]
		e.start = time.Now()
		for k := 0; k < comps; k++ {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(o.local, 0)))
			if err != nil {
				return r, fmt.Errorf("raw socket: %w", err)
			}
			e.raw[k] = &rawConn{c: c}
		}
		if comps == 1 {
			e.raw[1] = e.raw[0]
		}
	}
	for i := 0; i < len(eps); i += 2 {
		a, b := eps[i], eps[i+1]
		for k := 0; k < 2; k++ {
			a.raw[k].dst = b.raw[k].c.LocalAddr().(*net.UDPAddr).AddrPort()
			b.raw[k].dst = a.raw[k].c.LocalAddr().(*net.UDPAddr).AddrPort()
		}
		a.markUp(time.Now())
		b.markUp(time.Now())
	}
	r.setupDone(eps, time.Since(start))
	return r, runMedia(ctx, o, r, eps)
}
