package webrtcbench

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/srtp"
)

// TestReflowCall: the reflow side of the race is a full ICE, DTLS-SRTP,
// rtcp-mux call on 127.0.0.1: the caller nominated a pair of host
// candidates, both sides negotiated AEAD_AES_128_GCM, and RTP written by the
// caller is read at the callee.
func TestReflowCall(t *testing.T) {
	leak.Check(t)
	p := newReflowPeers(t)
	defer p.close()
	rx := newCounter()
	rc := p.dial(t, rx)
	if _, n := firstPacket(t, time.Now(), func(pkt []byte) { rc.write(pkt) }, rc.got); n < 1 {
		t.Fatal("no packet written")
	}
	for _, c := range []*call.Call{rc.a, rc.b} {
		m, ok := c.MediaState()
		if !ok || !m.ICE || m.Security != sdpx.DTLS || !m.RTCPMux {
			t.Errorf("%v call: negotiated %v, ICE %v, security %v, rtcp-mux %v", c.Direction(), ok, m.ICE, m.Security, m.RTCPMux)
		}
	}
	for _, s := range []struct {
		name        string
		controlling bool
		f           func() (bool, bool, srtp.Suite, string)
	}{
		{"caller", true, func() (bool, bool, srtp.Suite, string) {
			f := rc.a.Stream().RTP()
			l, _, ok := f.SelectedPair()
			return ok, f.ICEControlling(), f.DTLSSuite(), l.Addr.Addr().String()
		}},
		{"callee", false, func() (bool, bool, srtp.Suite, string) {
			f := rc.b.Stream().RTP()
			l, _, ok := f.SelectedPair()
			return ok, f.ICEControlling(), f.DTLSSuite(), l.Addr.Addr().String()
		}},
	} {
		ok, ctl, suite, addr := s.f()
		if !ok || ctl != s.controlling || suite != srtp.AEADAES128GCM || addr != "127.0.0.1" {
			t.Errorf("%s: selected pair %v (local %s), controlling %v, DTLS suite %v", s.name, ok, addr, ctl, suite)
		}
	}
	rc.hangup(t)
}

// TestPionCall: the pion side of the race connects over a host candidate
// on 127.0.0.1 with AEAD_AES_128_GCM, and RTP written on the caller's track
// is read at the callee's.
func TestPionCall(t *testing.T) {
	leak.Check(t)
	p := newPionPeers(t)
	pc := p.prepare(t, newCounter())
	defer pc.close()
	pc.connect(t)
	for _, d := range []*webrtc.SessionDescription{pc.a.LocalDescription(), pc.b.LocalDescription()} {
		if !strings.Contains(d.SDP, "a=candidate:") || !strings.Contains(d.SDP, " 127.0.0.1 ") || strings.Contains(d.SDP, "ice-lite") {
			t.Fatalf("description:\n%s", d.SDP)
		}
	}
	firstPacket(t, time.Now(), func(pkt []byte) { pc.track.Write(pkt) }, pc.got)
	pair, err := pc.a.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local.Address != "127.0.0.1" || pair.Remote.Address != "127.0.0.1" {
		t.Errorf("selected pair %v, %v", pair, err)
	}
	var cipher string
	for _, st := range pc.a.GetStats() {
		if ts, ok := st.(webrtc.TransportStats); ok {
			cipher = ts.SRTPCipher
		}
	}
	if cipher != "SRTP_AEAD_AES_128_GCM" {
		t.Errorf("SRTP cipher %q; want SRTP_AEAD_AES_128_GCM", cipher)
	}
}
