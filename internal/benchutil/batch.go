package benchutil

import (
	"encoding/binary"
	"testing"
)

// RunPipeBatch is RunPipe with a sender that sends in batches: it waits for
// a free slot of the window, takes up to batch-1 more that are free at that
// moment, and sends that many packets (fresh sequence numbers each) in one
// call of send. The receiver still takes one packet per recv call.
func RunPipeBatch(b *testing.B, batch int, send func([][]byte) error, recv func([]byte) error) {
	tokens := make(chan struct{}, Window)
	for i := 0; i < Window; i++ {
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
	pkts := make([][]byte, batch)
	for i := range pkts {
		pkts[i] = RTPPacket(1, 172)
	}
	b.ReportAllocs()
	b.SetBytes(172)
	b.ResetTimer()
	for i := 0; i < n; {
		<-tokens
		k := 1
	more:
		for k < batch && i+k < n {
			select {
			case <-tokens:
				k++
			default:
				break more
			}
		}
		for j := range k {
			binary.BigEndian.PutUint16(pkts[j][2:], uint16(i+j))
		}
		if err := send(pkts[:k]); err != nil {
			b.Fatal(err)
		}
		i += k
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkt/s")
}
