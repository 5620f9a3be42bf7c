package sipp2p

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
)

// TestDelayedOfferCall: endpoint to endpoint, the caller's INVITE has no
// SDP (CallOptions.DelayedOffer); the callee's core offers in the 200 and
// the caller answers in the ACK, with DTLS-SRTP and SDES, over UDP, TCP
// and TLS, each endpoint calling the other; RTP flows both ways.
func TestDelayedOfferCall(t *testing.T) {
	leak.Check(t)
	ca := newCA(t)
	for _, tc := range []struct {
		name string
		tr   Transport
		sec  sdpx.Security
	}{
		{"udp-dtls", UDP, sdpx.DTLS},
		{"udp-sdes", UDP, sdpx.SDES},
		{"tcp-dtls", TCP, sdpx.DTLS},
		{"tcp-sdes", TCP, sdpx.SDES},
		{"tls-dtls", TLS, sdpx.DTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			media := call.MediaConfig{Security: tc.sec, SecurityRequired: true, RTCPMux: tc.sec == sdpx.DTLS}
			var tlsA, tlsB *TLSConfig
			if tc.tr == TLS {
				tlsA = &TLSConfig{Certificate: ca.leaf(t, loopback, time.Now().Add(time.Hour)), RootCAs: ca.pool}
				tlsB = &TLSConfig{Certificate: ca.leaf(t, loopback, time.Now().Add(time.Hour)), RootCAs: ca.pool}
			}
			a := newEP(t, Config{URI: "sip:alice@example.test", TLS: tlsA}, media)
			b := newEP(t, Config{URI: "sip:bob@example.test", TLS: tlsB}, media)
			targetA := a.listen(t, tc.tr)
			targetB := b.listen(t, tc.tr)
			for _, dir := range []struct {
				name           string
				caller, callee *ep
				target         string
			}{{"a-calls-b", a, b, targetB}, {"b-calls-a", b, a, targetA}} {
				c, err := dir.caller.CallWith(ctx, dir.target, CallOptions{DelayedOffer: true})
				if err != nil {
					t.Fatalf("%s: call: %v", dir.name, err)
				}
				cb := dir.callee.answer(t, ctx)
				waitState(t, ctx, c, call.Active)
				for _, x := range []*call.Call{c, cb} {
					st, ok := x.MediaState()
					if !ok || st.Security != tc.sec {
						t.Errorf("%s: %v media %+v", dir.name, x.Direction(), st)
					}
					if tc.sec == sdpx.DTLS && st.DTLSRole.String() == "" {
						t.Errorf("%s: no DTLS role", dir.name)
					}
				}
				bothWays(t, c, cb)
				if err := cb.Hangup(ctx); err != nil {
					t.Fatal(err)
				}
				if r := waitDone(t, ctx, c); r.Kind != call.RemoteHangup {
					t.Errorf("%s: caller reason %v", dir.name, r)
				}
			}
		})
	}
}

// TestDelayedOfferUACRaw: our INVITE without SDP against a raw UAS. An
// offer in the 200 is answered in the ACK; a 200 without an offer, or with
// one we refuse, is acknowledged (with every offered line rejected) and
// followed by a BYE, and the call ends with a reason that says why (RFC
// 3261 §13.2.2.4).
func TestDelayedOfferUACRaw(t *testing.T) {
	leak.Check(t)
	for _, tc := range []struct {
		name  string
		media call.MediaConfig
		offer string // in the 200
		ok    bool
		text  string // in the reason
	}{
		{"offer", call.MediaConfig{}, answerSDP(43000, "sendrecv"), true, ""},
		{"no-offer", call.MediaConfig{}, "", false, "no offer"},
		{"refused-offer", call.MediaConfig{Security: sdpx.SDES, SecurityRequired: true}, answerSDP(43000, "sendrecv"), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			uas := newSock(t)
			more := answerBYEs(t) // registered before the endpoint: stops after its Close
			a := newEP(t, Config{}, tc.media)
			a.listen(t, UDP)
			placed := make(chan *call.Call, 1)
			go func() {
				c, err := a.CallWith(ctx, "sip:raw@"+uas.addr().String(), CallOptions{DelayedOffer: true})
				if err != nil {
					t.Error(err)
				}
				placed <- c
			}()
			inv, from := uas.request(sip.INVITE)
			if len(inv.Body()) != 0 || inv.GetHeader("Content-Type") != nil {
				t.Errorf("delayed-offer INVITE with a body:\n%s", inv)
			}
			uas.reply(inv, from, 100, "")
			c := <-placed
			if c == nil {
				t.FailNow()
			}
			uas.reply(inv, from, 200, tc.offer, &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: int(uas.addr().Port())}})
			ack, _ := uas.request(sip.ACK)
			body := string(ack.Body())
			if tc.ok {
				d, err := sdpx.Parse(ack.Body())
				if err != nil || len(d.Media) != 1 || d.Media[0].Port == 0 {
					t.Fatalf("answer in the ACK: %v\n%s", err, body)
				}
				waitState(t, ctx, c, call.Active)
				if st, _ := c.MediaState(); st.Remote.Port() != 43000 {
					t.Errorf("media in force %+v", st)
				}
				go c.Hangup(ctx)
			} else {
				switch {
				case tc.offer == "" && body != "":
					t.Errorf("ACK to a 200 without offer has a body:\n%s", body)
				case tc.offer != "" && !strings.Contains(body, "m=audio 0 RTP/AVP"):
					t.Errorf("ACK does not reject the offered line:\n%s", body)
				}
			}
			bye, bfrom := uas.request(sip.BYE)
			if bye.CSeq().SeqNo <= inv.CSeq().SeqNo {
				t.Errorf("BYE CSeq %d after INVITE %d", bye.CSeq().SeqNo, inv.CSeq().SeqNo)
			}
			uas.c.WriteToUDPAddrPort([]byte(sip.NewResponseFromRequest(bye, 200, "OK", nil).String()), bfrom)
			more(uas.c)
			r := waitDone(t, ctx, c)
			if tc.ok {
				if r.Kind != call.LocalHangup {
					t.Errorf("reason %+v", r)
				}
				return
			}
			if r.Kind != call.NotAcceptable || r.Code != 488 || !strings.Contains(r.Text, tc.text) {
				t.Errorf("reason %+v", r)
			}
		})
	}
}

// TestDelayedOfferUASNoAnswer: our DTLS offer in the 200 to an INVITE
// without SDP gets an ACK without an answer: Accept fails, the call ends
// Malformed, and a BYE is sent after the ACK.
func TestDelayedOfferUASNoAnswer(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	more := answerBYEs(t)
	b := newEP(t, Config{}, call.MediaConfig{Security: sdpx.DTLS, RTCPMux: true})
	a, err := b.StartListening(ctx, UDP, netipLoopback0())
	if err != nil {
		t.Fatal(err)
	}
	r := newRaw(t, a)
	d := dlg{callID: "delayed-noanswer@raw", ftag: "dl", seq: 1}
	r.send(r.request("INVITE", d, "", ""))
	var c *call.Call
	select {
	case c = <-b.incoming:
	case <-ctx.Done():
		t.Fatal("no incoming call")
	}
	acceptErr := make(chan error, 1)
	go func() { acceptErr <- c.Accept(ctx) }()
	res := r.response(sip.INVITE, 1, 200, 10*time.Second)
	offer, err := sdpx.Parse(res.Body())
	if err != nil || len(offer.Media) != 1 || offer.Media[0].Security != sdpx.DTLS || !strings.Contains(string(res.Body()), "a=setup:actpass") {
		t.Fatalf("DTLS offer in the 200: %v\n%s", err, res.Body())
	}
	d.ttag, _ = res.To().Params.Get("tag")
	r.send(r.request("ACK", d, "", ""))
	var bye *sip.Request
	for deadline := time.Now().Add(10 * time.Second); bye == nil && time.Now().Before(deadline); {
		if m, ok := r.read(time.Until(deadline)).(*sip.Request); ok && m.Method == sip.BYE {
			bye = m
		}
	}
	if bye == nil {
		t.Fatal("no BYE after an ACK without an answer")
	}
	r.conn.WriteToUDPAddrPort([]byte(sip.NewResponseFromRequest(bye, 200, "OK", nil).String()), a)
	more(r.conn)
	if err := <-acceptErr; err == nil {
		t.Error("accept succeeded without an answer")
	}
	if reason := waitDone(t, ctx, c); reason.Kind != call.Malformed {
		t.Errorf("reason %+v", reason)
	}
}

// answerBYEs returns a function that answers 200 to every BYE arriving on a
// raw socket from then on, until the test's cleanup (register it before
// the endpoints', so that it runs after their Close), as a UAS answers the
// retransmissions of a request (RFC 3261 §17.2.2).
func answerBYEs(t *testing.T) func(*net.UDPConn) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	return func(conn *net.UDPConn) {
		wg.Go(func() {
			buf := make([]byte, 65535)
			for range 2000 { // 2000 reads of at most 50 ms
				select {
				case <-stop:
					return
				default:
				}
				conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				n, from, err := conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					continue
				}
				if m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...)); err == nil {
					if req, ok := m.(*sip.Request); ok && req.Method == sip.BYE {
						conn.WriteToUDPAddrPort([]byte(sip.NewResponseFromRequest(req, 200, "OK", nil).String()), from)
					}
				}
			}
		})
	}
}
