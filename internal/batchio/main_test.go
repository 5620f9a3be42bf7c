package batchio

import (
	"testing"

	"github.com/reflow-go/reflow/internal/leak"
)

func TestMain(m *testing.M) { leak.Main(m) }
