package flow

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// benchWindow bounds the packets in flight, so that neither path loses packets
// and both are measured at the rate they can sustain.
const benchWindow = 128

// runPipe sends b.N packets with send while a goroutine receives them with recv,
// and reports the rate as pkt/s.
func runPipe(b *testing.B, send func([]byte) error, recv func([]byte) error) {
	tokens := make(chan struct{}, benchWindow)
	for i := 0; i < benchWindow; i++ {
		tokens <- struct{}{}
	}
	done := make(chan error, 1)
	n := b.N
	go func() {
		buf := make([]byte, 2048)
		for i := 0; i < n; i++ {
			if err := recv(buf); err != nil {
				done <- err
				return
			}
			tokens <- struct{}{}
		}
		done <- nil
	}()
	p := rtpPacket(1, 172)
	b.ReportAllocs()
	b.SetBytes(172)
	b.ResetTimer()
	for i := 0; i < n; i++ {
		<-tokens
		if err := send(p); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkt/s")
}

// BenchmarkFlowThroughput: 172-byte RTP packets from one flow to another on
// loopback, next to raw net.UDPConn send/receive of the same packets.
func BenchmarkFlowThroughput(b *testing.B) {
	b.Run("raw-udp", func(b *testing.B) {
		x, y := listen(b, loop4), listen(b, loop4)
		defer x.Close()
		defer y.Close()
		x.SetReadBuffer(1 << 20)
		y.SetReadBuffer(1 << 20)
		dst := y.LocalAddr().(*net.UDPAddr).AddrPort()
		y.SetReadDeadline(time.Now().Add(time.Minute))
		runPipe(b,
			func(p []byte) error { _, err := x.WriteToUDPAddrPort(p, dst); return err },
			func(buf []byte) error { _, _, err := y.ReadFromUDPAddrPort(buf); return err })
	})
	b.Run("flow", func(b *testing.B) {
		x, y := pair(b, loop4)
		var from netip.AddrPort
		runPipe(b,
			func(p []byte) error { _, err := x.Write(p); return err },
			func(buf []byte) error { var err error; _, from, err = y.ReadFromAddrPort(buf); return err })
		_ = from
	})
}
