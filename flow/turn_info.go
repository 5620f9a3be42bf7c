package flow

import (
	"time"
)

// Allocation describes a flow's TURN allocation.
type Allocation struct {
	// Server is the TURN server's resolved address and the transport to it.
	Server Tuple
	// Relayed are the relayed addresses: one, or an IPv4 and an IPv6 one
	// with natmode.FamilyBoth. Relayed[0] is RelayTuple.
	Relayed []Tuple
	// Lifetime is the lifetime the server granted in its last Allocate or
	// Refresh answer, and Expires when the allocation ends unless refreshed.
	Lifetime time.Duration
	Expires  time.Time
	// Refreshes counts the successful Refresh transactions (liveness probes included).
	Refreshes uint64
	// Lost is true once the allocation was reported lost.
	Lost bool
	// UnpaddedChannelData is true over TCP/TLS once the server was seen to
	// send ChannelData without the padding RFC 8656 §12.5 requires; the
	// flow then frames its own ChannelData the same way.
	UnpaddedChannelData bool
}

// Allocation returns the state of the flow's TURN allocation, and false
// when the flow is not in a TURN mode or has no allocation yet.
func (f *Flow) Allocation() (Allocation, bool) {
	t := f.turn.Load()
	if t == nil || !t.allocated.Load() {
		return Allocation{}, false
	}
	return Allocation{
		Server:    Tuple{t.tr, t.server},
		Relayed:   append([]Tuple(nil), t.relays...),
		Lifetime:  time.Duration(t.lifetime.Load()),
		Expires:   time.Unix(0, t.expiry.Load()),
		Refreshes: t.refreshes.Load(),
		Lost:      t.lost.Load(),

		UnpaddedChannelData: t.framing.peerPads.Load() == padNo,
	}, true
}
