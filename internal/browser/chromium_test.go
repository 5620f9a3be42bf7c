package browser_test

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/browser"
	"github.com/reflow-go/reflow/internal/coturn"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/natmode"
)

// callPage offers an audio call from the fake microphone, trickles its
// candidates, applies the test's answer and candidates, restarts ICE and
// reports RTP statistics when asked.
const callPage = `<!doctype html><html><body><script src="/harness.js"></script><script>
(async () => {
  const cfg = await recvFromTest(); // the RTCPeerConnection configuration
  const pc = new RTCPeerConnection(cfg);
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  for (const tr of stream.getTracks()) pc.addTrack(tr, stream);
  pc.onicecandidate = e => sendToTest({type: 'candidate', candidate: e.candidate ? e.candidate.candidate : ''});
  pc.oniceconnectionstatechange = () => sendToTest({type: 'state', state: pc.iceConnectionState});
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
    } else if (m.type === 'candidate') {
      await pc.addIceCandidate(m.candidate ? {candidate: m.candidate, sdpMid: m.mid} : null);
    } else if (m.type === 'restart') {
      pc.restartIce();
      await offer();
    } else if (m.type === 'stats') {
      const s = await pc.getStats();
      let rx = 0, tx = 0;
      s.forEach(r => {
        if (r.type === 'inbound-rtp' && r.kind === 'audio') rx = r.packetsReceived;
        if (r.type === 'outbound-rtp' && r.kind === 'audio') tx = r.packetsSent;
      });
      sendToTest({type: 'stats', rx: rx, tx: tx});
    }
  }
})().catch(e => sendToTest({type: 'error', error: String(e)}));
</script></body></html>`

type msg struct {
	Type      string `json:"type"`
	SDP       string `json:"sdp,omitempty"`
	Candidate string `json:"candidate"`
	Mid       string `json:"mid,omitempty"`
	State     string `json:"state,omitempty"`
	Error     string `json:"error,omitempty"`
	RX        int    `json:"rx,omitempty"`
	TX        int    `json:"tx,omitempty"`
}

// offer is what the test needs from the browser's offer.
type offer struct {
	ufrag, pwd, mid string
	fp              dtlssrtp.Fingerprint
}

func parseOffer(t *testing.T, sdp string) offer {
	t.Helper()
	var o offer
	for _, l := range strings.Split(sdp, "\n") {
		l = strings.TrimSpace(l)
		k, v, _ := strings.Cut(strings.TrimPrefix(l, "a="), ":")
		switch {
		case k == "ice-ufrag" && o.ufrag == "":
			o.ufrag = v
		case k == "ice-pwd" && o.pwd == "":
			o.pwd = v
		case k == "mid" && o.mid == "":
			o.mid = v
		case k == "fingerprint" && o.fp.Hash == "":
			fp, err := dtlssrtp.ParseFingerprint(v)
			if err != nil {
				t.Fatalf("offer fingerprint %q: %v", v, err)
			}
			o.fp = fp
		}
	}
	if o.ufrag == "" || o.pwd == "" || o.mid == "" || o.fp.Hash == "" {
		t.Fatalf("offer lacks ICE credentials, mid or fingerprint:\n%s", sdp)
	}
	return o
}

// answer is our answer: PCMU, rtcp-mux, full ICE with trickled candidates,
// DTLS client (a=setup:active).
func answer(o offer, ufrag, pwd string, fp dtlssrtp.Fingerprint) string {
	return strings.Join([]string{
		"v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
		"a=group:BUNDLE " + o.mid, "a=msid-semantic: WMS",
		"m=audio 9 UDP/TLS/RTP/SAVPF 0", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
		"a=ice-ufrag:" + ufrag, "a=ice-pwd:" + pwd, "a=ice-options:trickle",
		fp.Attribute(), "a=setup:active", "a=mid:" + o.mid, "a=sendrecv", "a=rtcp-mux",
		"a=rtpmap:0 PCMU/8000", "a=ssrc:287454020 cname:reflow", "",
	}, "\r\n")
}

// call is one browser call on one flow.
type call struct {
	t     *testing.T
	page  *browser.Page
	f     *flow.Flow
	ev    chan flow.Event
	msgs  chan msg
	cert  dtlssrtp.Config
	fp    dtlssrtp.Fingerprint
	offer offer
	seq   int // RTP sequence number: it must keep growing (SRTP replay protection)
}

func (c *call) next(ctx context.Context, want string) msg {
	c.t.Helper()
	for {
		select {
		case m := <-c.msgs:
			switch m.Type {
			case want:
				return m
			case "error":
				c.t.Fatalf("page: %s", m.Error)
			case "candidate":
				c.candidate(m)
			case "state":
				c.t.Logf("browser ICE state %s", m.State)
			}
		case <-ctx.Done():
			c.t.Fatalf("no %q message from the page: %v", want, ctx.Err())
		}
	}
}

// candidate gives a trickled browser candidate to the flow ("" is the end).
func (c *call) candidate(m msg) {
	if m.Candidate == "" {
		if err := c.f.EndOfRemoteCandidates(); err != nil {
			c.t.Fatal(err)
		}
		return
	}
	cand, err := flow.ParseCandidate(m.Candidate)
	if err != nil {
		c.t.Logf("skipping browser candidate %q: %v", m.Candidate, err)
		return
	}
	if err := c.f.AddRemoteCandidate(cand); err != nil {
		c.t.Logf("candidate %q: %v", m.Candidate, err)
	}
}

// event waits for a flow event of kind k, handling page messages meanwhile.
func (c *call) event(ctx context.Context, k flow.EventKind) flow.Event {
	c.t.Helper()
	for {
		select {
		case ev := <-c.ev:
			if ev.Kind == k {
				return ev
			}
			if ev.Kind == flow.EventError {
				c.t.Fatalf("flow error: %v", ev.Err)
			}
		case m := <-c.msgs:
			switch m.Type {
			case "candidate":
				c.candidate(m)
			case "error":
				c.t.Fatalf("page: %s", m.Error)
			case "state":
				c.t.Logf("browser ICE state %s", m.State)
			}
		case <-ctx.Done():
			c.t.Fatalf("no flow event %d: %v", k, ctx.Err())
		}
	}
}

// negotiate answers the page's offer with fresh ICE credentials and trickles
// our candidates; a second call is an ICE restart.
func (c *call) negotiate(ctx context.Context) {
	c.t.Helper()
	o := parseOffer(c.t, c.next(ctx, "offer").SDP)
	if c.offer.fp.Hash != "" && !o.fp.Equal(c.offer.fp) {
		c.t.Fatal("the browser changed its fingerprint")
	}
	c.offer = o
	ufrag, pwd, err := flow.NewICECredentials()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.f.StartICE(flow.ICEConfig{LocalUfrag: ufrag, LocalPwd: pwd, RemoteUfrag: o.ufrag, RemotePwd: o.pwd}); err != nil {
		c.t.Fatal(err)
	}
	if err := c.page.Send(msg{Type: "answer", SDP: answer(o, ufrag, pwd, c.fp)}); err != nil {
		c.t.Fatal(err)
	}
	for _, cand := range c.f.LocalCandidates() {
		if err := c.page.Send(msg{Type: "candidate", Candidate: "candidate:" + cand.String(), Mid: o.mid}); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := c.page.Send(msg{Type: "candidate", Candidate: "", Mid: o.mid}); err != nil {
		c.t.Fatal(err)
	}
}

// media checks RTP both ways: n packets from the browser arrive decrypted,
// and the browser counts the packets we send.
func (c *call) media(ctx context.Context, n int) {
	c.t.Helper()
	before := c.stats(ctx).RX
	buf := make([]byte, 1500)
	pkt := make([]byte, 172)
	pkt[0], pkt[1] = 0x80, 0
	binary.BigEndian.PutUint32(pkt[8:], 287454020)
	for i := 0; i < n; i++ {
		c.seq++
		binary.BigEndian.PutUint16(pkt[2:], uint16(c.seq))
		binary.BigEndian.PutUint32(pkt[4:], uint32(c.seq*160))
		if _, err := c.f.Write(pkt); err != nil {
			c.t.Fatalf("write: %v", err)
		}
		c.f.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, _, err := c.f.ReadFromAddrPort(buf)
		if err != nil || m < 12 || buf[0]>>6 != 2 {
			c.t.Fatalf("read RTP from the browser: %d %v", m, err)
		}
	}
	for {
		s := c.stats(ctx)
		if s.RX >= before+n/2 {
			c.t.Logf("browser received %d RTP packets (sent %d)", s.RX, s.TX)
			return
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("the browser received %d of our packets", s.RX-before)
		case <-time.After(100 * time.Millisecond): // polling the page's statistics
		}
	}
}

func (c *call) stats(ctx context.Context) msg {
	c.t.Helper()
	if err := c.page.Send(msg{Type: "stats"}); err != nil {
		c.t.Fatal(err)
	}
	return c.next(ctx, "stats")
}

// startCall starts the page, a flow (in nat's mode) and the browser inside
// the isolated namespace; pcConfig is the page's RTCPeerConnection
// configuration.
func startCall(ctx context.Context, t *testing.T, nat natmode.Config, pcConfig map[string]any) (*call, *browser.Browser) {
	t.Helper()
	page, err := browser.NewPage(callPage)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { page.Close() })
	cert, err := dtlssrtp.GenerateCertificate("reflow-test")
	if err != nil {
		t.Fatal(err)
	}
	fp, err := dtlssrtp.CertificateFingerprint(cert, "sha-256")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	ev := make(chan flow.Event, 64)
	var logger *slog.Logger
	if os.Getenv("REFLOW_BROWSER_DEBUG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	f, err := flow.New(ctx, conn, flow.Config{NAT: nat, Logger: logger, OnEvent: func(e flow.Event) {
		select {
		case ev <- e:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	c := &call{t: t, page: page, f: f, ev: ev, msgs: make(chan msg, 256), fp: fp,
		cert: dtlssrtp.Config{Certificate: cert}}
	pumpDone := make(chan struct{})
	t.Cleanup(func() { page.Close(); <-pumpDone })
	go func() {
		defer close(pumpDone)
		for {
			var m msg
			if err := page.Recv(context.Background(), &m); err != nil {
				return
			}
			c.msgs <- m
		}
	}()
	if nat.Mode != natmode.None {
		c.event(ctx, flow.EventReady) // the flow's allocation, before its candidates are gathered
	}
	b, err := browser.Start(ctx, page.URL(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Kill() })
	if err := page.Send(pcConfig); err != nil {
		t.Fatal(err)
	}
	return c, b
}

// Headless Chromium calls a flow of this library: trickled candidates both
// ways, full ICE (Chromium controlling), DTLS-SRTP, media both ways; an ICE
// restart from the page keeps DTLS and SRTP; the browser killed, consent is
// lost within 30 s.
func TestChromiumCall(t *testing.T) {
	if !browser.Isolate(t) {
		return
	}
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, b := startCall(ctx, t, natmode.Config{}, map[string]any{"iceServers": []any{}})
	f := c.f

	start := time.Now()
	c.negotiate(ctx)
	c.event(ctx, flow.EventICESelected)
	t.Logf("pair selected %v after the offer", time.Since(start))
	_, remote, _ := f.SelectedPair()
	if err := f.SetRemoteFingerprint(c.offer.fp); err != nil {
		t.Fatal(err)
	}
	if err := f.StartDTLS(dtlssrtp.Client, c.cert); err != nil {
		t.Fatal(err)
	}
	c.event(ctx, flow.EventKeyed)
	c.media(ctx, 50)

	// ICE restart from the page: new credentials, DTLS and SRTP untouched.
	if err := c.page.Send(msg{Type: "restart"}); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	c.negotiate(ctx)
	c.event(ctx, flow.EventICESelected)
	t.Logf("restart: pair selected %v after the new offer", time.Since(restart))
	if !f.IsSecure() {
		t.Fatal("the ICE restart dropped the SRTP keys")
	}
	c.media(ctx, 50)
	select {
	case e := <-c.ev:
		if e.Kind == flow.EventKeyed || e.Kind == flow.EventError {
			t.Fatalf("after the restart: event %d %v", e.Kind, e.Err)
		}
	default:
	}

	// The browser dies: consent is lost within 30 s.
	b.Kill()
	died := time.Now()
	for {
		select {
		case e := <-c.ev:
			if e.Kind != flow.EventError {
				continue
			}
			took := time.Since(died)
			t.Logf("consent lost %v after the browser was killed (remote was %v)", took, remote.Addr)
			if !errors.Is(e.Err, flow.ErrConsentLost) || took > flow.ConsentTimeout+2*time.Second {
				t.Fatalf("after %v: %v", took, e.Err)
			}
			rtp := make([]byte, 172)
			rtp[0] = 0x80
			if _, err := f.Write(rtp); !errors.Is(err, flow.ErrConsentLost) {
				t.Fatalf("write after consent lost: %v", err)
			}
			return
		case <-time.After(flow.ConsentTimeout + 5*time.Second):
			t.Fatalf("no consent loss %v after the browser died", time.Since(died))
		}
	}
}

// Chromium calls a TURN-UDP flow through coturn, both sides relayed: the
// page may use relay candidates only (iceTransportPolicy "relay", coturn as
// its TURN server), and the flow's allocation is on the same coturn. The
// selected pair has a relayed candidate; DTLS-SRTP keys and media flows both
// ways through coturn.
func TestChromiumRelayCall(t *testing.T) {
	if !browser.Isolate(t) {
		return
	}
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := coturn.Start(ctx, t.TempDir())
	if err != nil {
		if errors.Is(err, coturn.ErrNotInstalled) && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	defer srv.Close()
	nat := natmode.Config{Mode: natmode.TURNUDP, Server: srv.UDP, Username: srv.Username, Password: srv.Password}
	turnURL := "turn:" + srv.UDP.String() + "?transport=udp"
	c, _ := startCall(ctx, t, nat, map[string]any{
		"iceTransportPolicy": "relay",
		"iceServers":         []any{map[string]any{"urls": []string{turnURL}, "username": srv.Username, "credential": srv.Password}},
	})
	start := time.Now()
	c.negotiate(ctx)
	c.event(ctx, flow.EventICESelected)
	local, remote, _ := c.f.SelectedPair()
	t.Logf("pair selected %v after the offer: %v %v -> %v %v", time.Since(start), local.Type, local.Addr, remote.Type, remote.Addr)
	// The browser's relayed address may be learnt from its check before its
	// trickled candidate arrives (then it is peer-reflexive here): what
	// counts is that it is one of coturn's relay ports.
	relayed := func(c flow.Candidate) bool {
		p := c.Addr.Port()
		return c.Type == flow.CandidateRelay || p >= srv.RelayPorts[0] && p <= srv.RelayPorts[1]
	}
	if !relayed(local) && !relayed(remote) {
		t.Fatalf("selected pair %v %v -> %v %v goes through no relay (coturn relays on ports %v)",
			local.Type, local.Addr, remote.Type, remote.Addr, srv.RelayPorts)
	}
	if err := c.f.SetRemoteFingerprint(c.offer.fp); err != nil {
		t.Fatal(err)
	}
	if err := c.f.StartDTLS(dtlssrtp.Client, c.cert); err != nil {
		t.Fatal(err)
	}
	c.event(ctx, flow.EventKeyed)
	c.media(ctx, 50)
	t.Logf("media both ways through coturn %v after the offer", time.Since(start))
}
