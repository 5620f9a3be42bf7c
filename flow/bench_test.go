package flow

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/reflow-go/reflow/srtp"
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
	b.Run("flow", func(b *testing.B) { benchFlows(b, 0) })
	for _, s := range []srtp.Suite{srtp.AESCM128HMACSHA1_80, srtp.AEADAES128GCM} {
		b.Run("flow-sdes-"+s.String(), func(b *testing.B) { benchFlows(b, s) })
	}
}

// benchFlows measures x -> y on a pair of no-NAT flows, SDES-protected with
// suite unless it is zero.
func benchFlows(b *testing.B, suite srtp.Suite) {
	x, y := pair(b, loop4)
	if suite != 0 {
		k, err := srtp.GenerateKeys(suite)
		if err != nil {
			b.Fatal(err)
		}
		if err := x.SetOutboundSRTP(k); err != nil {
			b.Fatal(err)
		}
		if err := y.SetInboundSRTP(k, 0); err != nil {
			b.Fatal(err)
		}
	}
	var seq uint16
	runPipe(b,
		func(p []byte) error {
			seq++ // SRTP needs fresh sequence numbers (replay protection)
			binary.BigEndian.PutUint16(p[2:], seq)
			_, err := x.Write(p)
			return err
		},
		func(buf []byte) error { _, _, err := y.ReadFromAddrPort(buf); return err })
	if s := y.Stats(); s.TotalDropped() != 0 {
		b.Fatalf("drops on the benchmark path: %+v", s.Dropped)
	}
}
