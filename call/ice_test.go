package call

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v2"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
)

// sinkSig is a Signaling that keeps what the core sends, for tests that play
// the peer by hand.
type sinkSig struct{ offer, answer chan []byte }

func newSinkSig() *sinkSig {
	return &sinkSig{offer: make(chan []byte, 4), answer: make(chan []byte, 4)}
}

func (s *sinkSig) SendOffer(_ context.Context, b []byte) error  { s.offer <- b; return nil }
func (s *sinkSig) SendRinging(context.Context) error            { return nil }
func (s *sinkSig) SendAnswer(_ context.Context, b []byte) error { s.answer <- b; return nil }
func (s *sinkSig) SendReject(context.Context, Reason) error     { return nil }
func (s *sinkSig) SendHangup(context.Context, Reason) error     { return nil }
func (s *sinkSig) take(t *testing.T, ch chan []byte) *sdpx.Description {
	t.Helper()
	select {
	case b := <-ch:
		d, err := sdpx.Parse(b)
		if err != nil {
			t.Fatalf("our SDP does not parse: %v\n%s", err, b)
		}
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no SDP sent")
		return nil
	}
}

// The peer's ICE credentials in the tests.
const (
	peerUfrag = "peerUF"
	peerPwd   = "peerpasswordpeerpassword"
)

// webrtcSDP is a description from a full ICE agent: plain RTP to the
// default destination dflt, rtcp-mux, the given ICE attributes and one host
// candidate for cand.
func webrtcSDP(dflt, cand netip.AddrPort, ice string) []byte {
	return fmt.Appendf(nil, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0\r\nc=IN IP4 %s\r\na=rtcp-mux\r\n%s"+
		"a=candidate:1 1 udp 2130706431 %s %d typ host\r\na=sendrecv\r\n",
		dflt.Port(), dflt.Addr(), ice, cand.Addr(), cand.Port())
}

const peerICE = "a=ice-ufrag:" + peerUfrag + "\r\na=ice-pwd:" + peerPwd + "\r\n"

// udpSocket is a loopback socket playing one address of the peer.
func udpSocket(t *testing.T) (*net.UDPConn, netip.AddrPort) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// rawAttr adds an attribute stun/v2 has no setter for.
type rawAttr struct {
	typ stun.AttrType
	val []byte
}

func (a rawAttr) AddTo(m *stun.Message) error { m.Add(a.typ, a.val); return nil }

// check is what a full, controlling ICE agent sends (RFC 8445 §7.1.1):
// USERNAME, PRIORITY, ICE-CONTROLLING, optionally USE-CANDIDATE, then
// MESSAGE-INTEGRITY keyed with the lite agent's password and FINGERPRINT.
func check(t *testing.T, user, pwd string, nominate bool) *stun.Message {
	t.Helper()
	prio := binary.BigEndian.AppendUint32(nil, 1845501695) // a peer-reflexive priority
	tie := binary.BigEndian.AppendUint64(nil, 0x0123456789abcdef)
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(user),
		rawAttr{stun.AttrPriority, prio}, rawAttr{stun.AttrICEControlling, tie}}
	if nominate {
		setters = append(setters, rawAttr{stun.AttrUseCandidate, nil})
	}
	setters = append(setters, stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// exchange sends req from c to dst and returns the STUN response with its
// transaction ID, skipping anything else that arrives (media).
func exchange(t *testing.T, c *net.UDPConn, dst netip.AddrPort, req *stun.Message) *stun.Message {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(req.Raw, dst); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no response to the check: %v", err)
		}
		if !stun.IsMessage(buf[:n]) {
			continue
		}
		res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if err := res.Decode(); err != nil {
			t.Fatalf("response does not decode: %v", err)
		}
		if res.TransactionID == req.TransactionID {
			return res
		}
	}
}

// xorMapped reads XOR-MAPPED-ADDRESS, recovering from stun/v2's panic on a short one.
func xorMapped(m *stun.Message) (ap netip.AddrPort, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(m); err != nil {
		return ap, err
	}
	ip, _ := netip.AddrFromSlice(xa.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(xa.Port)), nil
}

// errorCode returns the error response's code, or 0.
func errorCode(m *stun.Message) stun.ErrorCode {
	var ec stun.ErrorCodeAttribute
	if m.Type.Class != stun.ClassErrorResponse || ec.GetFrom(m) != nil {
		return 0
	}
	return ec.Code
}

// reaches sends RTP from the call's stream until socket c receives it
// (at most 100 attempts of 30 ms reads).
func reaches(c *Call, sock *net.UDPConn) bool {
	buf := make([]byte, 1500)
	defer sock.SetReadDeadline(time.Time{})
	for i := range 100 {
		if _, err := c.Stream().RTP().Write(rtpPacket(uint16(i))); err != nil {
			return false
		}
		sock.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		for {
			n, err := sock.Read(buf)
			if err != nil {
				break
			}
			if n == 16 && buf[0] == 0x80 && buf[12] == 0xde {
				return true
			}
		}
	}
	return false
}

// hostCandidate returns the RTP host candidate of our description.
func hostCandidate(t *testing.T, m sdpx.Media) netip.AddrPort {
	t.Helper()
	for _, c := range m.Candidates {
		if c.Component == sdpx.ComponentRTP && c.Type == sdpx.Host && c.IsUDP() {
			if c.Priority != sdpx.Priority(sdpx.Host, 65535, 1) {
				t.Errorf("host priority %d", c.Priority)
			}
			return c.Addr
		}
	}
	t.Fatalf("no RTP host candidate in %+v", m.Candidates)
	return netip.AddrPort{}
}

// TestICELiteAnswerer plays a full ICE agent calling us: our answer carries
// ICE-lite, our flows answer its checks, a wrong password gets 401 and
// changes nothing, and its nomination moves our media to the checking socket.
func TestICELiteAnswerer(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p := newPair(t, MediaConfig{ICE: true, RTCPMux: true}, MediaConfig{})
	decoy, decoyAddr := udpSocket(t)   // the peer's default destination (c=/m=)
	checker, checkAddr := udpSocket(t) // the peer's candidate that it checks from
	sig := newSinkSig()
	c, err := p.a.Incoming(ctx, sig, Params{ID: "ice-1"}, webrtcSDP(decoyAddr, checkAddr, peerICE))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Hangup(ctx)
	if err := c.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	d := sig.take(t, sig.answer)
	m := d.Media[0]
	if !d.ICELite || m.CheckICE() != nil || !m.ICE() || !m.EndOfCandidates {
		t.Fatalf("answer without usable ICE-lite attributes: lite %v ufrag %q pwd %q", d.ICELite, m.ICEUfrag, m.ICEPwd)
	}
	cand := hostCandidate(t, m)
	if cand != m.RTP || len(m.Candidates) != 1 {
		t.Errorf("candidates %+v, default destination %v", m.Candidates, m.RTP)
	}
	if st, _ := c.MediaState(); !st.ICE {
		t.Error("MediaState.ICE not set")
	}
	if !reaches(c, decoy) {
		t.Fatal("before any check, RTP does not reach the default destination")
	}

	// A wrong password: 401, no nomination.
	res := exchange(t, checker, cand, check(t, m.ICEUfrag+":"+peerUfrag, "wrongpasswordwrongpassword", true))
	if code := errorCode(res); code != stun.CodeUnauthorized {
		t.Fatalf("wrong password: response %v code %d, want 401", res.Type, code)
	}
	// A wrong remote ufrag: 401 too.
	res = exchange(t, checker, cand, check(t, m.ICEUfrag+":someoneelse", m.ICEPwd, true))
	if code := errorCode(res); code != stun.CodeUnauthorized {
		t.Fatalf("wrong remote ufrag: response %v code %d, want 401", res.Type, code)
	}
	if got := c.Stream().RTP().ActiveDestination(); got != decoyAddr {
		t.Fatalf("a refused check moved the destination to %v", got)
	}
	if !reaches(c, decoy) {
		t.Fatal("after refused checks, RTP no longer reaches the default destination")
	}

	// The right credentials with USE-CANDIDATE.
	res = exchange(t, checker, cand, check(t, m.ICEUfrag+":"+peerUfrag, m.ICEPwd, true))
	if res.Type != stun.BindingSuccess {
		t.Fatalf("check: response %v code %d, want a success", res.Type, errorCode(res))
	}
	if xa, err := xorMapped(res); err != nil || xa != checkAddr {
		t.Errorf("XOR-MAPPED-ADDRESS %v (%v), want %v", xa, err, checkAddr)
	}
	if err := stun.NewShortTermIntegrity(m.ICEPwd).Check(res); err != nil {
		t.Errorf("MESSAGE-INTEGRITY: %v", err)
	}
	if err := stun.Fingerprint.Check(res); err != nil {
		t.Errorf("FINGERPRINT: %v", err)
	}
	if !reaches(c, checker) {
		t.Fatal("after the nomination, RTP does not reach the nominated address")
	}
}

// TestICELiteOfferer: our offer carries ICE-lite; the answerer's checks are
// answered before its answer arrives (any remote ufrag), its nomination then
// survives the answer's default destination, and after the answer only its
// ufrag is accepted.
func TestICELiteOfferer(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p := newPair(t, MediaConfig{ICE: true}, MediaConfig{})
	_, decoyAddr := udpSocket(t)
	checker, checkAddr := udpSocket(t)
	sig := newSinkSig()
	c, err := p.a.Dial(ctx, sig, Params{ID: "ice-2"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Hangup(ctx)
	d := sig.take(t, sig.offer)
	m := d.Media[0]
	if !d.ICELite || m.CheckICE() != nil || !m.ICE() {
		t.Fatalf("offer without ICE-lite: %+v", m)
	}
	cand := hostCandidate(t, m)
	var rtcp int
	for _, c := range m.Candidates {
		if c.Component == sdpx.ComponentRTCP {
			rtcp++
			if c.Addr != m.RTCP {
				t.Errorf("RTCP candidate %v, a=rtcp %v", c.Addr, m.RTCP)
			}
		}
	}
	if rtcp != 1 || len(m.Candidates) != 2 {
		t.Errorf("candidates %+v", m.Candidates)
	}

	// Before the answer: any remote ufrag.
	res := exchange(t, checker, cand, check(t, m.ICEUfrag+":early", m.ICEPwd, true))
	if res.Type != stun.BindingSuccess {
		t.Fatalf("early check: %v code %d", res.Type, errorCode(res))
	}
	if err := c.RemoteAnswer(webrtcSDP(decoyAddr, checkAddr, peerICE)); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.MediaState(); !st.ICE {
		t.Error("MediaState.ICE not set")
	}
	if !reaches(c, checker) {
		t.Fatal("the answer's default destination replaced the nomination")
	}
	res = exchange(t, checker, cand, check(t, m.ICEUfrag+":early", m.ICEPwd, false))
	if code := errorCode(res); code != stun.CodeUnauthorized {
		t.Fatalf("after the answer, a check for another ufrag: %v code %d, want 401", res.Type, code)
	}
	res = exchange(t, checker, cand, check(t, m.ICEUfrag+":"+peerUfrag, m.ICEPwd, false))
	if res.Type != stun.BindingSuccess {
		t.Fatalf("check after the answer: %v code %d", res.Type, errorCode(res))
	}
}

// TestICEMalformed: with ICE on, a=ice-ufrag without a=ice-pwd is refused as
// Malformed (400) in an offer and ends the call in an answer.
func TestICEMalformed(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p := newPair(t, MediaConfig{ICE: true}, MediaConfig{})
	_, addr := udpSocket(t)
	noPwd := webrtcSDP(addr, addr, "a=ice-ufrag:"+peerUfrag+"\r\n")
	_, err := p.a.Incoming(ctx, newSinkSig(), Params{ID: "bad-1"}, noPwd)
	var r Reason
	if !errors.As(err, &r) || r.Kind != Malformed || r.Code != 400 || !errors.Is(err, sdpx.ErrMalformed) {
		t.Errorf("offer without ice-pwd: %v", err)
	}
	short := webrtcSDP(addr, addr, "a=ice-ufrag:"+peerUfrag+"\r\na=ice-pwd:short\r\n")
	if _, err := p.a.Incoming(ctx, newSinkSig(), Params{ID: "bad-2"}, short); !errors.As(err, &r) || r.Kind != Malformed {
		t.Errorf("offer with a short ice-pwd: %v", err)
	}

	sig := newSinkSig()
	c, err := p.a.Dial(ctx, sig, Params{ID: "bad-3"})
	if err != nil {
		t.Fatal(err)
	}
	sig.take(t, sig.offer)
	if err := c.RemoteAnswer(noPwd); !errors.As(err, &r) || r.Kind != Malformed {
		t.Errorf("answer without ice-pwd: %v", err)
	}
	if r := waitDone(t, ctx, c); r.Kind != Malformed {
		t.Errorf("call ended with %v", r)
	}
}

// TestICEOff: with NoICE an answer ignores the offer's ICE attributes (even
// malformed ones), and an agent with ICE answers an offer without ICE
// without it; offers without ICE carry none.
func TestICEOff(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p := newPair(t, MediaConfig{NoICE: true}, MediaConfig{ICE: true})
	_, addr := udpSocket(t)
	for i, tc := range []struct {
		a     *Agent
		offer []byte
	}{
		{p.a, webrtcSDP(addr, addr, "a=ice-ufrag:"+peerUfrag+"\r\n")}, // malformed ICE, but NoICE
		{p.b, webrtcSDP(addr, addr, "")},
	} {
		sig := newSinkSig()
		c, err := tc.a.Incoming(ctx, sig, Params{ID: fmt.Sprint("off-", i)}, tc.offer)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if err := c.Accept(ctx); err != nil {
			t.Fatal(err)
		}
		raw := <-sig.answer
		if strings.Contains(string(raw), "ice") || strings.Contains(string(raw), "candidate") {
			t.Errorf("%d: answer with ICE attributes:\n%s", i, raw)
		}
		if st, _ := c.MediaState(); st.ICE {
			t.Errorf("%d: MediaState.ICE set", i)
		}
		c.Hangup(ctx)
	}
	sig := newSinkSig()
	c, err := p.a.Dial(ctx, sig, Params{ID: "off-offer"})
	if err != nil {
		t.Fatal(err)
	}
	if raw := <-sig.offer; strings.Contains(string(raw), "ice") || strings.Contains(string(raw), "candidate") {
		t.Errorf("offer with ICE attributes:\n%s", raw)
	}
	c.Hangup(ctx)
}

// TestICEBothLite: two ICE-lite agents (no checks on either side) use the
// default destinations (RFC 8445 §6.1.1), plain and with DTLS-SRTP, and an
// ICE restart in a re-offer gives new credentials in the answer.
func TestICEBothLite(t *testing.T) {
	for _, sec := range []sdpx.Security{sdpx.Plain, sdpx.DTLS} {
		t.Run(sec.String(), func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			mc := MediaConfig{ICE: true, Security: sec, RTCPMux: true}
			p := newPair(t, mc, mc)
			var first sdpx.Media // a's initial offer
			p.sa.mangle = func(kind string, b []byte) []byte {
				if d, err := sdpx.Parse(b); err == nil && kind == "offer" {
					first = d.Media[0]
				}
				return b
			}
			ca, cb := p.connect(t, ctx)
			for _, c := range []*Call{ca, cb} {
				if st, _ := c.MediaState(); !st.ICE {
					t.Errorf("%v: MediaState.ICE not set", c.Direction())
				}
			}
			bothWays(t, ca, cb)

			// ICE restart: b re-offers with new credentials (a test stands in
			// for the restarting agent by rewriting b's offer).
			var offered, answered sdpx.Media
			p.sb.mangle = func(kind string, b []byte) []byte {
				if kind == "offer" {
					d, _ := sdpx.Parse(b)
					s := strings.Replace(string(b), d.Media[0].ICEUfrag, "restartUF", 1)
					s = strings.Replace(s, d.Media[0].ICEPwd, "restartpasswordrestartp", 1)
					b = []byte(s)
					d, _ = sdpx.Parse(b)
					offered = d.Media[0]
				}
				return b
			}
			p.sa.mangle = func(kind string, b []byte) []byte {
				if kind == "reanswer" {
					d, _ := sdpx.Parse(b)
					answered = d.Media[0]
				}
				return b
			}
			if err := cb.Renegotiate(ctx, Change{Direction: sdpx.SendRecv}); err != nil {
				t.Fatal(err)
			}
			if offered.ICEUfrag != "restartUF" || !answered.ICE() || answered.CheckICE() != nil {
				t.Fatalf("offered %q, answered %q/%q", offered.ICEUfrag, answered.ICEUfrag, answered.ICEPwd)
			}
			if !first.ICE() || answered.ICEUfrag == first.ICEUfrag || answered.ICEPwd == first.ICEPwd {
				t.Errorf("restart answered with the old credentials %q/%q", answered.ICEUfrag, answered.ICEPwd)
			}
			if st, _ := ca.MediaState(); !st.ICE {
				t.Error("ICE not in use after the restart")
			}
			bothWays(t, ca, cb)
		})
	}
}

// TestFullICE: two full ICE agents (MediaConfig.FullICE) check each other's
// candidates from the SDP, the caller (controlling) nominates, the DTLS
// client starts on the selected pair, and media flows; neither description
// says a=ice-lite.
func TestFullICE(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	mc := MediaConfig{Security: sdpx.DTLS, RTCPMux: true, ICE: true, FullICE: true}
	p := newPair(t, mc, mc)
	var offer, answer []byte
	p.sa.mangle = func(kind string, b []byte) []byte {
		if kind == "offer" {
			offer = append([]byte(nil), b...)
		}
		return b
	}
	p.sb.mangle = func(kind string, b []byte) []byte {
		if kind == "answer" {
			answer = append([]byte(nil), b...)
		}
		return b
	}
	ca, cb := p.connect(t, ctx)
	for _, b := range [][]byte{offer, answer} {
		if strings.Contains(string(b), "ice-lite") || !strings.Contains(string(b), "a=candidate:") {
			t.Fatalf("full ICE description:\n%s", b)
		}
	}
	bothWays(t, ca, cb)
	for _, c := range []*Call{ca, cb} {
		if _, _, ok := c.Stream().RTP().SelectedPair(); !ok {
			t.Errorf("%v call: no selected pair", c.Direction())
		}
	}
	if !ca.Stream().RTP().ICEControlling() || cb.Stream().RTP().ICEControlling() {
		t.Error("the caller is not the controlling agent")
	}
	// Trickled candidates: a bad one is refused, a good one and the end taken.
	if err := ca.RemoteCandidate("candidate:1 1 udp"); !errors.Is(err, sdpx.ErrMalformed) {
		t.Errorf("malformed trickled candidate: %v", err)
	}
	if err := ca.RemoteCandidate("candidate:1 1 UDP 2130706431 127.0.0.1 9 typ host"); err != nil {
		t.Errorf("trickled candidate: %v", err)
	}
	if err := ca.RemoteEndOfCandidates(); err != nil {
		t.Errorf("end of candidates: %v", err)
	}
}
