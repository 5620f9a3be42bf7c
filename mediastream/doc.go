// Package mediastream is a media stream (reflow's MediaStream): an RTP flow and
// an optional RTCP flow on an even/odd port pair (RFC 3550 §11), set up with one
// NAT traversal mode, reporting to a Handler.
//
//	s, err := manager.NewStream(ctx, mediastream.Config{
//		LocalAddr: netip.MustParseAddr("192.0.2.10"),
//		RTCP:      true,
//		NAT:       natmode.Config{Mode: natmode.STUNBinding, Server: stunServer},
//	}, handler)
//	// handler.OnReady(s, rtp, rtcp) gives the session tuples for SDP;
//	// handler.OnError(s, err) every failure, before or after ready.
//
// # Concurrency
//
// Handler calls are made one at a time, in order, on a goroutine owned by the
// stream (started when an event is queued, gone when the queue is empty), never
// with a lock held; a handler may call Close. All methods are safe for
// concurrent use.
package mediastream
