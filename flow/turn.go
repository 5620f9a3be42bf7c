package flow

import (
	"context"
	"errors"
	"net/netip"
)

// turnState is the TURN client side of a flow (TURN modes only).
type turnState struct{}

func (f *Flow) setupTURN(ctx context.Context) error {
	return &Error{f.cfg.Component, "turn allocate", errors.ErrUnsupported}
}

func (f *Flow) turnInbound(b []byte, from netip.AddrPort) {}

func (f *Flow) relayWrite(b []byte, dst netip.AddrPort) (int, error) {
	return 0, ErrNotReady
}

func (f *Flow) onDestination(dst netip.AddrPort) {}

func (f *Flow) closeNAT() {}
