// Package leak checks that a test leaves no goroutine behind.
package leak

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Check records the goroutines running now and, when the test ends, fails it if
// more are running than before. Goroutines that are ending get up to 5 s (polled,
// not slept) to finish; the stacks of the extra ones are printed on failure.
func Check(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("leak: %d goroutines before the test, %d after:\n%s", before, n, filter(string(buf)))
				return
			}
			runtime.Gosched()
			time.Sleep(5 * time.Millisecond) // polling interval of a bounded wait, not synchronisation
		}
	})
}

func filter(stacks string) string {
	var out []string
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "testing.(*T).Run") || strings.Contains(g, "testing.tRunner") && strings.Contains(g, "runtime.Stack") {
			continue
		}
		out = append(out, g)
	}
	return strings.Join(out, "\n\n")
}
