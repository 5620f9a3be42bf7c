package sdpx

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/srtp"
)

const sdesOffer = "v=0\r\n" +
	"o=alice 2890844526 2890844527 IN IP4 192.0.2.10\r\n" +
	"s=-\r\n" +
	"c=IN IP4 192.0.2.10\r\n" +
	"t=0 0\r\n" +
	"m=audio 49170 RTP/SAVP 0 8 101 18\r\n" +
	"a=rtcp:49181 IN IP4 192.0.2.11\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-15\r\n" +
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n" +
	"a=crypto:2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4\r\n" +
	"a=sendonly\r\n"

const dtlsOffer = "v=0\n" +
	"o=- 1 1 IN IP6 ::1\n" +
	"s=-\n" +
	"t=0 0\n" +
	"c=IN IP6 ::1\n" + // after t=: normalised
	"a=fingerprint:sha-256 " + fp256 + "\n" +
	"a=setup:actpass\n" +
	"m=audio 5004 UDP/TLS/RTP/SAVP 0\n" +
	"a=rtcp-mux\n" +
	"a=mid:0\n" +
	"m=video 0 RTP/AVP 31\n"

const fp256 = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

func TestParseSDES(t *testing.T) {
	leak.Check(t)
	d, err := Parse([]byte(sdesOffer))
	if err != nil {
		t.Fatal(err)
	}
	if d.SessionID != 2890844526 || d.Version != 2890844527 || len(d.Media) != 1 {
		t.Fatalf("session: %+v", d)
	}
	m := d.Media[0]
	if m.RTP != netip.MustParseAddrPort("192.0.2.10:49170") || m.RTCP != netip.MustParseAddrPort("192.0.2.11:49181") || m.RTCPMux {
		t.Errorf("addresses: rtp %v rtcp %v mux %v", m.RTP, m.RTCP, m.RTCPMux)
	}
	if m.Security != SDES || m.Direction != SendOnly || m.Direction.Reverse() != RecvOnly {
		t.Errorf("security %v direction %v", m.Security, m.Direction)
	}
	want := []string{"0 PCMU/8000", "8 PCMA/8000", "101 telephone-event/8000", "18 G729/8000"}
	if len(m.Codecs) != len(want) {
		t.Fatalf("codecs %v", m.Codecs)
	}
	for i, c := range m.Codecs {
		if c.RTPMap() != want[i] {
			t.Errorf("codec %d = %v, want %v", i, c, want[i])
		}
	}
	if m.Codecs[2].Fmtp != "0-15" {
		t.Errorf("fmtp %q", m.Codecs[2].Fmtp)
	}
	if len(m.Crypto) != 1 || m.BadCrypto != 1 || m.Crypto[0].Tag != 1 || m.Crypto[0].Keys.Suite != srtp.AESCM128HMACSHA1_80 {
		t.Errorf("crypto %+v bad %d", m.Crypto, m.BadCrypto)
	}
}

func TestParseDTLS(t *testing.T) {
	leak.Check(t)
	d, err := Parse([]byte(dtlsOffer))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Media) != 2 {
		t.Fatalf("media %d", len(d.Media))
	}
	m := d.Media[0]
	if m.Security != DTLS || !m.RTCPMux || m.RTCP.IsValid() || m.Setup != dtlssrtp.SetupActpass || m.Mid != "0" {
		t.Errorf("media %+v", m)
	}
	if m.RTP != netip.MustParseAddrPort("[::1]:5004") {
		t.Errorf("rtp %v", m.RTP)
	}
	if len(m.Fingerprints) != 1 || m.Fingerprints[0].Hash != "sha-256" || !strings.EqualFold(m.Fingerprints[0].String(), "sha-256 "+fp256) {
		t.Errorf("fingerprints %v", m.Fingerprints)
	}
	if d.Media[1].Port != 0 || d.Media[1].Type != "video" {
		t.Errorf("second line %+v", d.Media[1])
	}
}

func TestParseErrors(t *testing.T) {
	leak.Check(t)
	base := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"
	cases := map[string]struct {
		sdp  string
		want error
	}{
		"garbage":       {"hello", ErrMalformed},
		"empty":         {"", ErrMalformed},
		"no c=":         {base + "m=audio 4000 RTP/AVP 0\r\n", ErrMalformed},
		"hostname":      {base + "c=IN IP4 host.example\r\nm=audio 4000 RTP/AVP 0\r\n", ErrUnsupported},
		"ip6 as ip4":    {base + "c=IN IP4 ::1\r\nm=audio 4000 RTP/AVP 0\r\n", ErrMalformed},
		"bad rtcp":      {base + "c=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:x\r\n", ErrMalformed},
		"bad rtpmap":    {base + "c=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus\r\n", ErrMalformed},
		"bad pt":        {base + "c=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP abc\r\n", ErrMalformed},
		"bad fp":        {base + "c=IN IP4 192.0.2.1\r\nm=audio 4000 UDP/TLS/RTP/SAVP 0\r\na=fingerprint:sha-256 AB\r\n", ErrMalformed},
		"bad setup":     {base + "c=IN IP4 192.0.2.1\r\nm=audio 4000 UDP/TLS/RTP/SAVP 0\r\na=setup:sideways\r\n", ErrMalformed},
		"huge":          {base + strings.Repeat("a=x\r\n", MaxSize/4), ErrTooLarge},
		"many m":        {base + "c=IN IP4 192.0.2.1\r\n" + strings.Repeat("m=audio 0 RTP/AVP 0\r\n", MaxMedia+1), ErrTooLarge},
		"port too high": {base + "c=IN IP4 192.0.2.1\r\nm=audio 70000 RTP/AVP 0\r\n", ErrMalformed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.sdp))
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	leak.Check(t)
	keys, err := srtp.GenerateKeys(srtp.AESCM128HMACSHA1_80)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := dtlssrtp.ParseFingerprint("sha-256 " + fp256)
	if err != nil {
		t.Fatal(err)
	}
	s := Session{
		SessionID: 7, Version: 9, Addr: netip.MustParseAddr("127.0.0.1"),
		Media: []Line{
			{
				RTP: netip.MustParseAddrPort("127.0.0.1:4000"), RTCP: netip.MustParseAddrPort("127.0.0.2:4011"),
				Security: SDES, Codecs: DefaultCodecs(), Direction: Inactive,
				Crypto: []srtp.Crypto{{Tag: 3, Keys: keys}},
			},
			{RTP: netip.MustParseAddrPort("[::1]:5000"), RTCPMux: true, Security: DTLS, Codecs: []Codec{PCMA}, Fingerprint: fp, Setup: dtlssrtp.SetupActive},
			{Type: "video", Proto: "RTP/AVP", Formats: []string{"31"}},
		},
	}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if d.SessionID != 7 || d.Version != 9 || len(d.Media) != 3 {
		t.Fatalf("%+v", d)
	}
	a, v6, v := d.Media[0], d.Media[1], d.Media[2]
	if a.RTP != s.Media[0].RTP || a.RTCP != s.Media[0].RTCP || a.Direction != Inactive || a.Security != SDES || len(a.Codecs) != 3 {
		t.Errorf("line 0: %+v", a)
	}
	if len(a.Crypto) != 1 || a.Crypto[0].Tag != 3 || !a.Crypto[0].Keys.Equal(keys) {
		t.Errorf("crypto %+v", a.Crypto)
	}
	if v6.RTP != s.Media[1].RTP || !v6.RTCPMux || v6.Setup != dtlssrtp.SetupActive || len(v6.Fingerprints) != 1 || !v6.Fingerprints[0].Equal(fp) {
		t.Errorf("line 1: %+v", v6)
	}
	if v.Port != 0 || v.Type != "video" || v.Proto != "RTP/AVP" {
		t.Errorf("line 2: %+v", v)
	}
	if _, err := (Session{}).Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("zero session: %v", err)
	}
}

func TestIntersect(t *testing.T) {
	leak.Check(t)
	offered := []Codec{{PT: 18, Name: "G729", Rate: 8000}, {PT: 97, Name: "pcma", Rate: 8000}, {PT: 100, Name: "telephone-event", Rate: 8000}}
	got := Intersect(offered, DefaultCodecs())
	if len(got) != 2 || got[0].PT != 97 || got[1].PT != 100 {
		t.Errorf("got %v", got)
	}
	if got := Intersect([]Codec{TelephoneEvent, {PT: 18, Name: "G729", Rate: 8000}}, DefaultCodecs()); got != nil {
		t.Errorf("events only: %v", got)
	}
}

func TestCombine(t *testing.T) {
	leak.Check(t)
	cases := []struct{ local, remote, want Direction }{
		{SendRecv, SendRecv, SendRecv},
		{SendRecv, SendOnly, RecvOnly},
		{SendRecv, RecvOnly, SendOnly},
		{SendRecv, Inactive, Inactive},
		{SendOnly, SendRecv, SendOnly},
		{SendOnly, SendOnly, Inactive},
		{Inactive, SendRecv, Inactive},
		{RecvOnly, SendOnly, RecvOnly},
	}
	for _, c := range cases {
		if got := Combine(c.local, c.remote); got != c.want {
			t.Errorf("Combine(%v, %v) = %v, want %v", c.local, c.remote, got, c.want)
		}
	}
	if d, ok := ParseDirection("recvonly"); !ok || d != RecvOnly {
		t.Error("ParseDirection")
	}
}
