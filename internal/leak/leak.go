// Package leak checks that tests leave no goroutine behind, by comparing
// goroutine stacks (go.uber.org/goleak), not counts: a goroutine that ended
// elsewhere cannot hide one that leaked.
package leak

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// wait is how long goroutines that are ending get to finish.
const wait = 10 * time.Second

// Check records the goroutines running now and, when the test ends, fails it if
// a goroutine that was not running before is still running after up to 10 s
// (goleak polls; it does not sleep a fixed time). Tests using it must not run
// in parallel with others.
func Check(t testing.TB) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if err := find(ignore); err != nil {
			t.Errorf("leak: %v", err)
		}
	})
}

func find(opts ...goleak.Option) error {
	deadline := time.Now().Add(wait)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

// Main runs a package's tests and fails the run when any goroutine other than
// the test framework's is left once they have finished: every test of the
// package is covered, also those without Check. Use it as TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := find(); err != nil {
			fmt.Fprintln(os.Stderr, "leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
