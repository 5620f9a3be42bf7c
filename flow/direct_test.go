package flow

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
)

// waitStat waits (bounded) until cond holds for f's stats.
func waitStat(t *testing.T, f *Flow, what string, cond func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond(f.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: stats %+v", what, f.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// After the application stops reading, the flow's own goroutine takes the
// socket back and keeps sorting traffic, whether the last read was served
// directly or from the queue.
func TestSocketServedWhenApplicationStopsReading(t *testing.T) {
	leak.Check(t)
	a, b := pair(t, loop4)
	stranger := listen(t, loop4)
	defer stranger.Close()
	for round := 0; round < 3; round++ {
		a.Write(rtpPacket(uint16(round), 60))
		readOne(t, b)
		before := b.Stats().Dropped[DropSource]
		for i := 0; i < 3; i++ {
			stranger.WriteToUDPAddrPort(rtpPacket(9, 60), b.LocalTuple().Addr)
		}
		waitStat(t, b, "stranger's packets sorted without a reader", func(s Stats) bool {
			return s.Dropped[DropSource] == before+3
		})
	}
}

// A reader blocked on the socket wakes up when its deadline is moved into
// the past, and a reader in a loop gets every packet in order.
func TestDirectReadDeadlineAndOrder(t *testing.T) {
	leak.Check(t)
	a, b := pair(t, loop4)
	errc := make(chan error, 1)
	go func() {
		_, _, err := b.ReadFromAddrPort(make([]byte, 100))
		errc <- err
	}()
	// Wait (bounded poll) until the reader is inside ReadFrom, then cut it short.
	for deadline := time.Now().Add(5 * time.Second); b.appWant.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the reader never entered ReadFrom")
		}
		time.Sleep(time.Millisecond)
	}
	b.SetReadDeadline(time.Now().Add(-time.Second))
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a past deadline did not wake the reader")
	}
	b.SetReadDeadline(time.Time{})
	for i := uint16(0); i < 200; i++ {
		a.Write(rtpPacket(i, 100))
		got, _ := readOne(t, b)
		if seq := uint16(got[2])<<8 | uint16(got[3]); seq != i {
			t.Fatalf("got seq %d, want %d", seq, i)
		}
	}
}
