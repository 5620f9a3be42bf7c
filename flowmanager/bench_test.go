package flowmanager_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/benchutil"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

// dtlsPair returns two connected, pinned streams with DTLS-SRTP keyed.
func dtlsPair(b *testing.B, nat natmode.Config) (*side, *side) {
	cfg := mediastream.Config{LocalAddr: loop4, NAT: nat}
	x := newSide(b, flowmanager.Config{}, cfg)
	y := newSide(b, flowmanager.Config{}, cfg)
	connect(b, x.s, x.t, y.s, y.t)
	x.s.SetRemoteFingerprint(fingerprintOf(b, y.m))
	y.s.SetRemoteFingerprint(fingerprintOf(b, x.m))
	y.s.StartDTLS(dtlssrtp.Server)
	x.s.StartDTLS(dtlssrtp.Client)
	waitSecure(b, x.s, y.s)
	return x, y
}

// BenchmarkDTLSHandshake: a DTLS-SRTP association between two streams on
// loopback, from StartDTLS to both flows keyed (ECDSA P-256, pinned both ways).
func BenchmarkDTLSHandshake(b *testing.B) {
	x, y := dtlsPair(b, natmode.Config{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		y.s.StartDTLS(dtlssrtp.Server)
		x.s.StartDTLS(dtlssrtp.Client)
		waitSecure(b, x.s, y.s)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/handshake")
}

// BenchmarkDTLSThroughput: 172-byte RTP packets through DTLS-keyed flows (the
// negotiated AEAD_AES_128_GCM), next to raw UDP in the same run.
func BenchmarkDTLSThroughput(b *testing.B) {
	b.Run("raw-udp", func(b *testing.B) {
		x, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		y, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		defer x.Close()
		defer y.Close()
		dst := y.LocalAddr().(*net.UDPAddr).AddrPort()
		y.SetReadDeadline(time.Now().Add(time.Minute))
		benchutil.RunPipe(b,
			func(p []byte) error { _, err := x.WriteToUDPAddrPort(p, dst); return err },
			func(buf []byte) error { _, _, err := y.ReadFromUDPAddrPort(buf); return err })
	})
	b.Run("flow-dtls", func(b *testing.B) {
		x, y := dtlsPair(b, natmode.Config{})
		benchutil.RunPipe(b,
			func(p []byte) error { _, err := x.s.RTP().Write(p); return err },
			func(buf []byte) error { _, _, err := y.s.RTP().ReadFromAddrPort(buf); return err })
	})
}

// BenchmarkTURNRelay: relayed packets/s through a TURN-UDP channel on loopback
// (in-process pion server), next to the direct flow path in the same run.
func BenchmarkTURNRelay(b *testing.B) {
	srv, err := testserver.StartTURN(testserver.TURNConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for _, nat := range []natmode.Config{{}, turnConfig(srv, natmode.TURNUDP)} {
		b.Run("flow-"+nat.Mode.String(), func(b *testing.B) {
			m := newManager(b, flowmanager.Config{})
			cfg := mediastream.Config{LocalAddr: loop4, NAT: nat}
			x, tx := readyStream(b, m, cfg)
			y, ty := readyStream(b, m, cfg)
			connect(b, x, tx, y, ty)
			exchange(b, x, tx, y, ty, 2) // permissions and channel bound
			benchutil.RunPipe(b,
				func(p []byte) error { _, err := x.RTP().Write(p); return err },
				func(buf []byte) error { _, _, err := y.RTP().ReadFromAddrPort(buf); return err })
		})
	}
}

// BenchmarkTURNAllocate: time to a ready stream (one RTP flow) per TURN transport.
func BenchmarkTURNAllocate(b *testing.B) {
	srv, err := testserver.StartTURN(testserver.TURNConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for _, mode := range turnModes {
		b.Run(mode.String(), func(b *testing.B) {
			m := newManager(b, flowmanager.Config{})
			cfg := mediastream.Config{LocalAddr: loop4, NAT: turnConfig(srv, mode)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := newRecorder()
				s, err := m.NewStream(context.Background(), cfg, r)
				if err != nil {
					b.Fatal(err)
				}
				r.waitReady(b)
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/allocation")
		})
	}
}
