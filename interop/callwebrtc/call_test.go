package callwebrtc

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
)

// sig is the call's Signaling towards the pion peer: the test carries the
// SDP by hand, so it only keeps the answer.
type sig struct {
	answer chan []byte
	hangup chan call.Reason
}

func newSig() *sig { return &sig{answer: make(chan []byte, 1), hangup: make(chan call.Reason, 1)} }

func (s *sig) SendOffer(context.Context, []byte) error { return errors.New("not used") }
func (s *sig) SendRinging(context.Context) error       { return nil }
func (s *sig) SendAnswer(_ context.Context, b []byte) error {
	s.answer <- b
	return nil
}
func (s *sig) SendReject(context.Context, call.Reason) error { return nil }
func (s *sig) SendHangup(_ context.Context, r call.Reason) error {
	select {
	case s.hangup <- r:
	default:
	}
	return nil
}

// newAgent is a call agent configured for plain RTP without ICE or
// rtcp-mux: the browser-style offer alone must give DTLS-SRTP, ICE and
// rtcp-mux.
func newAgent(t *testing.T, full bool) *call.Agent {
	t.Helper()
	m, err := flowmanager.New(flowmanager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := call.New(call.Config{Manager: m, Media: call.MediaConfig{LocalAddr: netip.MustParseAddr("127.0.0.1"), FullICE: full}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		<-a.Done()
		m.Close()
	})
	return a
}

// peer is a pion/webrtc/v4 PeerConnection on loopback with PCMU tracks.
type peer struct {
	pc     *webrtc.PeerConnection
	tracks []*webrtc.TrackLocalStaticRTP
	got    chan struct{} // closed at the first RTP packet received
	once   sync.Once
	wg     sync.WaitGroup
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	return newPeerWith(t, nil)
}

// newPeerWith is newPeer with more settings.
func newPeerWith(t *testing.T, more func(*webrtc.SettingEngine)) *peer {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// Our answer declares no a=ssrc (the application picks its SSRC); pion
	// drops an undeclared SSRC whose first packet it sees before it has
	// finished applying the answer, unless told otherwise. Browsers take
	// unsignalled SSRCs on a single audio line.
	se.SetHandleUndeclaredSSRCWithoutAnswer(true)
	if more != nil {
		more(&se)
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{pc: pc, got: make(chan struct{})}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.wg.Go(func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				p.once.Do(func() { close(p.got) })
			}
		})
	})
	t.Cleanup(func() {
		pc.Close()
		p.wg.Wait()
	})
	p.addTrack(t)
	return p
}

// addTrack adds a PCMU track (a new audio m= line in the next offer).
func (p *peer) addTrack(t *testing.T) {
	t.Helper()
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", "pion")
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.pc.AddTrack(tr)
	if err != nil {
		t.Fatal(err)
	}
	p.wg.Go(func() { // RTCP must be read for the sender to work
		buf := make([]byte, 1500)
		for {
			if _, _, err := s.Read(buf); err != nil {
				return
			}
		}
	})
	p.tracks = append(p.tracks, tr)
}

// offer makes an offer the way browsers send it first: before gathering,
// so without candidates (c=0.0.0.0, port 9, a=ice-options:trickle).
func (p *peer) offer(t *testing.T) []byte {
	t.Helper()
	o, err := p.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	return []byte(o.SDP)
}

func (p *peer) answer(t *testing.T, b []byte) {
	t.Helper()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(b)}); err != nil {
		t.Fatalf("pion refuses our answer: %v\n%s", err, b)
	}
}

func rtpPacket(seq uint16, ssrc uint32) []byte {
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc},
		Payload: make([]byte, 160)}).Marshal()
	return b
}

// toPeer sends RTP from the call every 10 ms until the peer got one.
func toPeer(t *testing.T, ctx context.Context, c *call.Call, p *peer) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for seq := uint16(0); ; seq++ {
		_, _ = c.Stream().RTP().Write(rtpPacket(seq, 0x5eed))
		select {
		case <-p.got:
			return
		case <-ctx.Done():
			t.Fatal("no RTP from the call reached pion")
		case <-tick.C:
		}
	}
}

// fromPeer sends RTP on the peer's track i until the call receives a packet
// with that track's SSRC.
func fromPeer(t *testing.T, ctx context.Context, c *call.Call, p *peer, ssrc uint32, i int) {
	t.Helper()
	buf := make([]byte, 1500)
	f := c.Stream().RTP()
	defer f.SetReadDeadline(time.Time{})
	for seq := uint16(0); ctx.Err() == nil; seq++ {
		_ = p.tracks[i].WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160}, Payload: make([]byte, 160)})
		f.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, _, err := f.ReadFromAddrPort(buf)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v", err)
		}
		var pkt rtp.Packet
		if err == nil && pkt.Unmarshal(buf[:n]) == nil && pkt.SSRC == ssrc {
			return
		}
	}
	t.Fatalf("no RTP with SSRC %d from pion", ssrc)
}

func ssrcOf(t *testing.T, p *peer, i int) uint32 {
	t.Helper()
	for _, s := range p.pc.GetSenders() {
		if s.Track() == p.tracks[i] {
			return uint32(s.GetParameters().Encodings[0].SSRC)
		}
	}
	t.Fatal("no sender for the track")
	return 0
}

// A pion peer calls with a trickle-style offer (no candidates, actpass):
// the agent, configured for nothing in particular, answers with DTLS-SRTP,
// ICE-lite, rtcp-mux and BUNDLE; media flows both ways. A re-offer adding a
// second track (BUNDLE) is accepted on the same transport and its RTP
// arrives. pion's Close ends the call with MediaLost. Both with our
// ICE-lite agent and with the full one (MediaConfig.FullICE).
func TestPionCall(t *testing.T) {
	t.Run("lite", func(t *testing.T) { testPionCall(t, false) })
	t.Run("full", func(t *testing.T) { testPionCall(t, true) })
}

func testPionCall(t *testing.T, full bool) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := newAgent(t, full)
	p := newPeer(t)

	start := time.Now()
	s := newSig()
	c, err := a.Incoming(ctx, s, call.Params{ID: "pion"}, p.offer(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	p.answer(t, <-s.answer)
	applied := time.Since(start)
	st, _ := c.MediaState()
	if st.Security != sdpx.DTLS || !st.ICE || !st.RTCPMux || st.DTLSRole != dtlssrtp.Client {
		t.Fatalf("media %+v", st)
	}
	if _, err := c.Stream().WaitKeyed(ctx); err != nil {
		t.Fatal(err)
	}
	keyed := time.Since(start)
	toPeer(t, ctx, c, p)
	// With ICE-lite most of the time after the answer is pion's: only its
	// checks run, paced by its 200 ms check interval. A full agent checks too.
	t.Logf("offer to: answer applied at pion %v, keyed %v, first RTP at pion %v", applied, keyed, time.Since(start))
	fromPeer(t, ctx, c, p, ssrcOf(t, p, 0), 0)

	// pion adds a track: a BUNDLE re-offer with a second audio m= line.
	p.addTrack(t)
	ans, err := c.RemoteOffer(ctx, p.offer(t))
	if err != nil {
		t.Fatal(err)
	}
	p.answer(t, ans)
	st, _ = c.MediaState()
	second := ssrcOf(t, p, 1)
	if !slices.ContainsFunc(st.Bundled, func(b call.Bundled) bool { return slices.Contains(b.SSRCs, second) }) {
		t.Fatalf("the new track's line is not bundled: %+v", st.Bundled)
	}
	fromPeer(t, ctx, c, p, second, 1)
	if s := p.pc.ConnectionState(); s != webrtc.PeerConnectionStateConnected {
		t.Fatalf("pion connection %v after the re-offer", s)
	}

	// pion closes: DTLS close_notify, no signalling.
	start = time.Now()
	p.pc.Close()
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the call outlived pion's close")
	}
	r := c.Reason()
	t.Logf("pion close to call end: %v (%v)", time.Since(start), r)
	if r.Kind != call.MediaLost {
		t.Errorf("reason %+v, want MediaLost", r)
	}
}

// The same measure between two pion peers, as the baseline of "offer to
// first RTP" in the same run: each side sends its description once it has
// gathered (loopback host candidates only, so gathering is immediate).
func TestPionBaseline(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	off, ans := newPeer(t), newPeer(t)
	gathered := func(p *peer) string {
		<-webrtc.GatheringCompletePromise(p.pc)
		return p.pc.LocalDescription().SDP
	}
	start := time.Now()
	o, err := off.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := off.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	if err := ans.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: gathered(off)}); err != nil {
		t.Fatal(err)
	}
	a, err := ans.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ans.pc.SetLocalDescription(a); err != nil {
		t.Fatal(err)
	}
	off.answer(t, []byte(gathered(ans)))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for seq := uint16(0); ; seq++ {
		_ = ans.tracks[0].WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq}, Payload: make([]byte, 160)})
		select {
		case <-off.got:
			t.Logf("pion to pion, offer to first RTP at the offerer: %v", time.Since(start))
			return
		case <-ctx.Done():
			t.Fatal("no RTP between the pion peers")
		case <-tick.C:
		}
	}
}

// offerSig is the Signaling of a call we place: the test carries the offer.
type offerSig struct {
	sig
	offer chan []byte
}

func (s *offerSig) SendOffer(_ context.Context, b []byte) error { s.offer <- b; return nil }

// Trickle the other way (RFC 8838): we call a pion ICE-lite peer with a
// full agent (MediaConfig.FullICE, controlling); pion answers before
// gathering (no candidates) and trickles them; Call.RemoteCandidate hands
// them to our agent, which checks and nominates (a lite peer sends no
// checks, so without them the call could not connect). Media flows both ways.
func TestPionTrickleAnswer(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := flowmanager.New(flowmanager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := call.New(call.Config{Manager: m, Media: call.MediaConfig{LocalAddr: netip.MustParseAddr("127.0.0.1"),
		Security: sdpx.DTLS, RTCPMux: true, ICE: true, FullICE: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close(); <-a.Done(); m.Close() }()
	p := newPeerWith(t, func(se *webrtc.SettingEngine) { se.SetLite(true) })

	s := &offerSig{sig: *newSig(), offer: make(chan []byte, 1)}
	start := time.Now()
	c, err := a.Dial(ctx, s, call.Params{ID: "trickle"})
	if err != nil {
		t.Fatal(err)
	}
	cands := make(chan string, 16)
	p.pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic == nil {
			cands <- ""
			return
		}
		cands <- ic.ToJSON().Candidate
	})
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(<-s.offer)}); err != nil {
		t.Fatalf("pion refuses our offer: %v", err)
	}
	ans, err := p.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.pc.SetLocalDescription(ans); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ans.SDP, "a=candidate") {
		t.Fatalf("pion's answer already has candidates:\n%s", ans.SDP)
	}
	if err := c.RemoteAnswer([]byte(ans.SDP)); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			select {
			case v := <-cands:
				if v == "" {
					_ = c.RemoteEndOfCandidates()
					return
				}
				_ = c.RemoteCandidate(v)
			case <-c.Done():
				return
			}
		}
	}()
	toPeer(t, ctx, c, p)
	t.Logf("offer to first RTP at the trickling pion answerer: %v", time.Since(start))
	fromPeer(t, ctx, c, p, ssrcOf(t, p, 0), 0)
	if !c.Stream().RTP().ICEControlling() {
		t.Error("our agent is not controlling")
	}
	c.Hangup(ctx)
}
