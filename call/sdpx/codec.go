package sdpx

import (
	"fmt"
	"strings"
)

// Codec is one RTP payload format: the payload type and its rtpmap/fmtp.
type Codec struct {
	// PT is the RTP payload type number (0..127).
	PT uint8
	// Name is the encoding name, e.g. "PCMU"; compared case-insensitively.
	Name string
	// Rate is the clock rate in Hz.
	Rate uint32
	// Channels is the number of audio channels; 0 and 1 both mean mono.
	Channels uint16
	// Fmtp is the format parameters (the a=fmtp value after the payload type), or "".
	Fmtp string
}

// The codecs every call offers by default (RFC 3551 static types and RFC 4733).
var (
	// PCMU is G.711 mu-law, static payload type 0.
	PCMU = Codec{PT: 0, Name: "PCMU", Rate: 8000}
	// PCMA is G.711 A-law, static payload type 8.
	PCMA = Codec{PT: 8, Name: "PCMA", Rate: 8000}
	// TelephoneEvent is RFC 4733 DTMF events on dynamic payload type 101.
	TelephoneEvent = Codec{PT: 101, Name: "telephone-event", Rate: 8000, Fmtp: "0-16"}
)

// DefaultCodecs returns PCMU, PCMA and telephone-event, in that order of preference.
func DefaultCodecs() []Codec { return []Codec{PCMU, PCMA, TelephoneEvent} }

// staticCodecs is the RFC 3551 table of static audio payload types, used
// when an offer lists a static type without an a=rtpmap.
var staticCodecs = map[uint8]Codec{
	0:  PCMU,
	3:  {PT: 3, Name: "GSM", Rate: 8000},
	4:  {PT: 4, Name: "G723", Rate: 8000},
	5:  {PT: 5, Name: "DVI4", Rate: 8000},
	6:  {PT: 6, Name: "DVI4", Rate: 16000},
	7:  {PT: 7, Name: "LPC", Rate: 8000},
	8:  PCMA,
	9:  {PT: 9, Name: "G722", Rate: 8000},
	10: {PT: 10, Name: "L16", Rate: 44100, Channels: 2},
	11: {PT: 11, Name: "L16", Rate: 44100},
	12: {PT: 12, Name: "QCELP", Rate: 8000},
	13: {PT: 13, Name: "CN", Rate: 8000},
	14: {PT: 14, Name: "MPA", Rate: 90000},
	15: {PT: 15, Name: "G728", Rate: 8000},
	16: {PT: 16, Name: "DVI4", Rate: 11025},
	17: {PT: 17, Name: "DVI4", Rate: 22050},
	18: {PT: 18, Name: "G729", Rate: 8000},
}

// StaticCodec returns the RFC 3551 codec of a static payload type.
func StaticCodec(pt uint8) (Codec, bool) {
	c, ok := staticCodecs[pt]
	return c, ok
}

// Same reports whether c and o are the same format: name (case-insensitive),
// rate and channel count; payload type and fmtp are not compared.
func (c Codec) Same(o Codec) bool {
	ch := func(n uint16) uint16 {
		if n == 0 {
			return 1
		}
		return n
	}
	return strings.EqualFold(c.Name, o.Name) && c.Rate == o.Rate && ch(c.Channels) == ch(o.Channels)
}

// RTPMap returns the a=rtpmap value, e.g. "0 PCMU/8000" or "96 opus/48000/2".
func (c Codec) RTPMap() string {
	s := fmt.Sprintf("%d %s/%d", c.PT, c.Name, c.Rate)
	if c.Channels > 1 {
		s += fmt.Sprintf("/%d", c.Channels)
	}
	return s
}

// String returns the rtpmap form of the codec.
func (c Codec) String() string { return c.RTPMap() }

// Intersect returns the codecs of offered that local also has, in the
// offerer's order and with the offerer's payload types and fmtp (RFC 3264
// §6.1). Only telephone-event on its own is not a usable intersection, so
// Intersect returns nil when no other codec matches.
func Intersect(offered, local []Codec) []Codec {
	var out []Codec
	media := false
	for _, o := range offered {
		for _, l := range local {
			if o.Same(l) {
				out = append(out, o)
				if !strings.EqualFold(o.Name, TelephoneEvent.Name) {
					media = true
				}
				break
			}
		}
	}
	if !media {
		return nil
	}
	return out
}
