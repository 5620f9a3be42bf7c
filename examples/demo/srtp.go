package main

import (
	"context"
	"fmt"

	"github.com/reflow-go/reflow/mediastream"
)

// setupSRTP keys both streams as -srtp asks.
func setupSRTP(_ context.Context, o opts, a, b *mediastream.Stream) error {
	switch o.srtpMode {
	case "none":
		return nil
	}
	return fmt.Errorf("-srtp %s: not supported yet", o.srtpMode)
}
