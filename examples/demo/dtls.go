package main

import (
	"context"
	"fmt"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/mediastream"
)

// setupDTLS does what an SDP offer/answer with a=fingerprint and a=setup does:
// each side pins the other's fingerprint, A (a=setup:active) is the DTLS
// client, B (passive) the server; then it waits until every flow is keyed.
func setupDTLS(ctx context.Context, a, b *mediastream.Stream) error {
	fa, fb := a.Fingerprint(), b.Fingerprint()
	fmt.Printf("stream A a=fingerprint:%s\nstream B a=fingerprint:%s\n", fa, fb)
	if err := a.SetRemoteFingerprint(fb); err != nil {
		return err
	}
	if err := b.SetRemoteFingerprint(fa); err != nil {
		return err
	}
	start := time.Now()
	if err := b.StartDTLS(dtlssrtp.Server); err != nil {
		return err
	}
	if err := a.StartDTLS(dtlssrtp.Client); err != nil {
		return err
	}
	for _, s := range []*mediastream.Stream{a, b} {
		if _, err := s.WaitKeyed(ctx); err != nil {
			return fmt.Errorf("DTLS not done: %w", err)
		}
	}
	fmt.Printf("DTLS-SRTP keyed on all flows in %v, profile %s\n", time.Since(start).Round(time.Microsecond), a.RTP().DTLSSuite())
	return nil
}
