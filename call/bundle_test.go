package call

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
)

// bundleOffer is a browser's offer with the given m= sections in one BUNDLE
// group: "audio" lines (each with its own SSRC), "video" and "application"
// (a data channel).
func bundleOffer(version int, ufrag string, kinds ...string) []byte {
	var mids []string
	for i := range kinds {
		mids = append(mids, fmt.Sprint(i))
	}
	b := fmt.Appendf(nil, "v=0\r\no=- 4611731400430051336 %d IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE", version)
	for _, m := range mids {
		b = fmt.Appendf(b, " %s", m)
	}
	b = append(b, "\r\n"...)
	for i, k := range kinds {
		switch k {
		case "audio":
			b = fmt.Appendf(b, "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"+
				"a=ssrc:%d cname:x\r\n", 1000+i)
		case "video":
			b = append(b, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n"...)
		case "application":
			b = append(b, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=sctp-port:5000\r\n"...)
		}
		b = fmt.Appendf(b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\na=setup:actpass\r\n"+
			"a=mid:%d\r\na=sendrecv\r\na=rtcp-mux\r\n", ufrag, peerPwd, fakeFingerprint, i)
	}
	return b
}

// BUNDLE (RFC 9143): an offer with audio, video and a data channel in one
// group is answered with the audio line accepted, the others rejected with
// port 0 keeping their a=mid, and a=group:BUNDLE naming the audio mid. A
// re-offer adding a second audio line (a browser's addTrack) gets both audio
// lines on the same transport, both in the answer's group; MediaState lists
// the second with its SSRC for demultiplexing.
func TestBundle(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p := newPair(t, MediaConfig{}, MediaConfig{})
	sig := newSinkSig()
	c, err := p.a.Incoming(ctx, sig, Params{ID: "bundle"}, bundleOffer(1, peerUfrag, "audio", "video", "application"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Hangup(ctx)
	if err := c.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	raw := <-sig.answer
	d, err := sdpx.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Media) != 3 || d.Media[0].Port == 0 || d.Media[1].Port != 0 || d.Media[2].Port != 0 ||
		d.Media[0].Mid != "0" || d.Media[1].Mid != "1" || d.Media[2].Mid != "2" ||
		len(d.Bundles) != 1 || !slices.Equal(d.Bundles[0], []string{"0"}) {
		t.Fatalf("answer to audio+video+data:\n%s", raw)
	}
	port := d.Media[0].Port

	// The browser adds a second audio track.
	raw, err = c.RemoteOffer(ctx, bundleOffer(2, peerUfrag, "audio", "video", "application", "audio"))
	if err != nil {
		t.Fatal(err)
	}
	if d, err = sdpx.Parse(raw); err != nil {
		t.Fatal(err)
	}
	if len(d.Media) != 4 || d.Media[0].Port != port || d.Media[3].Port != port || d.Media[3].Mid != "3" ||
		d.Media[1].Port != 0 || d.Media[1].Mid != "1" || !d.Media[3].RTCPMux || d.Media[3].ICEUfrag != d.Media[0].ICEUfrag ||
		len(d.Bundles) != 1 || !slices.Equal(d.Bundles[0], []string{"0", "3"}) {
		t.Fatalf("answer to a re-offer with a second audio line:\n%s", raw)
	}
	st, _ := c.MediaState()
	if len(st.Bundled) != 1 || st.Bundled[0].Mid != "3" || !slices.Equal(st.Bundled[0].SSRCs, []uint32{1003}) || st.Mid != "0" {
		t.Errorf("bundled media %+v", st.Bundled)
	}
}
