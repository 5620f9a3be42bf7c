package coturn

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// ForTest starts coturn as configured for a test or benchmark, in a
// directory of its own (cfg.Dir is replaced by tb.TempDir()), and stops it
// when tb ends, logging the tail of coturn's log if tb failed. Without the
// turnserver binary it skips tb, except under CI (CI set), where coturn
// must be installed and tb fails instead.
func ForTest(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg.Dir = tb.TempDir()
	srv, err := StartConfig(ctx, cfg)
	if errors.Is(err, ErrNotInstalled) {
		if os.Getenv("CI") != "" {
			tb.Fatalf("coturn is required under CI: %v", err)
		}
		tb.Skipf("skipping: %v (apt-get install coturn)", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Log(srv.logTail())
		}
		if err := srv.Close(); err != nil {
			tb.Errorf("coturn Close: %v", err)
		}
	})
	return srv
}
