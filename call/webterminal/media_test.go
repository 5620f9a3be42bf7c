package webterminal

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/mediastream"
)

// flows checks that RTP sent on from reaches to, repeating the packet until it
// arrives (UDP, and DTLS may still be keying), within the test timeout.
func flows(t *testing.T, from, to *mediastream.Stream, what string) {
	t.Helper()
	pkt := []byte{0x80, 0x00, 0x00, 0x01, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 'w', 't'}
	buf := make([]byte, flow.MaxPacketSize)
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		_, _ = from.RTP().Write(pkt)
		to.RTP().SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, _, err := to.RTP().ReadFromAddrPort(buf)
		if err == nil && bytes.Equal(buf[:n], pkt) {
			to.RTP().SetReadDeadline(time.Time{})
			return
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: read: %v", what, err)
		}
	}
	t.Fatalf("%s: no RTP within %v", what, testTimeout)
}

// Outgoing and incoming calls on the call core with real media: the SDP
// carries candidates, fingerprint and setup (DTLS-SRTP) or crypto (SDES); RTP
// flows both ways after the Answer. Then the core renegotiates both parties
// towards new media endpoints and their RTP follows the new addresses.
// With DTLS-SRTP the new endpoint's fingerprint makes a new association
// (RFC 5763 §6.7.1), keyed with the new endpoint.
func TestRealMedia(t *testing.T) {
	for _, sec := range []sdpx.Security{sdpx.DTLS, sdpx.SDES} {
		t.Run(sec.String(), func(t *testing.T) { testRealMedia(t, sec) })
	}
}

func testRealMedia(t *testing.T, sec sdpx.Security) {
	leak.Check(t)
	core, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "", withSecurity(sec))
	b := dial(t, addr, "200", Pipe, "accept", withSecurity(sec))
	c, in := establish(t, a, b, "200")
	if in.State() != call.Active {
		t.Fatalf("callee %v: %v", in.State(), in.Reason())
	}
	for _, x := range []*call.Call{c, in} {
		st, ok := x.MediaState()
		if !ok || st.Security != sec || !st.ICE || !st.RTCPMux {
			t.Fatalf("media in force %+v, want %v with ICE and rtcp-mux", st, sec)
		}
	}
	sa, sb := c.Stream(), in.Stream()
	flows(t, sa, sb, "caller -> callee")
	flows(t, sb, sa, "callee -> caller")

	// The core moves both parties' media to new endpoints it terminates
	// itself (a media server, AttachMedia): with DTLS each party's old
	// association closes, and the new one started by the re-offer keeps the
	// calls up.
	sm := moveMedia(t, core, sec, c.ID(), "100")
	sm2 := moveMedia(t, core, sec, c.ID(), "200")
	for _, x := range []struct {
		c   *call.Call
		new *call.Call
		who string
	}{{c, sm, "caller"}, {in, sm2, "callee"}} {
		s, ns := x.c.Stream(), x.new.Stream() // the core may have moved the call to a new stream
		flows(t, s, ns, x.who+" -> new endpoint")
		flows(t, ns, s, "new endpoint -> "+x.who)
		if got, want := s.RTP().ActiveDestination(), ns.RTP().SessionTuple().Addr; got != want {
			t.Fatalf("%s sends to %v, want the new endpoint %v", x.who, got, want)
		}
		if sec == sdpx.DTLS {
			// A new association with the new endpoint, pinned to its certificate.
			st, _ := x.c.MediaState()
			if len(st.RemoteFingerprints) != 1 || !st.RemoteFingerprints[0].Equal(ns.Fingerprint()) || !s.RTP().IsSecure() {
				t.Fatalf("%s's DTLS not with the new endpoint: %+v", x.who, st.RemoteFingerprints)
			}
		}
	}
	if c.State() != call.Active || in.State() != call.Active {
		t.Fatalf("calls %v (%v) / %v (%v) after the move", c.State(), c.Reason(), in.State(), in.Reason())
	}
	c.Hangup(ctxT(t))
	reason(t, in, call.RemoteHangup, ErrRemoteHangup, "callee")
	// The core's own media calls end with the routed call.
	reason(t, sm, call.RemoteHangup, nil, "caller's media endpoint")
	reason(t, sm2, call.RemoteHangup, nil, "callee's media endpoint")
}

// moveMedia has the core renegotiate party msisdn of call id towards a new
// media endpoint it terminates on its own agent (AttachMedia, ICE-lite like
// a WebRTC side), and returns that endpoint's call once the party's answer
// is in force.
func moveMedia(t *testing.T, core *Core, sec sdpx.Security, id, msisdn string) *call.Call {
	t.Helper()
	mc := &call.MediaConfig{LocalAddr: netip.MustParseAddr("127.0.0.1"), Security: sec, ICE: true, RTCPMux: true}
	cc, err := core.AttachMedia(ctxT(t), newAgent(t, sec, nil), id, msisdn, mc)
	if err != nil {
		t.Fatalf("moving %s: %v", msisdn, err)
	}
	st, ok := cc.MediaState()
	if cc.State() != call.Active || !ok || st.Security != sec || !st.ICE {
		t.Fatalf("media endpoint %v, media %+v", cc.State(), st)
	}
	return cc
}
