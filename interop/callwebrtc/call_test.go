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
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/internal/udpgate"
	"github.com/reflow-go/reflow/natmode"
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
	rx     atomic.Int64  // RTP packets received
	seq    atomic.Uint32 // the sequence number of the call's next RTP packet to the peer
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
				p.rx.Add(1)
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

// nextSeq returns the sequence number of the call's next RTP packet to the
// peer: one series per peer, so that no packet is a replay.
func (p *peer) nextSeq() uint16 { return uint16(p.seq.Add(1)) }

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
	for {
		_, _ = c.Stream().RTP().Write(rtpPacket(p.nextSeq(), 0x5eed))
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
// arrives; so is one adding a second transceiver (three bundled lines). An
// ICE restart (pion's OfferOptions.ICERestart) gets new ICE credentials in
// our answer and keeps the DTLS association (no new keying) while media
// continues both ways. pion's Close ends the call with MediaLost. Both with
// our ICE-lite agent and with the full one (MediaConfig.FullICE); with the
// full one a pion peer that vanishes (its UDP socket closed, no DTLS close,
// no signalling) ends the call with MediaLost (consent lost) within the
// consent timeout.
func TestPionCall(t *testing.T) {
	t.Run("lite", func(t *testing.T) { testPionCall(t, false, false) })
	t.Run("full", func(t *testing.T) { testPionCall(t, true, false) })
	t.Run("full/vanished", func(t *testing.T) { testPionCall(t, true, true) })
}

func testPionCall(t *testing.T, full, vanish bool) {
	leak.Check(t)
	timeout := 20 * time.Second
	if vanish {
		timeout += flow.ConsentTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a := newAgent(t, full)
	// pion's ICE traffic goes through a socket of ours (a UDP mux), so the
	// test can make the peer vanish by closing it.
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: sock})
	t.Cleanup(func() { mux.Close() })
	p := newPeerWith(t, func(se *webrtc.SettingEngine) { se.SetICEUDPMux(mux) })

	start := time.Now()
	s := newSig()
	c, err := a.Incoming(ctx, s, call.Params{ID: "pion"}, p.offer(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	first := <-s.answer
	p.answer(t, first)
	applied := time.Since(start)
	firstUfrag := ufragOf(t, first)
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

	// A second transceiver: one more audio m= line, bundled.
	bundled := len(st.Bundled)
	if _, err := p.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	if ans, err = c.RemoteOffer(ctx, p.offer(t)); err != nil {
		t.Fatal(err)
	}
	p.answer(t, ans)
	if st, _ = c.MediaState(); len(st.Bundled) != bundled+1 {
		t.Fatalf("after the transceiver re-offer, bundled %+v (before: %d lines)", st.Bundled, bundled)
	}
	fromPeer(t, ctx, c, p, ssrcOf(t, p, 0), 0)
	toPeerMore(t, ctx, c, p)

	// An ICE restart: new ufrag and pwd from pion, the same fingerprint.
	o, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	if ans, err = c.RemoteOffer(ctx, []byte(o.SDP)); err != nil {
		t.Fatal(err)
	}
	p.answer(t, ans)
	if u := ufragOf(t, ans); u == "" || u == firstUfrag {
		t.Fatalf("our answer to the ICE restart keeps ufrag %q", firstUfrag)
	}
	fromPeer(t, ctx, c, p, ssrcOf(t, p, 0), 0)
	toPeerMore(t, ctx, c, p)
	// No new DTLS association: the stream is still keyed (a new one would
	// wait for keys pion never gives, its ClientHello ignored).
	kctx, kcancel := context.WithTimeout(ctx, time.Second)
	_, err = c.Stream().WaitKeyed(kctx)
	kcancel()
	if err != nil {
		t.Fatalf("after the ICE restart the stream is not keyed: %v", err)
	}
	// pion's connection is "connecting" until its checks with the new
	// credentials succeed (media flows meanwhile on the old pair).
	for deadline := time.Now().Add(5 * time.Second); p.pc.ConnectionState() != webrtc.PeerConnectionStateConnected && time.Now().Before(deadline); {
		fromPeer(t, ctx, c, p, ssrcOf(t, p, 0), 0) // paces the loop
	}
	if s := p.pc.ConnectionState(); s != webrtc.PeerConnectionStateConnected || c.State() != call.Active {
		t.Fatalf("after the ICE restart: pion %v, call %v", s, c.State())
	}

	start = time.Now()
	want := dtlssrtp.ErrPeerClosed
	if vanish {
		// pion vanishes: its socket closed, nothing said.
		want = flow.ErrConsentLost
		sock.Close()
	} else {
		// pion closes: DTLS close_notify, no signalling.
		p.pc.Close()
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatalf("the call outlived pion (vanished %v)", vanish)
	}
	r := c.Reason()
	t.Logf("pion gone (vanished %v) to call end: %v (%v)", vanish, time.Since(start), r)
	if r.Kind != call.MediaLost || !errors.Is(r, want) {
		t.Errorf("reason %+v, want MediaLost matching %v", r, want)
	}
	if vanish && time.Since(start) > flow.ConsentTimeout+2*time.Second {
		t.Errorf("the call ended %v after pion vanished (consent timeout %v)", time.Since(start), flow.ConsentTimeout)
	}
}

// ufragOf returns the a=ice-ufrag of a description's first m= line.
func ufragOf(t *testing.T, b []byte) string {
	t.Helper()
	d, err := sdpx.Parse(b)
	if err != nil || len(d.Media) == 0 {
		t.Fatalf("our SDP: %v\n%s", err, b)
	}
	return d.Media[0].ICEUfrag
}

// toPeerMore sends RTP from the call until pion received ten more packets.
func toPeerMore(t *testing.T, ctx context.Context, c *call.Call, p *peer) {
	t.Helper()
	want := p.rx.Load() + 10
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for p.rx.Load() < want {
		_, _ = c.Stream().RTP().Write(rtpPacket(p.nextSeq(), 0x5eed))
		select {
		case <-ctx.Done():
			t.Fatalf("RTP from the call stopped reaching pion (%d packets)", p.rx.Load())
		case <-tick.C:
		}
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

// trickleSig is the Signaling of a call we place with MediaConfig.Trickle:
// the test carries the offer, and our trickled candidates ("" for the end).
type trickleSig struct {
	offerSig
	cands chan string
}

func (s *trickleSig) SendCandidate(_ context.Context, v string) error {
	s.cands <- v
	return nil
}

func (s *trickleSig) SendEndOfCandidates(context.Context) error {
	s.cands <- ""
	return nil
}

// Our own trickle (RFC 8838/8840) to pion: a full ICE call with
// MediaConfig.Trickle whose stream allocates on a TURN server sends its
// offer at once (a=ice-options:trickle, the host candidate, no relayed one);
// the relayed candidate and the end follow and pion's AddICECandidate takes
// them; pion trickles its own to Call.RemoteCandidate; media flows both ways.
func TestPionTrickleOffer(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := testserver.StartTURN(testserver.TURNConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m, err := flowmanager.New(flowmanager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	g := udpgate.Start(t, srv.UDP) // no allocation before the offer is out
	a, err := call.New(call.Config{Manager: m, Media: call.MediaConfig{LocalAddr: netip.MustParseAddr("127.0.0.1"),
		Security: sdpx.DTLS, RTCPMux: true, ICE: true, FullICE: true, Trickle: true,
		NAT: natmode.Config{Mode: natmode.TURNUDP, Server: g.Addr(), Username: testserver.DefaultUsername, Password: testserver.DefaultPassword}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close(); <-a.Done(); m.Close() }()
	p := newPeer(t)
	s := &trickleSig{offerSig: offerSig{sig: *newSig(), offer: make(chan []byte, 1)}, cands: make(chan string, 16)}
	c, err := a.Dial(ctx, s, call.Params{ID: "trickle-offer"})
	if err != nil {
		t.Fatal(err)
	}
	offer := string(<-s.offer)
	if !strings.Contains(offer, "a=ice-options:trickle") || strings.Contains(offer, "typ relay") || strings.Contains(offer, "a=end-of-candidates") {
		t.Fatalf("our trickle offer:\n%s", offer)
	}
	g.Open()
	pionCands := make(chan string, 16)
	p.pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic == nil {
			pionCands <- ""
			return
		}
		pionCands <- ic.ToJSON().Candidate
	})
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatalf("pion refuses our offer: %v", err)
	}
	ans, err := p.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.pc.SetLocalDescription(ans); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoteAnswer([]byte(ans.SDP)); err != nil {
		t.Fatal(err)
	}
	// Both trickles, until both ends of candidates.
	var relayed int
	zero := uint16(0)
	for ours, theirs := false, false; !ours || !theirs; {
		select {
		case v := <-s.cands:
			if err := p.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: v, SDPMLineIndex: &zero}); err != nil {
				t.Fatalf("pion refuses our trickled candidate %q: %v", v, err)
			}
			if strings.Contains(v, " typ relay") {
				relayed++
			}
			ours = v == ""
		case v := <-pionCands:
			if v == "" {
				err = c.RemoteEndOfCandidates()
			} else {
				err = c.RemoteCandidate(v)
			}
			if err != nil {
				t.Fatalf("pion's trickled candidate %q: %v", v, err)
			}
			theirs = v == ""
		case <-ctx.Done():
			t.Fatal("the trickles did not end")
		}
	}
	if relayed != 1 {
		t.Fatalf("%d relayed candidates trickled", relayed)
	}
	toPeer(t, ctx, c, p)
	fromPeer(t, ctx, c, p, ssrcOf(t, p, 0), 0)
	c.Hangup(ctx)
}
