package call

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/browser"
	"github.com/reflow-go/reflow/internal/coturn"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/udpgate"
	"github.com/reflow-go/reflow/natmode"
)

// browserPage makes an audio call from the fake microphone the way a web
// application does: the RTCPeerConnection configuration comes from the
// test; the offer is sent at once (before gathering, no candidates) and the
// page's candidates are trickled to the test as they are gathered; our
// answer is applied and our trickled candidates added (pc.addIceCandidate,
// "" for the end); on request it adds a second track and re-offers, closes
// the connection, or reports statistics.
const browserPage = `<!doctype html><html><body><script src="/harness.js"></script><script>
(async () => {
  const cfg = await recvFromTest();
  const pc = new RTCPeerConnection(cfg.pc);
  pc.onicecandidate = e => sendToTest({type: 'candidate', candidate: e.candidate ? e.candidate.candidate : ''});
  const s1 = await navigator.mediaDevices.getUserMedia({audio: true});
  pc.addTrack(s1.getTracks()[0], s1);
  pc.ontrack = e => { const a = new Audio(); a.srcObject = new MediaStream([e.track]); a.play().catch(() => {}); };
  async function offer() {
    const o = await pc.createOffer();
    await pc.setLocalDescription(o);
    sendToTest({type: 'offer', sdp: o.sdp});
  }
  await offer();
  for (;;) {
    const m = await recvFromTest();
    if (m.type === 'answer') {
      await pc.setRemoteDescription({type: 'answer', sdp: m.sdp});
      sendToTest({type: 'applied'});
    } else if (m.type === 'addtrack') {
      const s2 = await navigator.mediaDevices.getUserMedia({audio: true});
      pc.addTrack(s2.getTracks()[0], s2);
      await offer();
    } else if (m.type === 'transceiver') {
      pc.addTransceiver('audio', {direction: 'sendrecv'});
      await offer();
    } else if (m.type === 'restart') {
      pc.restartIce();
      await offer();
    } else if (m.type === 'candidate') {
      try {
        await pc.addIceCandidate({candidate: m.candidate, sdpMLineIndex: 0});
        sendToTest({type: 'added', candidate: m.candidate});
      } catch (e) {
        sendToTest({type: 'added', candidate: m.candidate, error: String(e)});
      }
    } else if (m.type === 'close') {
      pc.close();
      sendToTest({type: 'closed'});
    } else if (m.type === 'stats') {
      const s = await pc.getStats();
      let rx = 0, tx = 0, level = 0, rtt = 0, energy = 0, relays = 0;
      s.forEach(r => {
        if (r.type === 'remote-inbound-rtp' && r.kind === 'audio' && r.roundTripTime) rtt = r.roundTripTime;
        if (r.type === 'inbound-rtp' && r.kind === 'audio') { rx += r.packetsReceived; energy += r.totalAudioEnergy || 0; level = Math.max(level, r.audioLevel || 0, r.totalAudioEnergy > 0 ? 1e-6 : 0); }
        if (r.type === 'outbound-rtp' && r.kind === 'audio') tx += r.packetsSent;
        if (r.type === 'remote-candidate' && r.candidateType === 'relay') relays++;
      });
      sendToTest({type: 'stats', rx: rx, tx: tx, level: level, rtt: rtt, energy: energy, relays: relays, state: pc.connectionState});
    }
  }
})().catch(e => sendToTest({type: 'error', error: String(e)}));
</script></body></html>`

type pageMsg struct {
	Type      string  `json:"type"`
	SDP       string  `json:"sdp,omitempty"`
	Error     string  `json:"error,omitempty"`
	Candidate string  `json:"candidate"`
	RX        int     `json:"rx"`
	TX        int     `json:"tx"`
	Level     float64 `json:"level"`
	RTT       float64 `json:"rtt"`
	Energy    float64 `json:"energy"`
	Relays    int     `json:"relays"`
	State     string  `json:"state,omitempty"`
}

// browserCall is a Chromium page calling our agent.
type browserCall struct {
	t     *testing.T
	page  *browser.Page
	b     *browser.Browser
	msgs  chan pageMsg
	cands chan string // the page's trickled candidates ("" for the end)

	mu    sync.Mutex
	added []pageMsg // the page's pc.addIceCandidate outcomes for ours
}

// startBrowser starts Chromium on the page and gives it pcConfig, its
// RTCPeerConnection configuration.
func startBrowser(t *testing.T, ctx context.Context, pcConfig map[string]any) *browserCall {
	t.Helper()
	page, err := browser.NewPage(browserPage)
	if err != nil {
		t.Fatal(err)
	}
	bc := &browserCall{t: t, page: page, msgs: make(chan pageMsg, 64), cands: make(chan string, 64)}
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		for {
			var m pageMsg
			if err := page.Recv(context.Background(), &m); err != nil {
				return
			}
			switch m.Type {
			case "candidate":
				select {
				case bc.cands <- m.Candidate:
				default:
				}
			case "added":
				bc.mu.Lock()
				bc.added = append(bc.added, m)
				bc.mu.Unlock()
			default:
				select {
				case bc.msgs <- m:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { page.Close(); <-pumped })
	if bc.b, err = browser.Start(ctx, page.URL(), t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bc.b.Kill() })
	if err := page.Send(map[string]any{"type": "config", "pc": pcConfig}); err != nil {
		t.Fatal(err)
	}
	return bc
}

// addedCandidates returns the page's pc.addIceCandidate outcomes so far.
func (bc *browserCall) addedCandidates() []pageMsg {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	return append([]pageMsg(nil), bc.added...)
}

// forwardCandidates hands the page's trickled candidates to c until stop
// is closed; it returns how many the call took and refused.
func (bc *browserCall) forwardCandidates(c *Call, stop <-chan struct{}, wg *sync.WaitGroup) (result func() (took, refused int)) {
	var mu sync.Mutex
	var took, refused int
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case v := <-bc.cands:
				var err error
				if v == "" {
					err = c.RemoteEndOfCandidates()
				} else {
					err = c.RemoteCandidate(v)
				}
				mu.Lock()
				if err != nil {
					refused++ // e.g. an mDNS host name
				} else {
					took++
				}
				mu.Unlock()
			}
		}
	})
	return func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return took, refused
	}
}

// trickleSink is a sinkSig that trickles our candidates to the page, once
// the test has given the page our answer (answered closed).
type trickleSink struct {
	*sinkSig
	bc       *browserCall
	answered chan struct{}
}

func (s *trickleSink) SendCandidate(ctx context.Context, v string) error {
	select {
	case <-s.answered:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.bc.page.Send(map[string]string{"type": "candidate", "candidate": v})
}

func (s *trickleSink) SendEndOfCandidates(ctx context.Context) error {
	return s.SendCandidate(ctx, "")
}

// next waits for the page's next message of type want.
func (bc *browserCall) next(ctx context.Context, want string) pageMsg {
	bc.t.Helper()
	for {
		select {
		case m := <-bc.msgs:
			if m.Type == "error" {
				bc.t.Fatalf("page: %s", m.Error)
			}
			if m.Type == want {
				return m
			}
		case <-ctx.Done():
			bc.t.Fatalf("no %q from the page: %v", want, ctx.Err())
		}
	}
}

func (bc *browserCall) send(m map[string]string) {
	bc.t.Helper()
	if err := bc.page.Send(m); err != nil {
		bc.t.Fatal(err)
	}
}

// stats asks the page for its RTP statistics.
func (bc *browserCall) stats(ctx context.Context) pageMsg {
	bc.t.Helper()
	bc.send(map[string]string{"type": "stats"})
	return bc.next(ctx, "stats")
}

// tone is 20 ms of a 1 kHz sine at 8 kHz, G.711 mu-law encoded.
func tone() []byte {
	out := make([]byte, 160)
	for i := range out {
		out[i] = muLaw(int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/8000)))
	}
	return out
}

func muLaw(s int16) byte {
	const bias, clip = 0x84, 32635
	sign := byte(0)
	v := int(s)
	if v < 0 {
		v, sign = -v, 0x80
	}
	v = min(v, clip) + bias
	exp := 7
	for m := 0x4000; v&m == 0 && exp > 0; m >>= 1 {
		exp--
	}
	return ^(sign | byte(exp<<4) | byte(v>>(exp+3)&0x0f))
}

// sendTone sends PCMU from the call every 20 ms until stop is closed or the
// call ends.
func sendTone(c *Call, rep *Reporter, stop <-chan struct{}, wg *sync.WaitGroup) {
	wg.Go(func() {
		payload := tone()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		pkt := make([]byte, 12+len(payload))
		pkt[0] = 0x80
		binary.BigEndian.PutUint32(pkt[8:], 0x0badcafe)
		copy(pkt[12:], payload)
		for seq := uint16(0); ; seq++ {
			binary.BigEndian.PutUint16(pkt[2:], seq)
			binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
			if _, err := c.Stream().RTP().Write(pkt); err == nil {
				rep.Sent(pkt)
			}
			select {
			case <-stop:
				return
			case <-c.Done():
				return
			case <-tick.C:
			}
		}
	})
}

// peakLevel is the largest PCMU sample magnitude the call received.
var peakLevel struct {
	sync.Mutex
	v int
}

// muLawDecode returns the linear value of a mu-law byte.
func muLawDecode(b byte) int {
	b = ^b
	t := (int(b&0x0f)<<3 + 0x84) << (int(b&0x70) >> 4)
	if b&0x80 != 0 {
		return 0x84 - t
	}
	return t - 0x84
}

// received counts the RTP packets the call reads within d, handing every
// packet to rep and noting the PCMU level.
func received(c *Call, rep *Reporter, d time.Duration) int {
	buf := make([]byte, 1500)
	f := c.Stream().RTP()
	defer f.SetReadDeadline(time.Time{})
	f.SetReadDeadline(time.Now().Add(d))
	n := 0
	for {
		m, _, err := f.ReadFromAddrPort(buf)
		if err != nil {
			return n
		}
		rep.Received(buf[:m])
		if m >= 12 && buf[0]>>6 == 2 && buf[1]&0x7f < 64 {
			n++
			if buf[1]&0x7f == 0 {
				peak := 0
				for _, x := range buf[12:m] {
					peak = max(peak, abs(muLawDecode(x)))
				}
				peakLevel.Lock()
				peakLevel.v = max(peakLevel.v, peak)
				peakLevel.Unlock()
			}
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Chromium calls the call layer (issue 14), three times:
//
//   - ICE-lite, host candidates: its offer is sent before gathering (no
//     candidates, a=setup:actpass) to an agent configured for nothing in
//     particular; the answer follows the offer (DTLS-SRTP, ICE, rtcp-mux,
//     BUNDLE); audio flows both ways at a level the browser decodes; RTCP
//     reports (Reporter) give both sides a round-trip time; re-offers adding
//     a track and then a transceiver keep the browser sending; an ICE
//     restart keeps the DTLS association and media both ways; pc.close()
//     ends the call with MediaLost.
//   - Full ICE with trickle both ways, host candidates at the browser: our
//     stream allocates on coturn (TURN-UDP), our answer goes at once with
//     our host candidate and our relayed one is trickled to
//     pc.addIceCandidate, then the end; the page's candidates reach
//     Call.RemoteCandidate. The browser killed ends the call with MediaLost
//     (consent lost) within the consent timeout.
//   - The same with the browser on relay candidates only (coturn,
//     iceTransportPolicy "relay"), kept up for 60 s with audio checked on
//     both sides in every 10 s window; we hang up.
//
// Logged: the time from the offer to the first decoded audio at the browser
// (totalAudioEnergy > 0) for each, and from the browser's death to the
// call's end.
func TestChromium(t *testing.T) {
	if !browser.Isolate(t) {
		return
	}
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	m, err := flowmanager.New(flowmanager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	srv, err := coturn.Start(ctx, t.TempDir())
	if err != nil {
		if !errors.Is(err, coturn.ErrNotInstalled) || os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Logf("the trickle and relay calls are left out: %v", err)
	} else {
		defer srv.Close()
	}
	for _, mode := range []chromiumMode{
		{name: "lite/host", reoffers: true},
		{name: "full/trickle/host", full: true, trickle: true, kill: true},
		{name: "full/trickle/relay", full: true, trickle: true, relay: true, long: true, hangup: true},
	} {
		if mode.trickle && srv == nil {
			continue
		}
		mc := MediaConfig{LocalAddr: netip.MustParseAddr("127.0.0.1"), FullICE: mode.full, Trickle: mode.trickle}
		pcConfig := map[string]any{"iceServers": []any{}}
		if mode.trickle {
			// Our allocation waits behind a gate until the page applied our
			// answer, so that the answer is always a trickle one and the
			// relayed candidate always reaches the page trickled (coturn on
			// loopback would otherwise often answer before Accept).
			mode.gate = udpgate.Start(t, srv.UDP)
			mc.NAT = natmode.Config{Mode: natmode.TURNUDP, Server: mode.gate.Addr(), Username: srv.Username, Password: srv.Password,
				Timeout: 30 * time.Second}
		}
		if mode.relay {
			pcConfig = map[string]any{
				"iceTransportPolicy": "relay",
				"iceServers": []any{map[string]any{"urls": []string{"turn:" + srv.UDP.String() + "?transport=udp"},
					"username": srv.Username, "credential": srv.Password}},
			}
		}
		a, err := New(Config{Manager: m, Media: mc})
		if err != nil {
			t.Fatal(err)
		}
		chromiumCall(t, ctx, a, mode, pcConfig)
		a.Close()
		<-a.Done()
	}
}

// chromiumMode is one call of TestChromium.
type chromiumMode struct {
	name     string
	full     bool          // our agent is a full ICE agent
	trickle  bool          // it trickles its candidates (MediaConfig.Trickle), its stream on coturn
	relay    bool          // the browser uses relay candidates only
	kill     bool          // the browser is killed at the end, else pc.close()
	reoffers bool          // RTCP, re-offers and an ICE restart
	long     bool          // a 60 s call with the audio level checked every 10 s
	hangup   bool          // we hang up at the end (else the browser goes)
	gate     *udpgate.Gate // holds our stream's TURN server back until the answer is applied
}

// longCall is the length of TestChromium's long call, in windows of
// longWindow, each with audio both ways at a level.
const (
	longCall   = 60 * time.Second
	longWindow = 10 * time.Second
)

// chromiumLong keeps the call up for longCall and checks each longWindow
// that audio reached both sides: the peak PCMU level we decoded from
// Chromium, and Chromium's totalAudioEnergy growing from our tone.
func chromiumLong(t *testing.T, ctx context.Context, bc *browserCall, c *Call, rep *Reporter, name string) {
	t.Helper()
	prev := bc.stats(ctx)
	for w := range int(longCall / longWindow) {
		peakLevel.Lock()
		peakLevel.v = 0
		peakLevel.Unlock()
		n := 0
		for end := time.Now().Add(longWindow); time.Now().Before(end); {
			n += received(c, rep, min(200*time.Millisecond, time.Until(end)))
		}
		peakLevel.Lock()
		peak := peakLevel.v
		peakLevel.Unlock()
		st := bc.stats(ctx)
		t.Logf("%s: window %d: %d RTP packets, peak PCMU level %d from Chromium; at Chromium %d more packets, energy %.4f -> %.4f, level %.3f, %s",
			name, w, n, peak, st.RX-prev.RX, prev.Energy, st.Energy, st.Level, st.State)
		if n < int(longWindow/(40*time.Millisecond)) || peak < 1000 {
			t.Errorf("%s: window %d: %d RTP packets, peak level %d from Chromium", name, w, n, peak)
		}
		if st.Energy <= prev.Energy || st.RX <= prev.RX || st.State != "connected" {
			t.Errorf("%s: window %d: Chromium's audio energy %v -> %v, packets %d -> %d, state %s",
				name, w, prev.Energy, st.Energy, prev.RX, st.RX, st.State)
		}
		if c.State() != Active {
			t.Fatalf("%s: window %d: call %v", name, w, c.State())
		}
		prev = st
	}
}

func chromiumCall(t *testing.T, ctx context.Context, a *Agent, mode chromiumMode, pcConfig map[string]any) {
	peakLevel.Lock()
	peakLevel.v = 0
	peakLevel.Unlock()
	bc := startBrowser(t, ctx, pcConfig)
	offer := bc.next(ctx, "offer")
	start := time.Now()
	sink := newSinkSig()
	var sig Signaling = sink
	ts := &trickleSink{sinkSig: sink, bc: bc, answered: make(chan struct{})}
	if mode.trickle {
		sig = ts
	}
	c, err := a.Incoming(ctx, sig, Params{ID: "chromium"}, []byte(offer.SDP))
	if err != nil {
		t.Fatalf("offer refused: %v\n%s", err, offer.SDP)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() { close(stop); wg.Wait() }()
	pageCands := bc.forwardCandidates(c, stop, &wg)
	if err := c.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	answer := string(<-sink.answer)
	if mode.trickle && (!strings.Contains(answer, "a=ice-options:trickle") || strings.Contains(answer, "typ relay")) {
		t.Errorf("%s: our answer is no trickle answer:\n%s", mode.name, answer)
	}
	bc.send(map[string]string{"type": "answer", "sdp": answer})
	bc.next(ctx, "applied")
	close(ts.answered)
	if mode.gate != nil {
		mode.gate.Open()
	}
	rep, err := NewReporter(c.Stream(), ReporterConfig{SSRC: 0x0badcafe, ClockRate: 8000, Interval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	sendTone(c, rep, stop, &wg)
	var st pageMsg
	for st = bc.stats(ctx); st.Energy == 0; st = bc.stats(ctx) { // bounded by ctx
	}
	t.Logf("%s: offer to first decoded audio at Chromium: %v", mode.name, time.Since(start))
	if n := received(c, rep, time.Second); n < 10 {
		t.Fatalf("%s: %d RTP packets from Chromium in 1 s", mode.name, n)
	}
	peak := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		received(c, rep, 100*time.Millisecond)
		peakLevel.Lock()
		peak = peakLevel.v
		peakLevel.Unlock()
		if st = bc.stats(ctx); st.Level >= 0.01 && peak >= 1000 {
			break
		}
	}
	if st.Level < 0.01 {
		t.Errorf("%s: audio level at Chromium %v", mode.name, st.Level)
	}
	t.Logf("%s: peak PCMU level from Chromium's fake microphone: %d", mode.name, peak)
	if peak < 1000 {
		t.Errorf("%s: no audio from Chromium: peak level %d", mode.name, peak)
	}
	if mode.trickle {
		chromiumTrickled(t, ctx, bc, mode, pageCands)
	}
	if mode.long {
		chromiumLong(t, ctx, bc, c, rep, mode.name)
	}
	if mode.reoffers {
		chromiumReoffers(t, ctx, bc, c, rep)
		start = time.Now()
		bc.send(map[string]string{"type": "close"})
		bc.next(ctx, "closed")
	} else if mode.kill {
		start = time.Now()
		bc.b.Kill()
	} else if mode.hangup {
		// pc.close() over a relay: Chromium's close_notify may be lost
		// with its TURN allocation (seen in one of our first two runs), and the call
		// then ends by consent loss; the lite/host call covers pc.close().
		if err := c.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		if r := c.Reason(); r.Kind != LocalHangup {
			t.Errorf("%s: reason %+v after our hangup", mode.name, r)
		}
		return
	} else {
		start = time.Now()
		bc.send(map[string]string{"type": "close"})
		bc.next(ctx, "closed")
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the call outlived the browser")
	}
	r := c.Reason()
	t.Logf("%s: browser gone (killed %v) to call end: %v (%v)", mode.name, mode.kill, time.Since(start), r)
	want := dtlssrtp.ErrPeerClosed
	if mode.kill {
		want = flow.ErrConsentLost
	}
	if r.Kind != MediaLost || !errors.Is(r, want) {
		t.Errorf("%s: reason %+v, want MediaLost matching %v", mode.name, r, want)
	}
}

// chromiumTrickled checks the trickle both ways: our relayed candidate and
// the end of ours were added by the page without error (and Chromium lists
// a relayed remote candidate), the page's candidates reached the call
// (relayed ones when the page uses relays only).
func chromiumTrickled(t *testing.T, ctx context.Context, bc *browserCall, mode chromiumMode, pageCands func() (int, int)) {
	t.Helper()
	var relayAdded, endAdded bool
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !(relayAdded && endAdded); { // the allocation's next retransmission after the gate opened
		relayAdded, endAdded = false, false
		for _, m := range bc.addedCandidates() {
			if m.Error != "" {
				t.Fatalf("%s: pc.addIceCandidate(%q): %s", mode.name, m.Candidate, m.Error)
			}
			relayAdded = relayAdded || strings.Contains(m.Candidate, " typ relay")
			endAdded = endAdded || m.Candidate == ""
		}
		if st := bc.stats(ctx); relayAdded && endAdded && st.Relays == 0 {
			relayAdded = false // not listed yet
		}
	}
	if !relayAdded || !endAdded {
		t.Errorf("%s: our trickled candidates at the page: %+v", mode.name, bc.addedCandidates())
	}
	took, refused := pageCands()
	t.Logf("%s: the page trickled %d candidates the call took, %d it refused", mode.name, took, refused)
	if took == 0 || mode.relay && took < 2 { // the end, and a relayed one
		t.Errorf("%s: the page's trickled candidates: %d taken, %d refused", mode.name, took, refused)
	}
}

// chromiumReoffers checks RTCP round-trip times both ways, re-offers adding
// a track and a transceiver, and an ICE restart that keeps DTLS.
func chromiumReoffers(t *testing.T, ctx context.Context, bc *browserCall, c *Call, rep *Reporter) {
	t.Helper()
	var st pageMsg
	{
		// RTCP both ways: Chromium computes its RTT from our receiver
		// reports, we ours from its reports on our RTP.
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			received(c, rep, 200*time.Millisecond)
			if st = bc.stats(ctx); st.RTT > 0 && rep.Stats().RTT > 0 {
				break
			}
		}
		t.Logf("RTT at Chromium %.1f ms, at the call %v; reception %+v", st.RTT*1000, rep.Stats().RTT, rep.Stats())
		if st.RTT <= 0 || rep.Stats().RTT <= 0 {
			t.Errorf("no RTT from the RTCP reports: Chromium %v, call %v", st.RTT, rep.Stats().RTT)
		}
	}

	{
		// A second track: a BUNDLE re-offer with a second audio m= line.
		bc.send(map[string]string{"type": "addtrack"})
		ans, err := c.RemoteOffer(ctx, []byte(bc.next(ctx, "offer").SDP))
		if err != nil {
			t.Fatal(err)
		}
		bc.send(map[string]string{"type": "answer", "sdp": string(ans)})
		bc.next(ctx, "applied")
		before := bc.stats(ctx)
		if n := received(c, rep, time.Second); n < 10 {
			t.Fatalf("after the re-offer, %d RTP packets from Chromium in 1 s", n)
		}
		after := bc.stats(ctx)
		if after.TX <= before.TX || after.State != "connected" {
			t.Fatalf("after the re-offer Chromium sent %d -> %d packets, state %s", before.TX, after.TX, after.State)
		}

		// A second transceiver (addTransceiver): a third audio m= line.
		bc.send(map[string]string{"type": "transceiver"})
		if ans, err = c.RemoteOffer(ctx, []byte(bc.next(ctx, "offer").SDP)); err != nil {
			t.Fatal(err)
		}
		bc.send(map[string]string{"type": "answer", "sdp": string(ans)})
		bc.next(ctx, "applied")
		before = bc.stats(ctx)
		if n := received(c, rep, time.Second); n < 10 {
			t.Fatalf("after the second re-offer, %d RTP packets from Chromium in 1 s", n)
		}
		after = bc.stats(ctx)
		if st, _ := c.MediaState(); after.TX <= before.TX || after.State != "connected" || len(st.Bundled) != 2 {
			t.Fatalf("after the second re-offer Chromium sent %d -> %d packets, state %s, bundled %+v", before.TX, after.TX, after.State, st.Bundled)
		}

		// An ICE restart (new ufrag and pwd, same fingerprint): new ICE
		// credentials in our answer, the DTLS association and keys kept.
		gen := c.Media().dtlsGeneration()
		bc.send(map[string]string{"type": "restart"})
		ans, err = c.RemoteOffer(ctx, []byte(bc.next(ctx, "offer").SDP))
		if err != nil {
			t.Fatal(err)
		}
		bc.send(map[string]string{"type": "answer", "sdp": string(ans)})
		bc.next(ctx, "applied")
		before = bc.stats(ctx)
		if n := received(c, rep, time.Second); n < 10 {
			t.Fatalf("after the ICE restart, %d RTP packets from Chromium in 1 s", n)
		}
		after = bc.stats(ctx)
		if after.RX <= before.RX || after.State != "connected" || c.Media().dtlsGeneration() != gen {
			t.Fatalf("after the ICE restart Chromium received %d -> %d packets, state %s, DTLS restarted %v",
				before.RX, after.RX, after.State, c.Media().dtlsGeneration() != gen)
		}
	}
}
