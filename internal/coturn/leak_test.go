package coturn

import (
	"runtime"
	"testing"
	"time"
)

// checkGoroutines records the number of goroutines now and, when the test
// ends (after every cleanup registered later), waits up to two seconds for it
// to come back down, failing with a dump of all stacks otherwise. Call it
// first in a test.
func checkGoroutines(t testing.TB) {
	t.Helper()
	start := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for runtime.NumGoroutine() > start {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines left, %d at start:\n%s", runtime.NumGoroutine(), start, buf)
				return
			}
			<-tick.C
		}
	})
}
