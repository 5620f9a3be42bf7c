package webrtcbench

import (
	"testing"

	"github.com/reflow-go/reflow/internal/leak"
)

// TestMain fails the package's run when a goroutine is left behind.
func TestMain(m *testing.M) { leak.Main(m) }
