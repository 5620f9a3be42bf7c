package webrtcbench

// The harness both sides share: the packet, the packet-rate measurement,
// the first-packet poll and the raw UDP baseline.

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const pktSize = 172 // 12-byte RTP header + 160 bytes of G.711 (20 ms)

// ssrc is the SSRC of the packets sent (pion's track replaces it with its own).
const ssrc = 0x1234

// cpuTime is the CPU time (user and system) the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rtpPacket returns a 172-byte RTP packet (PT 0) with the given SSRC.
func rtpPacket(ssrc uint32) []byte {
	p := make([]byte, pktSize)
	p[0], p[1] = 0x80, 0
	binary.BigEndian.PutUint32(p[8:], ssrc)
	return p
}

// stamp writes sequence number and timestamp i into p.
func stamp(p []byte, i int) {
	binary.BigEndian.PutUint16(p[2:], uint16(i))
	binary.BigEndian.PutUint32(p[4:], uint32(i)*160)
}

// counter is what a receiver goroutine increments per packet; it wakes the
// sender every 16 packets.
type counter struct {
	n    atomic.Int64
	wake chan struct{}
}

func newCounter() *counter { return &counter{wake: make(chan struct{}, 1)} }

func (c *counter) add() {
	if c.n.Add(1)%16 == 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// window is how many packets may be in flight: a sender that outruns the
// receiver waits for it, so the figure is the rate a path sustains, not how
// fast a socket buffer overflows.
const window = 128

// path is one way through which packets are sent: write sends one, and
// the receiver counts each it reads in rx. seq is the sequence number of
// the next packet (the packets sent before were numbered from 0, so that
// SRTP replay protection drops none); close tears the path down.
type path struct {
	write func(p []byte) error
	rx    *counter
	seq   int
	close func()
	p     []byte
	wait  *time.Timer
}

// burst sends n packets on pa with at most window of them in flight and
// returns how many rx received and the time from the first write until
// the last packet arrived. A packet not received within 20 ms of waiting is
// given up on (counted lost); at the end it waits at most 100 ms for the
// stragglers.
func (pa *path) burst(n int) (got int64, el time.Duration, err error) {
	if pa.p == nil {
		pa.p = rtpPacket(ssrc)
		pa.wait = time.NewTimer(time.Hour)
	}
	base, given := pa.rx.n.Load(), int64(0)
	start := time.Now()
	for i := 0; i < n; i++ {
		stamp(pa.p, pa.seq)
		pa.seq++
		if err := pa.write(pa.p); err != nil {
			return 0, 0, err
		}
		for int64(i+1)-(pa.rx.n.Load()-base)-given > window {
			pa.wait.Reset(20 * time.Millisecond)
			select {
			case <-pa.rx.wake:
			case <-pa.wait.C:
				given++
			}
		}
	}
	deadline := time.Now().Add(100 * time.Millisecond)
	for pa.rx.n.Load()-base < int64(n) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Microsecond)
	}
	el = time.Since(start)
	return min(pa.rx.n.Load()-base, int64(n)), el, nil
}

// measureRate sends b.N packets on pa and reports the rate at which they
// were received (pkt/s), the process's CPU time per packet (sender and
// receiver, cpu-ns/pkt) and the loss.
func measureRate(b *testing.B, pa *path) {
	b.Helper()
	defer pa.close()
	b.ReportAllocs()
	b.SetBytes(pktSize)
	b.ResetTimer()
	cpu := cpuTime()
	got, el, err := pa.burst(b.N)
	cpu = cpuTime() - cpu
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(got)/el.Seconds(), "pkt/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/pkt")
	b.ReportMetric(100*float64(int64(b.N)-got)/float64(b.N), "loss%")
}

// udpPath is the baseline: plain UDP sockets on loopback, the same
// packets, the same window.
func udpPath(tb testing.TB) *path {
	tb.Helper()
	a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		a.Close()
		tb.Fatal(err)
	}
	rx := newCounter()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
			rx.add()
		}
	}()
	dst := c.LocalAddr().(*net.UDPAddr).AddrPort()
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	return &path{
		write: func(p []byte) error { _, err := a.WriteToUDPAddrPort(p, dst); return err },
		rx:    rx,
		close: func() { a.Close(); c.Close(); <-done },
	}
}

// benchUDP: BenchmarkRTPRate/udp.
func benchUDP(b *testing.B) { measureRate(b, udpPath(b)) }

// firstPacket writes an RTP packet every 250 µs until got is closed (the
// first packet arrived) and returns how long that took from start and how
// many packets it wrote (numbered from 0).
func firstPacket(tb testing.TB, start time.Time, write func(p []byte), got <-chan struct{}) (time.Duration, int) {
	tb.Helper()
	p := rtpPacket(ssrc)
	t := time.NewTicker(250 * time.Microsecond)
	defer t.Stop()
	timeout := time.After(10 * time.Second)
	for i := 0; ; i++ {
		stamp(p, i)
		write(p)
		select {
		case <-got:
			return time.Since(start), i + 1
		case <-timeout:
			tb.Fatal("no media within 10 s")
		case <-t.C:
		}
	}
}
