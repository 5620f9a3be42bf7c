package flow

import (
	"net"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/batchio"
	"github.com/reflow-go/reflow/internal/benchutil"
	"github.com/reflow-go/reflow/srtp"
)

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
		benchutil.RunPipe(b,
			func(p []byte) error { _, err := x.WriteToUDPAddrPort(p, dst); return err },
			func(buf []byte) error { _, _, err := y.ReadFromUDPAddrPort(buf); return err })
	})
	b.Run("flow", func(b *testing.B) { benchFlows(b, 0, false) })
	for _, s := range []srtp.Suite{srtp.AESCM128HMACSHA1_80, srtp.AEADAES128GCM} {
		b.Run("flow-sdes-"+s.String(), func(b *testing.B) { benchFlows(b, s, false) })
	}
	// The same with a sender that writes in batches (WriteBatch: sendmmsg).
	b.Run("flow-batch", func(b *testing.B) { benchFlows(b, 0, true) })
	for _, s := range []srtp.Suite{srtp.AESCM128HMACSHA1_80, srtp.AEADAES128GCM} {
		b.Run("flow-batch-sdes-"+s.String(), func(b *testing.B) { benchFlows(b, s, true) })
	}
}

// benchFlows measures x -> y on a pair of no-NAT flows, SDES-protected with
// suite unless it is zero; batch sends with WriteBatch (up to
// batchio.MaxBatch packets a call) instead of Write.
func benchFlows(b *testing.B, suite srtp.Suite, batch bool) {
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
	recv := func(buf []byte) error { _, _, err := y.ReadFromAddrPort(buf); return err }
	if batch {
		benchutil.RunPipeBatch(b, batchio.MaxBatch,
			func(p [][]byte) error { _, err := x.WriteBatch(p); return err }, recv)
	} else {
		benchutil.RunPipe(b, func(p []byte) error { _, err := x.Write(p); return err }, recv)
	}
	if s := y.Stats(); s.TotalDropped() != 0 {
		b.Fatalf("drops on the benchmark path: %+v", s.Dropped)
	}
}
