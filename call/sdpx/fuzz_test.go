package sdpx

import "testing"

// FuzzParse checks that Parse never panics and that whatever it accepts can
// be written back and parsed again.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sdesOffer))
	f.Add([]byte(dtlsOffer))
	f.Add([]byte("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nc=IN IP4 0.0.0.0\r\nm=audio 0 RTP/AVP 0\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 1 RTP/AVP 96\r\na=rtpmap:96 x/1/2\r\na=rtcp:9 IN IP6 ::1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		for _, m := range d.Media {
			if m.Port == 0 || !m.RTPProto || !m.RTP.Addr().IsValid() {
				continue
			}
			s := Session{Addr: m.RTP.Addr(), Media: []Line{{RTP: m.RTP, RTCP: m.RTCP, RTCPMux: m.RTCPMux, Security: m.Security, Codecs: m.Codecs, Direction: m.Direction, Setup: m.Setup}}}
			out, err := s.Marshal()
			if err != nil {
				return
			}
			if _, err := Parse(out); err != nil {
				t.Fatalf("rewritten SDP does not parse: %v\n%s", err, out)
			}
		}
	})
}
