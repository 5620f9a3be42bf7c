package flowmanager_test

import (
	"encoding/binary"
	"syscall"
	"testing"
	"time"

	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/benchutil"
	"github.com/reflow-go/reflow/internal/coturn"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

// BenchmarkCoturnRelay: 172-byte RTP packets between two plain streams
// relayed by coturn over TURN-UDP (each stream has its own allocation, so a
// packet crosses coturn twice, on channels), from a relayed stream to a
// direct one (the usual deployment: a client behind TURN calling a server
// with a public address; one crossing), and between two direct streams,
// alternating in chunks within the same run so that all see the same load.
// It reports direct-pkt/s, relay-pkt/s and relay1-pkt/s (packets received
// per second), their ratios to direct, the relayed packets lost, and the
// allocations per packet of all paths together (coturn is another process).
func BenchmarkCoturnRelay(b *testing.B) {
	srv := coturn.ForTest(b, coturn.Config{})

	type path struct {
		x, y        *mediastream.Stream
		took        time.Duration
		got         int
		cpu, coturn time.Duration // our process's CPU time, coturn's
	}
	mkPath := func(natX, natY natmode.Config) *path {
		m := newManager(b, flowmanager.Config{})
		x, tx := readyStream(b, m, mediastream.Config{LocalAddr: loop4, NAT: natX})
		y, ty := readyStream(b, m, mediastream.Config{LocalAddr: loop4, NAT: natY})
		connect(b, x, tx, y, ty)
		exchange(b, x, tx, y, ty, 2) // permissions and channels bound
		return &path{x: x, y: y}
	}
	turnUDP := coturnConfig(srv, natmode.TURNUDP)
	direct := mkPath(natmode.Config{}, natmode.Config{})
	relay := mkPath(turnUDP, turnUDP)
	relay1 := mkPath(turnUDP, natmode.Config{})

	var seq uint16
	p := benchutil.RTPPacket(1, 172)
	stall := time.NewTimer(time.Hour)
	// pump sends n packets on pt, at most benchutil.Window unanswered, and
	// adds the time they took and the packets received to pt. A datagram
	// lost on the way (UDP through coturn may drop one now and then) does
	// not shrink the window: each packet carries its index, and a gap gives
	// the lost packets' places back. Should the window still run dry, it
	// moves on after 50 ms; after the last packet the receiver waits at most
	// 200 ms for stragglers.
	pump := func(pt *path, n int) {
		tokens := make(chan struct{}, benchutil.Window+n)
		for range benchutil.Window {
			tokens <- struct{}{}
		}
		done := make(chan int, 1)
		rx := pt.y.RTP()
		_ = rx.SetReadDeadline(time.Time{})
		go func() {
			buf := make([]byte, 2048)
			got, next := 0, uint32(0)
			for got < n && int(next) < n {
				if _, _, err := rx.ReadFromAddrPort(buf); err != nil {
					break
				}
				got++
				idx := binary.BigEndian.Uint32(buf[12:])
				for ; next <= idx && int(next) < n; next++ { // this one and any lost before it
					tokens <- struct{}{}
				}
			}
			done <- got
		}()
		cpu0, turn0 := processCPU(b), coturnCPU(b, srv)
		start := time.Now()
		for i := range n {
			select {
			case <-tokens:
			default:
				stall.Reset(50 * time.Millisecond)
				select {
				case <-tokens:
				case <-stall.C:
				}
				stall.Stop()
			}
			seq++
			binary.BigEndian.PutUint16(p[2:], seq)
			binary.BigEndian.PutUint32(p[12:], uint32(i))
			if _, err := pt.x.RTP().Write(p); err != nil {
				b.Fatal(err)
			}
		}
		var got int
		select {
		case got = <-done:
		case <-time.After(200 * time.Millisecond):
			_ = rx.SetReadDeadline(time.Now())
			got = <-done
		}
		pt.took += time.Since(start)
		pt.got += got
		pt.cpu += processCPU(b) - cpu0
		pt.coturn += coturnCPU(b, srv) - turn0
	}
	const chunk = 1000
	pump(direct, chunk) // warm both paths
	pump(relay, chunk)
	pump(relay1, chunk)
	for _, pt := range []*path{direct, relay, relay1} {
		pt.took, pt.got, pt.cpu, pt.coturn = 0, 0, 0, 0
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	b.ResetTimer()
	for left := b.N; left > 0; left -= chunk {
		n := min(chunk, left)
		pump(direct, n)
		pump(relay, n)
		pump(relay1, n)
	}
	b.StopTimer()
	dps := float64(direct.got) / direct.took.Seconds()
	rps := float64(relay.got) / relay.took.Seconds()
	b.ReportMetric(dps, "direct-pkt/s")
	b.ReportMetric(rps, "relay-pkt/s")
	r1ps := float64(relay1.got) / relay1.took.Seconds()
	b.ReportMetric(rps/dps, "relay/direct")
	b.ReportMetric(r1ps, "relay1-pkt/s")
	b.ReportMetric(r1ps/dps, "relay1/direct")
	b.ReportMetric(100*float64(2*b.N-relay.got-relay1.got)/float64(2*b.N), "relay-loss-%")
	// CPU per packet sent: ours (sender and receiver together) and
	// coturn's, so that the relayed rates can be set against what the two
	// cores have to give.
	perPkt := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
	b.ReportMetric(perPkt(direct.cpu), "direct-cpu-µs/pkt")
	b.ReportMetric(perPkt(relay1.cpu), "relay1-cpu-µs/pkt")
	b.ReportMetric(perPkt(relay1.coturn), "relay1-coturn-µs/pkt")
	b.ReportMetric(perPkt(relay.coturn), "relay-coturn-µs/pkt")
}

// processCPU is the CPU time (user and system) this process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// coturnCPU is the CPU time coturn used so far.
func coturnCPU(b *testing.B, srv *coturn.Server) time.Duration {
	d, err := srv.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	return d
}
