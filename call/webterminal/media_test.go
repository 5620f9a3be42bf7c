package webterminal

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/mediastream"
)

// newAgent makes a call core agent with media on loopback secured with sec.
func newAgent(t *testing.T, sec sdpx.Security) *call.Agent {
	t.Helper()
	m, err := flowmanager.New(flowmanager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := call.New(call.Config{Manager: m, Media: call.MediaConfig{
		LocalAddr: netip.MustParseAddr("127.0.0.1"), Security: sec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); m.Close() })
	return a
}

func withAgent(a *call.Agent) func(*Config) { return func(c *Config) { c.Media = CoreMedia(a) } }

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

func streamOf(t *testing.T, c *Call) *mediastream.Stream {
	t.Helper()
	cc := CallOf(c)
	if cc == nil || cc.Stream() == nil {
		t.Fatalf("call %s has no core call/stream", c.ID())
	}
	return cc.Stream()
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
	a := dial(t, addr, "100", MultiPipe, "", withAgent(newAgent(t, sec)))
	b := dial(t, addr, "200", Pipe, "accept", withAgent(newAgent(t, sec)))
	c, err := a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, c.Established(), "established")
	in := recv(t, b.rec.incoming, "incoming")
	if in.State() != Active {
		t.Fatalf("callee %v: %v", in.State(), in.Err())
	}
	sa, sb := streamOf(t, c), streamOf(t, in)
	flows(t, sa, sb, "caller -> callee")
	flows(t, sb, sa, "callee -> caller")

	// The core moves both parties' media to new endpoints (a media server):
	// with DTLS each party's old association closes, and the new one
	// started by the re-offer keeps the calls up.
	mf, sm := moveMedia(t, core, sec, c.ID(), "100")
	defer mf.Close()
	mf2, sm2 := moveMedia(t, core, sec, c.ID(), "200")
	defer mf2.Close()
	for _, x := range []struct {
		c   *Call
		new *mediastream.Stream
		who string
	}{{c, sm, "caller"}, {in, sm2, "callee"}} {
		s := streamOf(t, x.c) // the core may have moved the call to a new stream
		flows(t, s, x.new, x.who+" -> new endpoint")
		flows(t, x.new, s, "new endpoint -> "+x.who)
		if got, want := s.RTP().ActiveDestination(), x.new.RTP().SessionTuple().Addr; got != want {
			t.Fatalf("%s sends to %v, want the new endpoint %v", x.who, got, want)
		}
		if sec == sdpx.DTLS {
			// A new association with the new endpoint, pinned to its certificate.
			st, _ := CallOf(x.c).MediaState()
			if len(st.RemoteFingerprints) != 1 || !st.RemoteFingerprints[0].Equal(x.new.Fingerprint()) || !s.RTP().IsSecure() {
				t.Fatalf("%s's DTLS not with the new endpoint: %+v", x.who, st.RemoteFingerprints)
			}
		}
	}
	if c.State() != Active || in.State() != Active {
		t.Fatalf("calls %v (%v) / %v (%v) after the move", c.State(), c.Err(), in.State(), in.Err())
	}
	c.Hangup(ctxT(t))
	wait(t, in.Done(), "callee's call ended")
}

// moveMedia has the core renegotiate party msisdn of call id towards a new
// media endpoint on its own agent, and returns that endpoint's media and
// stream once its answer is applied.
func moveMedia(t *testing.T, core *Core, sec sdpx.Security, id, msisdn string) (Media, *mediastream.Stream) {
	t.Helper()
	mf, err := CoreMedia(newAgent(t, sec))(ctxT(t), &Call{id: id, peer: msisdn})
	if err != nil {
		t.Fatal(err)
	}
	offer, err := mf.Offer(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[sdpx.Security][]string{sdpx.DTLS: {"a=fingerprint:sha-256", "a=setup:actpass"}, sdpx.SDES: {"a=crypto:"}}[sec]
	for _, w := range append([]string{"a=ice-lite", "a=ice-ufrag:", "a=ice-pwd:", " 1 UDP 2130706431 127.0.0.1 ", "typ host"}, want...) {
		if !strings.Contains(offer, w) {
			t.Fatalf("offer lacks %q:\n%s", w, offer)
		}
	}
	answer, err := core.Renegotiate(ctxT(t), id, msisdn, offer)
	if err != nil {
		t.Fatalf("renegotiating %s: %v", msisdn, err)
	}
	wantAns := map[sdpx.Security][]string{sdpx.DTLS: {"a=fingerprint:sha-256", "a=setup:active"}, sdpx.SDES: {"a=crypto:"}}[sec]
	for _, w := range append([]string{"a=candidate:", "a=ice-ufrag:"}, wantAns...) {
		if !strings.Contains(answer, w) {
			t.Fatalf("answer lacks %q:\n%s", w, answer)
		}
	}
	if err := mf.SetAnswer(ctxT(t), answer); err != nil {
		t.Fatal(err)
	}
	return mf, CallOf(&Call{media: mf}).Stream()
}
