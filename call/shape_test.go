package call

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v2"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/mediastream"
)

// fakeFingerprint is a well-formed sha-256 fingerprint no certificate has.
var fakeFingerprint = strings.TrimSuffix(strings.Repeat("AB:", 32), ":")

// trickleOffer is what a browser sends before gathering (RFC 8829/8840):
// UDP/TLS/RTP/SAVPF, c=0.0.0.0 and port 9, no candidates, a=setup:actpass,
// rtcp-mux, a=mid in a BUNDLE group. extra is added to the session part.
func trickleOffer(extra string) []byte {
	return fmt.Appendf(nil, "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"+
		"a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n%s"+
		"m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"+
		"a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=ice-options:trickle\r\n"+
		"a=fingerprint:sha-256 %s\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n"+
		"a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"+
		"a=rtpmap:126 telephone-event/8000\r\na=ssrc:1001 cname:x\r\n",
		extra, peerUfrag, peerPwd, fakeFingerprint)
}

// An offer decides the media shape without any flag (issue 14 item 5): an
// agent configured for plain RTP, no ICE, no rtcp-mux answers a browser's
// trickle offer with DTLS-SRTP, ICE(-lite), rtcp-mux, its mid and BUNDLE,
// on a stream made for DTLS (no clear media). Its DTLS client does not
// start before it knows where to send (item 2): Accept succeeds with no
// destination, and the first ClientHello goes to the address the peer
// nominates, right after the nomination.
func TestOfferDecidesShape(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p := newPair(t, MediaConfig{}, MediaConfig{})
	sig := newSinkSig()
	c, err := p.a.Incoming(ctx, sig, Params{ID: "shape"}, trickleOffer(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Hangup(ctx)
	if err := c.Accept(ctx); err != nil {
		t.Fatalf("Accept of a trickle offer: %v", err)
	}
	raw := <-sig.answer
	d, err := sdpx.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	m := d.Media[0]
	for _, ok := range []bool{
		m.Proto == "UDP/TLS/RTP/SAVPF", m.Security == sdpx.DTLS, len(m.Fingerprints) == 1,
		m.Setup == dtlssrtp.SetupActive, m.RTCPMux, m.ICE(), m.CheckICE() == nil, d.ICELite,
		len(m.Candidates) == 1, m.Mid == "0", len(d.Bundles) == 1 && d.Bundles[0][0] == "0",
	} {
		if !ok {
			t.Fatalf("answer does not follow the offer:\n%s", raw)
		}
	}
	st, _ := c.MediaState()
	if st.Security != sdpx.DTLS || !st.RTCPMux || !st.ICE || st.DTLSRole != dtlssrtp.Client || st.Mid != "0" {
		t.Errorf("media state %+v", st)
	}
	if c.Stream().Config().Security != mediastream.DTLS || c.Stream().RTCP() != nil {
		t.Errorf("stream made for %v with RTCP flow %v", c.Stream().Config().Security, c.Stream().RTCP() != nil)
	}
	if c.State() != Active {
		t.Fatalf("state %v", c.State())
	}

	// The peer checks our candidate and nominates: our ClientHello follows.
	peer, _ := udpSocket(t)
	res := exchange(t, peer, m.Candidates[0].Addr, check(t, m.ICEUfrag+":"+peerUfrag, m.ICEPwd, true))
	if res.Type != stun.BindingSuccess {
		t.Fatalf("check: %v code %d", res.Type, errorCode(res))
	}
	buf := make([]byte, 1500)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := peer.Read(buf)
		if err != nil {
			t.Fatalf("no ClientHello after the nomination: %v", err)
		}
		if n > 13 && buf[0] == 22 && buf[13] == 1 { // handshake record, ClientHello
			break
		}
	}
}

// An application can still restrict what it answers: Accept limits the
// protection, NoICE keeps ICE out of the answer.
func TestOfferShapeRestricted(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p := newPair(t, MediaConfig{Accept: []sdpx.Security{sdpx.SDES}}, MediaConfig{NoICE: true})
	var r Reason
	if _, err := p.a.Incoming(ctx, newSinkSig(), Params{ID: "x"}, trickleOffer("")); !errors.As(err, &r) || r.Kind != NotAcceptable || r.Code != 488 {
		t.Errorf("DTLS offer to an SDES-only agent: %v", err)
	}
	sig := newSinkSig()
	c, err := p.b.Incoming(ctx, sig, Params{ID: "y"}, trickleOffer(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Hangup(ctx)
	if err := c.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	if raw := <-sig.answer; strings.Contains(string(raw), "ice-") || strings.Contains(string(raw), "candidate") {
		t.Errorf("NoICE answer with ICE:\n%s", raw)
	}
	if _, err := New(Config{Manager: p.a.cfg.Manager, Media: MediaConfig{LocalAddr: p.a.cfg.Media.LocalAddr, Accept: []sdpx.Security{7}}}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Accept with an unknown security: %v", err)
	}
}
