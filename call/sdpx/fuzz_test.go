package sdpx

import (
	"testing"

	"github.com/reflow-go/reflow/internal/leak"
)

// FuzzParse checks that Parse never panics and that whatever it accepts can
// be written back and parsed again.
func FuzzParse(f *testing.F) {
	leak.Check(f)
	f.Add([]byte(sdesOffer))
	f.Add([]byte(dtlsOffer))
	f.Add([]byte("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nc=IN IP4 0.0.0.0\r\nm=audio 0 RTP/AVP 0\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 1 RTP/AVP 96\r\na=rtpmap:96 x/1/2\r\na=rtcp:9 IN IP6 ::1\r\n"))
	f.Add([]byte(iceOffer))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\na=candidate:a 256 tcp 4294967295 ::1 0 typ prflx raddr 1.2.3.4 rport 9 tcptype active\r\na=candidate:x 1 UDP 1 host.local 9 typ host\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		for _, m := range d.Media {
			if m.Port == 0 || !m.RTPProto || !m.RTP.Addr().IsValid() {
				continue
			}
			l := Line{RTP: m.RTP, RTCP: m.RTCP, RTCPMux: m.RTCPMux, Security: m.Security, Codecs: m.Codecs, Direction: m.Direction, Setup: m.Setup, Candidates: m.Candidates}
			if m.CheckICE() == nil {
				l.ICEUfrag, l.ICEPwd = m.ICEUfrag, m.ICEPwd
			}
			s := Session{Addr: m.RTP.Addr(), ICELite: d.ICELite, Media: []Line{l}}
			out, err := s.Marshal()
			if err != nil {
				return
			}
			d2, err := Parse(out)
			if err != nil {
				t.Fatalf("rewritten SDP does not parse: %v\n%s", err, out)
			}
			m2 := d2.Media[0]
			if d2.ICELite != d.ICELite || m2.ICEUfrag != l.ICEUfrag || m2.ICEPwd != l.ICEPwd || len(m2.Candidates) != len(m.Candidates) || m2.BadCandidates != 0 {
				t.Fatalf("ICE attributes changed in the rewrite:\n%s", out)
			}
			for i, c := range m.Candidates {
				if m2.Candidates[i].Value() != c.Value() {
					t.Fatalf("candidate %q rewritten as %q", c.Value(), m2.Candidates[i].Value())
				}
			}
		}
	})
}
