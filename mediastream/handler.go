package mediastream

import (
	"net/netip"

	"github.com/reflow-go/reflow/flow"
)

// Handler receives a stream's events (reflow's MediaStreamHandler). Calls are
// made one at a time, in order, on a goroutine owned by the stream, never with a
// lock held; a handler may call any method of the stream, Close included. A
// handler that blocks delays only later handler calls, never media.
//
// A Handler may also implement KeyedHandler and SourceHandler to receive those
// events; HandlerFuncs implements all three.
type Handler interface {
	// OnReady is called once, when every flow of the stream has finished its NAT
	// setup, with the session tuples to advertise (in SDP). rtcp is the zero
	// Tuple when RTCP is off (RTCP then shares the RTP flow, rtcp-mux).
	OnReady(s *Stream, rtp, rtcp flow.Tuple)
	// OnError is called once per failure of the stream, before or after
	// ready, with its root cause: an *flow.Error naming the component and
	// matching the flow (and dtlssrtp) sentinels. Failures that follow from
	// one already reported (a sibling flow giving up because the first one
	// failed, say) are not reported again; Stream.Err returns the root cause.
	OnError(s *Stream, err error)
}

// KeyedHandler is implemented by a Handler that wants to know when the
// stream's media is protected: OnKeyed is called when every flow of the stream
// has SRTP keys in both directions (SDES keys set, or a DTLS-SRTP association
// verified against the pinned fingerprint and keyed), once per keying (again
// after a DTLS restart). k describes the RTP flow's keys.
type KeyedHandler interface {
	OnKeyed(s *Stream, k flow.Keyed)
}

// SourceHandler is implemented by a Handler that wants to know when a
// latching flow (Config.Latch) adopts a new media source: from is the previous
// source (zero for the first), to the new one.
type SourceHandler interface {
	OnSourceChanged(s *Stream, f *flow.Flow, from, to netip.AddrPort)
}

// HandlerFuncs adapts functions to Handler, KeyedHandler and SourceHandler; a
// nil function ignores its event.
type HandlerFuncs struct {
	Ready         func(s *Stream, rtp, rtcp flow.Tuple)
	Error         func(s *Stream, err error)
	Keyed         func(s *Stream, k flow.Keyed)
	SourceChanged func(s *Stream, f *flow.Flow, from, to netip.AddrPort)
}

// OnReady calls h.Ready.
func (h HandlerFuncs) OnReady(s *Stream, rtp, rtcp flow.Tuple) {
	if h.Ready != nil {
		h.Ready(s, rtp, rtcp)
	}
}

// OnError calls h.Error.
func (h HandlerFuncs) OnError(s *Stream, err error) {
	if h.Error != nil {
		h.Error(s, err)
	}
}

// OnKeyed calls h.Keyed.
func (h HandlerFuncs) OnKeyed(s *Stream, k flow.Keyed) {
	if h.Keyed != nil {
		h.Keyed(s, k)
	}
}

// OnSourceChanged calls h.SourceChanged.
func (h HandlerFuncs) OnSourceChanged(s *Stream, f *flow.Flow, from, to netip.AddrPort) {
	if h.SourceChanged != nil {
		h.SourceChanged(s, f, from, to)
	}
}
