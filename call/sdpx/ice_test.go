package sdpx

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/reflow-go/reflow/internal/leak"
)

// iceOffer is a WebRTC-style offer (RFC 8839 §5.1 examples, Chromium's layout).
const iceOffer = "v=0\r\n" +
	"o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=ice-ufrag:sess\r\n" +
	"a=ice-pwd:sessionlevelpassword0123\r\n" +
	"m=audio 45664 UDP/TLS/RTP/SAVPF 0\r\n" +
	"c=IN IP4 203.0.113.141\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=candidate:1467250027 1 udp 2122260223 192.0.2.1 46243 typ host generation 0\r\n" +
	"a=candidate:1467250027 2 udp 2122260222 192.0.2.1 56280 typ host generation 0\r\n" +
	"a=candidate:435653019 1 tcp 1845501695 192.0.2.1 0 typ host tcptype active generation 0\r\n" +
	"a=candidate:1853887674 1 udp 1518280447 203.0.113.141 45664 typ srflx raddr 192.0.2.1 rport 46243 generation 0\r\n" +
	"a=candidate:2157334355 1 udp 33562367 198.51.100.7 3478 typ relay raddr 203.0.113.141 rport 45664\r\n" +
	"a=candidate:1 1 udp 1 abcdef01-2345.local 9 typ host\r\n" +
	"a=ice-ufrag:EsAw\r\n" +
	"a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n" +
	"a=fingerprint:sha-256 " + fp256 + "\r\n" +
	"a=setup:actpass\r\n" +
	"a=rtcp-mux\r\n" +
	"a=end-of-candidates\r\n"

func TestParseICE(t *testing.T) {
	leak.Check(t)
	d, err := Parse([]byte(iceOffer))
	if err != nil {
		t.Fatal(err)
	}
	if d.ICELite {
		t.Error("ice-lite set")
	}
	m := d.Media[0]
	if m.ICEUfrag != "EsAw" || m.ICEPwd != "P2uYro0UCOQ4zxjKXaWCBui1" || !m.ICE() || m.CheckICE() != nil {
		t.Errorf("credentials %q %q: %v", m.ICEUfrag, m.ICEPwd, m.CheckICE())
	}
	if !m.EndOfCandidates || len(m.Candidates) != 5 || m.BadCandidates != 1 {
		t.Fatalf("candidates %+v bad %d", m.Candidates, m.BadCandidates)
	}
	srflx := m.Candidates[3]
	want := Candidate{Foundation: "1853887674", Component: 1, Transport: "udp", Priority: 1518280447,
		Addr: netip.MustParseAddrPort("203.0.113.141:45664"), Type: ServerReflexive,
		Related: netip.MustParseAddrPort("192.0.2.1:46243"), Extensions: []string{"generation", "0"}}
	if srflx.Value() != want.Value() || !srflx.IsUDP() {
		t.Errorf("srflx = %q, want %q", srflx.Value(), want.Value())
	}
	if c := m.Candidates[2]; c.IsUDP() || strings.Join(c.Extensions, " ") != "tcptype active generation 0" {
		t.Errorf("tcp candidate %+v", c)
	}
	if c := m.Candidates[4]; c.Type != Relayed || c.Related.Port() != 45664 {
		t.Errorf("relay candidate %+v", c)
	}

	// Session-level credentials apply when the media level has none.
	d, err = Parse([]byte(strings.NewReplacer("a=ice-ufrag:EsAw\r\n", "", "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n", "").Replace(iceOffer)))
	if err != nil {
		t.Fatal(err)
	}
	if m := d.Media[0]; m.ICEUfrag != "sess" || m.ICEPwd != "sessionlevelpassword0123" {
		t.Errorf("session-level credentials %q %q", m.ICEUfrag, m.ICEPwd)
	}
}

func TestCheckICE(t *testing.T) {
	leak.Check(t)
	pwd := "0123456789abcdefghij+/"
	for _, tc := range []struct {
		ufrag, pwd string
		ok         bool
	}{
		{"", "", true},
		{"abcd", pwd, true},
		{"abcd", "", false},
		{"", pwd, false},
		{"abc", pwd, false},
		{"ab:d", pwd, false},
		{"abcd", pwd[1:], false},
		{"abcd", strings.Repeat("a", 257), false},
	} {
		err := Media{ICEUfrag: tc.ufrag, ICEPwd: tc.pwd}.CheckICE()
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("CheckICE(%q, %q) = %v", tc.ufrag, tc.pwd, err)
		}
	}
}

func TestParseCandidate(t *testing.T) {
	leak.Check(t)
	good := []string{
		"candidate:1 1 UDP 2130706431 10.0.1.1 8998 typ host",
		"2 1 UDP 1694498815 192.0.2.3 45664 typ srflx raddr 10.0.1.1 rport 8998",
		"a+/ 256 tcp 0 ::1 9 typ prflx",
	}
	for _, v := range good {
		c, err := ParseCandidate(v)
		if err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		if got := c.Value(); got != strings.TrimPrefix(v, "candidate:") {
			t.Errorf("%q written back as %q", v, got)
		}
	}
	for _, v := range []string{
		"", "1 1 UDP 1 10.0.0.1 9 typ",
		"1 0 UDP 1 10.0.0.1 9 typ host",
		"1 257 UDP 1 10.0.0.1 9 typ host",
		"1 1 UDP 4294967296 10.0.0.1 9 typ host",
		"1 1 UDP 1 10.0.0.1 65536 typ host",
		"1 1 UDP 1 10.0.0.1 9 type host",
		"1 1 UDP 1 10.0.0.1 9 typ bogus",
		"1 1 UDP 1 10.0.0.1 9 typ srflx raddr 10.0.0.2",
		"1 1 UDP 1 10.0.0.1 9 typ srflx raddr 10.0.0.2 port 9",
		"f:o 1 UDP 1 10.0.0.1 9 typ host",
		"1 1 UDP 1 10.0.0.1 9 typ host generation",
	} {
		if _, err := ParseCandidate(v); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, want ErrMalformed", v, err)
		}
	}
	if _, err := ParseCandidate("1 1 UDP 1 x.local 9 typ host"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("mDNS name: %v, want ErrUnsupported", err)
	}
}

func TestLocalCandidates(t *testing.T) {
	leak.Check(t)
	host := netip.MustParseAddrPort("10.0.0.1:5000")
	srflx := netip.MustParseAddrPort("192.0.2.1:6000")
	relay := netip.MustParseAddrPort("198.51.100.1:7000")
	got := LocalCandidates(ComponentRTP, host, srflx, relay)
	if len(got) != 3 {
		t.Fatalf("%d candidates", len(got))
	}
	want := []string{
		" 1 UDP 2130706431 10.0.0.1 5000 typ host",
		" 1 UDP 1694498815 192.0.2.1 6000 typ srflx raddr 10.0.0.1 rport 5000",
		" 1 UDP 16777215 198.51.100.1 7000 typ relay raddr 192.0.2.1 rport 6000",
	}
	for i, c := range got {
		if v := c.Value(); !strings.HasSuffix(v, want[i]) {
			t.Errorf("candidate %d = %q, want *%q", i, v, want[i])
		}
	}
	rtcp := LocalCandidates(ComponentRTCP, netip.AddrPortFrom(host.Addr(), 5001), netip.AddrPort{}, netip.AddrPort{})
	if len(rtcp) != 1 || rtcp[0].Priority != 2130706430 || rtcp[0].Foundation != got[0].Foundation {
		t.Errorf("rtcp %+v", rtcp)
	}
	if got[0].Foundation == got[1].Foundation || got[1].Foundation == got[2].Foundation {
		t.Errorf("foundations not distinct: %+v", got)
	}
	// No NAT: the reflexive address is the host address, not a second candidate.
	if n := len(LocalCandidates(ComponentRTP, host, host, netip.AddrPort{})); n != 1 {
		t.Errorf("%d candidates without NAT", n)
	}
	// Written and parsed back, with ice-lite and credentials.
	b, err := Session{Addr: host.Addr(), ICELite: true, Media: []Line{{RTP: host, RTCPMux: true, Codecs: DefaultCodecs(),
		ICEUfrag: "abcd", ICEPwd: "0123456789abcdefghijkl", Candidates: got}}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	m := d.Media[0]
	if !d.ICELite || m.ICEUfrag != "abcd" || m.ICEPwd != "0123456789abcdefghijkl" || len(m.Candidates) != 3 || !m.EndOfCandidates {
		t.Errorf("round trip:\n%s", b)
	}
}
