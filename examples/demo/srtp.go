package main

import (
	"context"
	"fmt"

	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/srtp"
)

// setupSRTP keys both streams as -srtp asks.
func setupSRTP(ctx context.Context, o opts, a, b *mediastream.Stream) error {
	switch o.srtpMode {
	case "none":
		return nil
	case "sdes":
		return setupSDES(o, a, b)
	case "dtls":
		return setupDTLS(ctx, a, b)
	}
	return fmt.Errorf("-srtp %q: want none, sdes or dtls", o.srtpMode)
}

// setupSDES does what an SDP offer/answer with a=crypto does: each side makes a
// key, sends it in an a=crypto line, and uses the peer's line for inbound.
func setupSDES(o opts, a, b *mediastream.Stream) error {
	suite, err := srtp.ParseSuite(o.suite)
	if err != nil {
		return err
	}
	lines := make([]string, 2)
	for i, s := range []*mediastream.Stream{a, b} {
		k, err := srtp.GenerateKeys(suite)
		if err != nil {
			return err
		}
		if err := s.SetOutboundSRTP(k); err != nil {
			return err
		}
		lines[i] = srtp.Crypto{Tag: 1, Keys: k}.String()
		fmt.Printf("stream %c offers %s\n", 'A'+i, lines[i])
	}
	for i, s := range []*mediastream.Stream{a, b} {
		c, err := srtp.ParseCrypto(lines[1-i]) // the peer's line
		if err != nil {
			return err
		}
		if err := s.SetInboundSRTP(c.Keys); err != nil {
			return err
		}
	}
	return nil
}
