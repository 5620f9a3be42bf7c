package call

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/browser"
	"github.com/reflow-go/reflow/internal/leak"
)

// browserPage makes an audio call from the fake microphone the way a web
// application does: the offer is sent at once (before gathering, no
// candidates), our answer applied; on request it adds a second track and
// re-offers, closes the connection, or reports statistics.
const browserPage = `<!doctype html><html><body><script src="/harness.js"></script><script>
(async () => {
  const pc = new RTCPeerConnection({iceServers: []});
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
    } else if (m.type === 'close') {
      pc.close();
      sendToTest({type: 'closed'});
    } else if (m.type === 'stats') {
      const s = await pc.getStats();
      let rx = 0, tx = 0, level = 0, rtt = 0;
      s.forEach(r => {
        if (r.type === 'remote-inbound-rtp' && r.kind === 'audio' && r.roundTripTime) rtt = r.roundTripTime;
        if (r.type === 'inbound-rtp' && r.kind === 'audio') { rx += r.packetsReceived; level = Math.max(level, r.audioLevel || 0, r.totalAudioEnergy > 0 ? 1e-6 : 0); }
        if (r.type === 'outbound-rtp' && r.kind === 'audio') tx += r.packetsSent;
      });
      sendToTest({type: 'stats', rx: rx, tx: tx, level: level, rtt: rtt, state: pc.connectionState});
    }
  }
})().catch(e => sendToTest({type: 'error', error: String(e)}));
</script></body></html>`

type pageMsg struct {
	Type  string  `json:"type"`
	SDP   string  `json:"sdp,omitempty"`
	Error string  `json:"error,omitempty"`
	RX    int     `json:"rx"`
	TX    int     `json:"tx"`
	Level float64 `json:"level"`
	RTT   float64 `json:"rtt"`
	State string  `json:"state,omitempty"`
}

// browserCall is a Chromium page calling our agent.
type browserCall struct {
	t    *testing.T
	page *browser.Page
	b    *browser.Browser
	msgs chan pageMsg
}

func startBrowser(t *testing.T, ctx context.Context) *browserCall {
	t.Helper()
	page, err := browser.NewPage(browserPage)
	if err != nil {
		t.Fatal(err)
	}
	bc := &browserCall{t: t, page: page, msgs: make(chan pageMsg, 64)}
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		for {
			var m pageMsg
			if err := page.Recv(context.Background(), &m); err != nil {
				return
			}
			select {
			case bc.msgs <- m:
			default:
			}
		}
	}()
	t.Cleanup(func() { page.Close(); <-pumped })
	if bc.b, err = browser.Start(ctx, page.URL(), t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bc.b.Kill() })
	return bc
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

// Chromium calls the call layer (issue 14): its offer is sent before
// gathering (no candidates, a=setup:actpass) to an agent configured for
// nothing in particular; the answer follows the offer (DTLS-SRTP, ICE,
// rtcp-mux, BUNDLE); audio flows both ways at a level the browser decodes;
// RTCP reports (Reporter) give both sides a round-trip time; re-offers
// adding a track and then a transceiver keep the browser sending; an ICE
// restart keeps
// the DTLS association and media both ways; pc.close() ends the
// call with MediaLost. Then, with a full ICE agent, the browser killed ends
// the call with MediaLost (consent lost) within the consent timeout.
func TestChromium(t *testing.T) {
	if !browser.Isolate(t) {
		return
	}
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m, err := flowmanager.New(flowmanager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, full := range []bool{false, true} {
		a, err := New(Config{Manager: m, Media: MediaConfig{LocalAddr: netip.MustParseAddr("127.0.0.1"), FullICE: full}})
		if err != nil {
			t.Fatal(err)
		}
		chromiumCall(t, ctx, a, full)
		a.Close()
		<-a.Done()
	}
}

func chromiumCall(t *testing.T, ctx context.Context, a *Agent, full bool) {
	peakLevel.Lock()
	peakLevel.v = 0
	peakLevel.Unlock()
	bc := startBrowser(t, ctx)
	offer := bc.next(ctx, "offer")
	start := time.Now()
	sig := newSinkSig()
	c, err := a.Incoming(ctx, sig, Params{ID: "chromium"}, []byte(offer.SDP))
	if err != nil {
		t.Fatalf("offer refused: %v\n%s", err, offer.SDP)
	}
	if err := c.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	bc.send(map[string]string{"type": "answer", "sdp": string(<-sig.answer)})
	bc.next(ctx, "applied")
	rep, err := NewReporter(c.Stream(), ReporterConfig{SSRC: 0x0badcafe, ClockRate: 8000, Interval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() { close(stop); wg.Wait() }()
	sendTone(c, rep, stop, &wg)
	var st pageMsg
	for st = bc.stats(ctx); st.RX == 0; st = bc.stats(ctx) { // bounded by ctx
	}
	t.Logf("full ICE %v: offer to first RTP received by Chromium: %v", full, time.Since(start))
	if n := received(c, rep, time.Second); n < 10 {
		t.Fatalf("%d RTP packets from Chromium in 1 s", n)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if st = bc.stats(ctx); st.Level >= 0.01 {
			break
		}
	}
	if st.Level < 0.01 {
		t.Errorf("audio level at Chromium %v", st.Level)
	}
	peakLevel.Lock()
	peak := peakLevel.v
	peakLevel.Unlock()
	t.Logf("peak PCMU level from Chromium's fake microphone: %d", peak)
	if peak < 1000 {
		t.Errorf("no audio from Chromium: peak level %d", peak)
	}
	if !full {
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

	if !full {
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
		start = time.Now()
		bc.send(map[string]string{"type": "close"})
		bc.next(ctx, "closed")
	} else {
		start = time.Now()
		bc.b.Kill()
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the call outlived the browser")
	}
	r := c.Reason()
	t.Logf("full ICE %v: browser gone to call end: %v (%v)", full, time.Since(start), r)
	want := dtlssrtp.ErrPeerClosed
	if full {
		want = flow.ErrConsentLost
	}
	if r.Kind != MediaLost || !errors.Is(r, want) {
		t.Errorf("reason %+v, want MediaLost matching %v", r, want)
	}
}
