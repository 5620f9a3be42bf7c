package sipp2p

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
)

// sock is a raw UDP socket of a test peer.
type sock struct {
	t *testing.T
	c *net.UDPConn
}

func newSock(t *testing.T) *sock {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netipLoopback0()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &sock{t: t, c: c}
}

func (s *sock) addr() netip.AddrPort { return s.c.LocalAddr().(*net.UDPAddr).AddrPort() }

// request waits for a request with method (skipping the rest).
func (s *sock) request(method sip.RequestMethod) (*sip.Request, netip.AddrPort) {
	s.t.Helper()
	buf := make([]byte, 65535)
	s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, from, err := s.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			s.t.Fatalf("no %s at %v: %v", method, s.addr(), err)
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if req, ok := m.(*sip.Request); err == nil && ok && req.Method == method {
			return req, from
		}
	}
}

func (s *sock) reply(req *sip.Request, to netip.AddrPort, code int, body string, hdrs ...sip.Header) {
	s.t.Helper()
	res := sip.NewResponseFromRequest(req, code, phrase(code), nil)
	if tt := res.To(); tt != nil {
		tt.Params.Add("tag", "uas-tag")
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if body != "" {
		ct := sip.ContentTypeHeader("application/sdp")
		res.AppendHeader(&ct)
		res.SetBody([]byte(strings.ReplaceAll(body, "\n", "\r\n")))
	}
	if _, err := s.c.WriteToUDPAddrPort([]byte(res.String()), to); err != nil {
		s.t.Fatal(err)
	}
}

func answerSDP(port int, dir string) string {
	return "v=0\no=- 2 2 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio " + itoa(uint16(port)) + " RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=" + dir + "\n"
}

func routeOf(req *sip.Request) string {
	if r := req.Route(); r != nil {
		return r.Address.HostPort()
	}
	return ""
}

// TestRouteSetAndTargetUAC: our INVITE is answered with a 200 that has a
// Record-Route and no Contact: no crash, the ACK and later requests follow
// the route set with the Request-URI as target; a 200 to our re-INVITE with
// a Contact refreshes the target (RFC 3261 §12.1.2, §12.2.1.1, §12.2.1.2).
func TestRouteSetAndTargetUAC(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := newEP(t, Config{}, call.MediaConfig{})
	a.listen(t, UDP)
	uas, route, moved := newSock(t), newSock(t), newSock(t)
	rr := &sip.RecordRouteHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: int(route.addr().Port()), UriParams: sip.HeaderParams{{K: "lr", V: ""}}}}

	target := "sip:raw@" + uas.addr().String()
	type result struct {
		c   *call.Call
		err error
	}
	placed := make(chan result, 1)
	go func() { c, err := a.Call(ctx, target, nil); placed <- result{c, err} }()
	inv, from := uas.request(sip.INVITE)
	for _, h := range []string{"User-Agent", "Allow", "Supported", "Contact", "Max-Forwards"} {
		if len(inv.GetHeaders(h)) == 0 {
			t.Errorf("INVITE without %s", h)
		}
	}
	if ua := inv.GetHeaders("User-Agent"); len(ua) == 1 && ua[0].Value() != "reflow-go" {
		t.Errorf("User-Agent %q", ua[0].Value())
	}
	uas.reply(inv, from, 200, answerSDP(40000, "sendrecv"), rr) // no Contact
	res := <-placed
	if res.err != nil {
		t.Fatal(res.err)
	}
	c := res.c
	ack, _ := route.request(sip.ACK)
	if ack.Recipient.HostPort() != uas.addr().String() || routeOf(ack) != route.addr().String() {
		t.Errorf("ACK to %v via %q", ack.Recipient.String(), routeOf(ack))
	}
	waitState(t, ctx, c, call.Active)

	// A re-INVITE follows the route set; its 200 moves the target.
	done := make(chan error, 1)
	go func() { done <- c.Renegotiate(ctx, call.Change{Direction: sdpx.SendOnly}) }()
	re, from := route.request(sip.INVITE)
	if re.Recipient.HostPort() != uas.addr().String() || routeOf(re) != route.addr().String() {
		t.Errorf("re-INVITE to %v via %q", re.Recipient.String(), routeOf(re))
	}
	if tag, _ := re.To().Params.Get("tag"); tag != "uas-tag" {
		t.Errorf("re-INVITE To tag %q", tag)
	}
	ct := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "raw", Host: "127.0.0.1", Port: int(moved.addr().Port())}}
	route.reply(re, from, 200, answerSDP(40000, "recvonly"), ct)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ack, _ = route.request(sip.ACK)
	if ack.Recipient.HostPort() != moved.addr().String() {
		t.Errorf("ACK of the re-INVITE to %v, want the new target %v", ack.Recipient.String(), moved.addr())
	}
	go c.Hangup(ctx)
	bye, from := route.request(sip.BYE)
	if bye.Recipient.HostPort() != moved.addr().String() || routeOf(bye) != route.addr().String() {
		t.Errorf("BYE to %v via %q", bye.Recipient.String(), routeOf(bye))
	}
	route.reply(bye, from, 200, "")
	waitDone(t, ctx, c)
}

// TestTargetRefreshUAS: a re-INVITE with a new Contact moves the remote
// target: our BYE goes there (RFC 3261 §12.2.2).
func TestTargetRefreshUAS(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, r, accepted := callee(t, ctx, Config{})
	d, _ := r.establish(ctx, "refresh")
	c := <-accepted
	waitState(t, ctx, c, call.Active)
	moved := newSock(t)
	d.seq = 2
	msg := r.request("INVITE", d, r.sdp(41000, ""), "")
	msg = strings.Replace(msg, "Contact: <sip:raw@"+r.addr().String()+">", "Contact: <sip:raw@"+moved.addr().String()+">", 1)
	r.send(msg)
	r.response(sip.INVITE, 2, 200, 5*time.Second)
	r.send(r.request("ACK", d, "", ""))
	go c.Hangup(ctx)
	bye, _ := moved.request(sip.BYE)
	if bye.Recipient.HostPort() != moved.addr().String() {
		t.Errorf("BYE to %v", bye.Recipient.String())
	}
	// The response goes to the BYE's Via (our listener) from the raw UA's socket.
	res := sip.NewResponseFromRequest(bye, 200, "OK", nil)
	via := bye.Via()
	dst, _ := netip.ParseAddrPort(via.Host + ":" + itoa(uint16(via.Port)))
	r.conn.WriteToUDPAddrPort([]byte(res.String()), dst)
	waitDone(t, ctx, c)
}

// TestDelayedOfferUAS: an INVITE without SDP gets our offer in the 200 and
// the peer's answer in the ACK is put in force (RFC 3261 §13.2.1, RFC 3264).
func TestDelayedOfferUAS(t *testing.T) {
	leak.Check(t)
	for _, sec := range []sdpx.Security{sdpx.Plain, sdpx.SDES} {
		t.Run(sec.String(), func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			b := newEP(t, Config{}, call.MediaConfig{Security: sec})
			a, err := b.StartListening(ctx, UDP, netipLoopback0())
			if err != nil {
				t.Fatal(err)
			}
			accepted := autoAnswer(ctx, b)
			r := newRaw(t, a)
			d := dlg{callID: "delayed-" + sec.String() + "@raw", ftag: "dl", seq: 1}
			r.send(r.request("INVITE", d, "", ""))
			res := r.response(sip.INVITE, 1, 200, 10*time.Second)
			offer, err := sdpx.Parse(res.Body())
			if err != nil || len(offer.Media) != 1 || offer.Media[0].Port == 0 || offer.Media[0].RTP.Port() == 9 {
				t.Fatalf("offer in the 200: %v\n%s", err, res.Body())
			}
			if offer.Media[0].Security != sec || sec == sdpx.SDES && len(offer.Media[0].Crypto) == 0 {
				t.Fatalf("offer security %v crypto %d", offer.Media[0].Security, len(offer.Media[0].Crypto))
			}
			d.ttag, _ = res.To().Params.Get("tag")
			answer := r.sdp(43000, "")
			if sec == sdpx.SDES {
				answer = strings.Replace(answer, "RTP/AVP", "RTP/SAVP", 1) + fmt.Sprintf("a=crypto:%d %s inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\n",
					offer.Media[0].Crypto[0].Tag, offer.Media[0].Crypto[0].Keys.Suite)
			}
			r.send(r.request("ACK", d, answer, ""))
			c := <-accepted
			waitState(t, ctx, c, call.Active)
			st, _ := c.MediaState()
			if st.Remote.Port() != 43000 || st.Security != sec {
				t.Errorf("media in force: %+v", st)
			}
			d.seq = 2
			r.send(r.request("BYE", d, "", ""))
			r.response(sip.BYE, 2, 200, 5*time.Second)
			waitDone(t, ctx, c)
		})
	}
}

// TestBrokenResponses: responses to our INVITE without To or with foreign
// tags do not crash the endpoint; a 486 still ends the call Busy.
func TestBrokenResponses(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := newEP(t, Config{}, call.MediaConfig{})
	a.listen(t, UDP)
	uas := newSock(t)
	placed := make(chan *call.Call, 1)
	go func() {
		c, err := a.Call(ctx, "sip:raw@"+uas.addr().String(), nil)
		if err != nil {
			t.Error(err)
		}
		placed <- c
	}()
	inv, from := uas.request(sip.INVITE)
	via := inv.Via().Value()
	for _, raw := range []string{
		// No To, no From.
		"SIP/2.0 180 Ringing\r\nVia: " + via + "\r\nCall-ID: " + inv.CallID().Value() + "\r\nCSeq: " + inv.CSeq().Value() + "\r\nContent-Length: 0\r\n\r\n",
		// No CSeq.
		"SIP/2.0 183 Session Progress\r\nVia: " + via + "\r\nTo: <sip:raw@x>;tag=t\r\nFrom: " + inv.From().Value() + "\r\nCall-ID: " + inv.CallID().Value() + "\r\nContent-Length: 0\r\n\r\n",
		// A 200 retransmission-looking response for a dialog that does not exist.
		"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-none\r\nTo: <sip:raw@x>;tag=zz\r\nFrom: <sip:ep@x>;tag=nope\r\nCall-ID: none\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
	} {
		uas.c.WriteToUDPAddrPort([]byte(raw), from)
	}
	uas.reply(inv, from, 486, "")
	c := <-placed
	if c == nil {
		return
	}
	if r := waitDone(t, ctx, c); r.Kind != call.Busy {
		t.Errorf("reason %v", r)
	}
}

// TestEmptyReinvite: a re-INVITE without SDP gets our offer in the 200 and
// the answer in the ACK is put in force (RFC 3261 §14.2).
func TestEmptyReinvite(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, r, accepted := callee(t, ctx, Config{})
	d, _ := r.establish(ctx, "empty-re")
	c := <-accepted
	waitState(t, ctx, c, call.Active)
	d.seq = 2
	r.send(r.request("INVITE", d, "", ""))
	res := r.response(sip.INVITE, 2, 200, 10*time.Second)
	offer, err := sdpx.Parse(res.Body())
	if err != nil || len(offer.Media) != 1 || offer.Media[0].Port == 0 || offer.Media[0].Direction != sdpx.SendRecv {
		t.Fatalf("offer in the 200: %v\n%s", err, res.Body())
	}
	r.send(r.request("ACK", d, r.sdp(44000, ""), ""))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, _ := c.MediaState(); st.Remote.Port() == 44000 {
			break
		}
		if time.Now().After(deadline) {
			st, _ := c.MediaState()
			t.Fatalf("answer from the ACK not in force: %+v", st)
		}
		select {
		case <-c.Done():
			t.Fatalf("call ended: %v", c.Reason())
		case <-time.After(5 * time.Millisecond): // bounded poll of the call's media state
		}
	}
	// Once more; the peer answers with hold (a=sendonly).
	d.seq = 3
	r.send(r.request("INVITE", d, "", ""))
	res = r.response(sip.INVITE, 3, 200, 10*time.Second)
	if offer, err := sdpx.Parse(res.Body()); err != nil || len(offer.Media) != 1 || offer.Media[0].Direction != sdpx.SendRecv {
		t.Errorf("second offer: %v\n%s", err, res.Body())
	}
	r.send(r.request("ACK", d, r.sdp(44000, "a=sendonly\n"), ""))
	d.seq = 4
	r.send(r.request("BYE", d, "", ""))
	r.response(sip.BYE, 4, 200, 5*time.Second)
	waitDone(t, ctx, c)
}
