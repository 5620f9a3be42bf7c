package flow

import (
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/srtp"
)

// TestZeroAllocsPerPacket makes the benchmarks' claim a test: writing and
// reading an RTP packet through a flow allocates nothing, in clear and with
// SDES AEAD_AES_128_GCM, on the path media takes when the application is
// waiting in ReadFrom (it reads the socket itself: direct.go). The count is
// the process's mallocs over 5,000 packets (see the bound below). CI runs it
// without -race (.ci/run).
func TestZeroAllocsPerPacket(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector; .ci/run runs this test without -race")
	}
	leak.Check(t)
	// One P: sync.Pool keeps a shard per P, and a buffer put on one P and
	// taken on another is a pool miss (an amortised refill, not a per-packet
	// allocation).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const packets = 5000
	for _, suite := range []srtp.Suite{0, srtp.AEADAES128GCM} {
		a, b := pair(t, loop4)
		if suite != 0 {
			k, _ := srtp.GenerateKeys(suite)
			a.SetOutboundSRTP(k)
			b.SetInboundSRTP(k, 0)
		}
		p := rtpPacket(0, 172)
		buf := make([]byte, 2048)
		var seq uint16
		// A reader that reads in a loop, one packet per request, so that it
		// keeps the socket (the direct path) from one packet to the next.
		got := make(chan error)
		next := make(chan bool)
		go func() {
			for <-next {
				_, _, err := b.ReadFromAddrPort(buf)
				got <- err
			}
		}()
		roundTrip := func() {
			seq++
			binary.BigEndian.PutUint16(p[2:], seq)
			next <- true
			if _, err := a.Write(p); err != nil {
				t.Fatal(err)
			}
			if err := <-got; err != nil {
				t.Fatal(err)
			}
		}
		runtime.GC()    // before the warm-up: a collection empties sync.Pools
		for range 200 { // warm the pools and pion's per-SSRC state
			roundTrip()
		}
		direct0 := b.stats.direct.Load()
		// Windows of 5,000 packets, until one without a garbage collection
		// (a collection empties sync.Pools, whose refill is an amortised
		// allocation per collection, not per packet). The first window also
		// absorbs one-time work of the runtime. The count is the whole
		// process's mallocs: besides a stray pool refill when the flow's
		// own reader takes the socket back, it includes the runtime's
		// background work (its scavenger allocates on its first runs),
		// which profiles of failing runs showed as the only other source
		// (up to 3 in a window on a loaded machine). So a clean window may
		// hold at most 8 mallocs: an allocation per packet would show as
		// 5,000 or more, one per batch of 16 as 300 or more.
		last, windows, clean := cleanWindowMallocs(packets, roundTrip)
		next <- false
		if !clean {
			t.Fatalf("suite %v: a garbage collection in every window of %d packets", suite, packets)
		}
		if last > 8 {
			t.Errorf("suite %v: %d allocations in %d packets", suite, last, packets)
		}
		if d := b.stats.direct.Load() - direct0; d < uint64(windows*packets*9/10) {
			t.Errorf("suite %v: only %d of %d packets took the direct-read path", suite, d, packets)
		}
	}
}

// cleanWindowMallocs runs windows of rounds calls of roundTrip, at most 6,
// until one after the first passes without a garbage collection, and
// returns the process's mallocs in that window, the windows run, and
// whether a clean one was found.
func cleanWindowMallocs(rounds int, roundTrip func()) (mallocs uint64, windows int, clean bool) {
	for windows < 6 && !clean {
		windows++
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range rounds {
			roundTrip()
		}
		runtime.ReadMemStats(&after)
		if windows > 1 && after.NumGC == before.NumGC {
			clean, mallocs = true, after.Mallocs-before.Mallocs
		}
	}
	return mallocs, windows, clean
}
