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

// measureRate sends b.N packets with write, numbered on from seq (the
// packets firstPacket sent, so that SRTP replay protection drops none), and
// reports the rate at which rx received them (pkt/s), the process's CPU
// time per packet (sender and receiver, cpu-ns/pkt) and the loss. A packet
// not received within 20 ms of waiting is counted lost.
func measureRate(b *testing.B, seq int, write func(p []byte) error, rx *counter) {
	b.Helper()
	p := rtpPacket(ssrc)
	base := rx.n.Load()
	b.ReportAllocs()
	b.SetBytes(pktSize)
	wait := time.NewTimer(time.Hour)
	defer wait.Stop()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		stamp(p, seq+i)
		if err := write(p); err != nil {
			b.Fatal(err)
		}
		for int64(i+1)-(rx.n.Load()-base) > window {
			wait.Reset(20 * time.Millisecond)
			select {
			case <-rx.wake:
			case <-wait.C:
				base-- // give up on one packet: count it lost
			}
		}
	}
	deadline := time.Now().Add(100 * time.Millisecond)
	for rx.n.Load()-base < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	el, cpu := time.Since(start), cpuTime()-cpu
	b.StopTimer()
	got := rx.n.Load() - base
	b.ReportMetric(float64(got)/el.Seconds(), "pkt/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/pkt")
	b.ReportMetric(100*float64(int64(b.N)-min(got, int64(b.N)))/float64(b.N), "loss%")
}

// BenchmarkRTPRate/udp is the baseline: plain UDP sockets on loopback, the
// same packets, the same window.
func benchUDP(b *testing.B) {
	a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
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
	measureRate(b, 0, func(p []byte) error { _, err := a.WriteToUDPAddrPort(p, dst); return err }, rx)
	c.Close()
	<-done
}

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
