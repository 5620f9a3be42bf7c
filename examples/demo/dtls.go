package main

import (
	"context"
	"fmt"

	"github.com/reflow-go/reflow/mediastream"
)

func setupDTLS(ctx context.Context, a, b *mediastream.Stream) error {
	return fmt.Errorf("-srtp dtls: not available yet")
}
