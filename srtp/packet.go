package srtp

import (
	"fmt"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

const (
	// srtcpIndexLen is the length of the SRTCP E flag and index word.
	srtcpIndexLen = 4
	// maxSRTCPIndex is the largest 31-bit SRTCP index.
	maxSRTCPIndex = 1<<31 - 1
	// maxSRTPIndex is the largest 48-bit SRTP packet index (ROC<<16 | SEQ).
	maxSRTPIndex = 1<<48 - 1
)

// MaxOverhead is the most bytes protection adds to a packet with any suite
// and any MKI: the SRTCP index word (4), the largest tag (16, AEAD) and the
// largest MKI (MaxMKILen). A dst with cap(dst) >= len(pkt)+MaxOverhead never
// needs to grow. Keys.RTPOverhead and Keys.RTCPOverhead give the exact
// figures for one set of keys.
const MaxOverhead = srtcpIndexLen + 16 + MaxMKILen

// IsRTCP reports whether pkt, a packet in the RTP/RTCP range of a multiplexed
// port, is RTCP: its second byte is in 192..223 (RFC 5761 §4, RTCP packet
// types 192-223 against RTP payload types with the marker bit). It does not
// validate the rest of the packet.
func IsRTCP(pkt []byte) bool {
	return len(pkt) >= 2 && pkt[1] >= 192 && pkt[1] <= 223
}

// recoveredPanics counts panics inside pion/srtp that were turned into
// errors; tests and fuzz targets check that it stays 0.
var recoveredPanics atomic.Uint64

// panicError turns a recovered panic value into an error.
func panicError(r any) error {
	recoveredPanics.Add(1)
	return fmt.Errorf("%w: pion/srtp panicked: %v", ErrMalformedPacket, r)
}

// badRTP reports whether pkt fails RTP header parsing; only called on an
// error path, to tell malformed input from other pion errors.
func badRTP(pkt []byte) bool {
	if !isRTPv2(pkt) {
		return true
	}
	var h rtp.Header
	_, err := h.Unmarshal(pkt)
	return err != nil
}

// badRTCP reports whether pkt fails RTCP header parsing or is too short to
// carry a sender SSRC; only called on an error path.
func badRTCP(pkt []byte) bool {
	var h rtcp.Header
	return h.Unmarshal(pkt) != nil || len(pkt) < 8
}

// isRTPv2 reports whether pkt starts like an RTP version 2 packet; pion's
// RTP header parser does not check the version.
func isRTPv2(pkt []byte) bool { return len(pkt) > 0 && pkt[0]>>6 == 2 }
