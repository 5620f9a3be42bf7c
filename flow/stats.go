package flow

import "sync/atomic"

// DropReason says why a received packet was not delivered.
type DropReason int

// The reasons a received packet is dropped.
const (
	// DropSource: the packet came from an address other than the active destination or the NAT server.
	DropSource DropReason = iota
	// DropQueueFull: the receive queue was full (the application reads too slowly).
	DropQueueFull
	// DropMalformed: the packet failed validation (a bad STUN message, a short RTP header).
	DropMalformed
	// DropUnknown: the first byte matches no protocol the flow speaks (RFC 7983).
	DropUnknown
	// DropOversize: the datagram was larger than MaxPacketSize.
	DropOversize
	// DropAuth: SRTP/SRTCP authentication failed.
	DropAuth
	// DropReplay: SRTP/SRTCP replay protection rejected the packet.
	DropReplay
	// DropNotSecure: media arrived before the flow's DTLS-SRTP association was verified.
	DropNotSecure
	// DropUnexpected: a well-formed packet the flow has no use for (a stray STUN response, DTLS with no association).
	DropUnexpected
	// DropFiltered: a read filtered to one source discarded a packet from another.
	DropFiltered
	// DropPanic: a third-party parser panicked on the packet; the panic was recovered.
	DropPanic
	numDropReasons
)

// NumDropReasons is the number of DropReason values (the length of Stats.Dropped).
const NumDropReasons = int(numDropReasons)

var dropNames = [...]string{"source", "queue-full", "malformed", "unknown", "oversize", "auth", "replay", "not-secure", "unexpected", "filtered", "panic"}

// String returns the reason's short name.
func (r DropReason) String() string {
	if r >= 0 && r < numDropReasons {
		return dropNames[r]
	}
	return "drop?"
}

// Stats are a flow's counters since it was created.
type Stats struct {
	// PacketsIn and BytesIn count media delivered to the application (after SRTP).
	PacketsIn, BytesIn uint64
	// PacketsOut and BytesOut count media the application sent (before SRTP).
	PacketsOut, BytesOut uint64
	// Dropped counts received packets that were not delivered, by reason.
	Dropped [NumDropReasons]uint64
	// ICEChecks counts the ICE connectivity checks answered with success
	// (failed ones count as DropAuth).
	ICEChecks uint64
}

// TotalDropped returns the sum of Dropped.
func (s Stats) TotalDropped() uint64 {
	var n uint64
	for _, d := range s.Dropped {
		n += d
	}
	return n
}

type counters struct {
	packetsIn, bytesIn, packetsOut, bytesOut atomic.Uint64
	dropped                                  [NumDropReasons]atomic.Uint64
	iceChecks                                atomic.Uint64
	direct                                   atomic.Uint64 // media handed straight to an application reader (tests)
}

func (c *counters) snapshot() Stats {
	s := Stats{
		PacketsIn: c.packetsIn.Load(), BytesIn: c.bytesIn.Load(),
		PacketsOut: c.packetsOut.Load(), BytesOut: c.bytesOut.Load(),
		ICEChecks: c.iceChecks.Load(),
	}
	for i := range c.dropped {
		s.Dropped[i] = c.dropped[i].Load()
	}
	return s
}
