// Package demux classifies datagrams arriving on one media socket by their first
// byte, as RFC 7983 (updating RFC 5764 §5.1.2) lays out: STUN 0..3, ZRTP 16..19,
// DTLS 20..63, TURN ChannelData 64..79, RTP/RTCP 128..191. RTCP is told apart
// from RTP by the second byte (payload type 192..223 with the marker bit), RFC 5761 §4.
package demux

// Kind is the protocol a datagram belongs to.
type Kind uint8

// The kinds of datagram.
const (
	Unknown Kind = iota
	STUN
	ZRTP
	DTLS
	ChannelData
	RTP
	RTCP
)

var kindNames = [...]string{"unknown", "stun", "zrtp", "dtls", "channeldata", "rtp", "rtcp"}

// String returns the kind's name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Classify returns the kind of b. It reads at most two bytes and never panics.
func Classify(b []byte) Kind {
	if len(b) == 0 {
		return Unknown
	}
	switch c := b[0]; {
	case c <= 3:
		return STUN
	case c >= 16 && c <= 19:
		return ZRTP
	case c >= 20 && c <= 63:
		return DTLS
	case c >= 64 && c <= 79:
		return ChannelData
	case c >= 128 && c <= 191:
		if len(b) >= 2 && b[1] >= 192 && b[1] <= 223 {
			return RTCP
		}
		return RTP
	}
	return Unknown
}
