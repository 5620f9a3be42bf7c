package sipp2p

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/internal/leak"
)

// callee starts an endpoint listening on UDP whose application accepts
// every call; it returns the endpoint and a raw UA aimed at it.
func callee(t testing.TB, ctx context.Context, cfg Config) (*ep, *rawUA, chan *call.Call) {
	t.Helper()
	b := newEP(t, cfg, call.MediaConfig{})
	a, err := b.StartListening(ctx, UDP, netipLoopback0())
	if err != nil {
		t.Fatal(err)
	}
	return b, newRaw(t, a), autoAnswer(ctx, b)
}

func TestForeignTags(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, r, accepted := callee(t, ctx, Config{})
	d, _ := r.establish(ctx, "foreign")
	c := <-accepted
	waitState(t, ctx, c, call.Active)
	before, _ := c.MediaState()

	// A re-INVITE with the right Call-ID but a foreign From tag: 481, and
	// the media stays where it was (RFC 3261 §12.2.2).
	bad := d
	bad.ftag, bad.seq = "intruder", 2
	start := time.Now()
	r.send(r.request("INVITE", bad, r.sdp(41000, ""), ""))
	r.response(sip.INVITE, 2, 481, 5*time.Second)
	t.Logf("time to 481: %v", time.Since(start))
	// A BYE with a foreign To tag: 481.
	bad = d
	bad.ttag, bad.seq = "not-ours", 3
	r.send(r.request("BYE", bad, "", ""))
	r.response(sip.BYE, 3, 481, 5*time.Second)
	if c.State() != call.Active {
		t.Fatalf("call %v after foreign requests", c.State())
	}
	if after, _ := c.MediaState(); after.Remote != before.Remote {
		t.Errorf("media moved to %v", after.Remote)
	}

	// A valid re-INVITE (CSeq 4), then a BYE with a lower CSeq: 500.
	d.seq = 4
	r.send(r.request("INVITE", d, r.sdp(42000, ""), ""))
	r.response(sip.INVITE, 4, 200, 5*time.Second)
	r.send(r.request("ACK", d, "", ""))
	d.seq = 3
	r.send(r.request("BYE", d, "", ""))
	r.response(sip.BYE, 3, 500, 5*time.Second)
	d.seq = 5
	r.send(r.request("BYE", d, "", ""))
	r.response(sip.BYE, 5, 200, 5*time.Second)
	if rs := waitDone(t, ctx, c); rs.Kind != call.RemoteHangup {
		t.Errorf("reason %v", rs)
	}
}

func TestStrictness(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, r, accepted := callee(t, ctx, Config{UserAgent: "strict-test"})
	id := 0
	next := func() dlg {
		id++
		return dlg{callID: fmt.Sprintf("strict-%d@raw", id), ftag: "s" + fmt.Sprint(id), seq: 1}
	}

	// Unknown Require: 420 with Unsupported (RFC 3261 §8.2.2.3).
	r.send(r.request("INVITE", next(), r.sdp(40000, ""), "", "Require: 100rel, foo"))
	res := r.response(sip.INVITE, 1, 420, 5*time.Second)
	if u := res.GetHeaders("Unsupported"); len(u) != 1 || !strings.Contains(u[0].Value(), "foo") || res.Reason != "Bad Extension" {
		t.Errorf("420: %v %q", u, res.Reason)
	}
	// A body that is not SDP: 415 with Accept (§8.2.3).
	r.send(r.request("INVITE", next(), "hello", "text/plain"))
	res = r.response(sip.INVITE, 1, 415, 5*time.Second)
	if a := res.GetHeaders("Accept"); len(a) != 1 || a[0].Value() != "application/sdp" {
		t.Errorf("415 Accept %v", a)
	}
	// A CSeq method that is not the request's: 400.
	msg := r.request("INVITE", next(), r.sdp(40000, ""), "")
	msg = strings.Replace(msg, "CSeq: 1 INVITE", "CSeq: 1 BYE", 1)
	r.send(msg)
	if res := r.response(sip.BYE, 1, 0, 5*time.Second); res.StatusCode != 400 || res.Reason != "Bad Request" {
		t.Errorf("CSeq mismatch: %d %q", res.StatusCode, res.Reason)
	}
	// An INVITE without Contact: 400.
	msg = r.request("INVITE", next(), r.sdp(40000, ""), "")
	msg = msg[:strings.Index(msg, "Contact:")] + msg[strings.Index(msg, "Contact:")+strings.Index(msg[strings.Index(msg, "Contact:"):], "\n")+1:]
	r.send(msg)
	r.response(sip.INVITE, 1, 400, 5*time.Second)
	// A BYE for no dialog: 481.
	d := next()
	d.ttag = "none"
	r.send(r.request("BYE", d, "", ""))
	r.response(sip.BYE, 1, 481, 5*time.Second)
	// A method we do not implement (INFO, which RFC 8840 trickle would
	// use): 405 with an Allow header that does not list it (§8.2.1).
	r.send(r.request("INFO", next(), "", ""))
	res = r.response(sip.INFO, 1, 405, 5*time.Second)
	if a := res.GetHeaders("Allow"); len(a) != 1 || strings.Contains(a[0].Value(), "INFO") || !strings.Contains(a[0].Value(), "INVITE") {
		t.Errorf("405 Allow %v", a)
	}

	// A good call: audio with a T.38 line and a line with an unknown
	// transport; the audio is accepted, the others rejected with port 0 in
	// their places (RFC 3264 §6); our headers are there.
	d = next()
	extra := "m=image 5004 udptl t38\na=T38FaxVersion:0\nm=audio 5006 FOO/BAR 0\n"
	r.send(r.request("INVITE", d, r.sdp(40000, extra), ""))
	res = r.response(sip.INVITE, 1, 200, 10*time.Second)
	body := string(res.Body())
	ms := []string{}
	for l := range strings.SplitSeq(body, "\r\n") {
		if strings.HasPrefix(l, "m=") {
			ms = append(ms, l)
		}
	}
	if len(ms) != 3 || strings.HasPrefix(ms[0], "m=audio 0") || ms[1] != "m=image 0 udptl t38" || ms[2] != "m=audio 0 FOO/BAR 0" {
		t.Errorf("answer m-lines %q", ms)
	}
	for _, h := range []string{"Server", "Allow", "Supported", "Contact"} {
		if len(res.GetHeaders(h)) == 0 {
			t.Errorf("200 without %s", h)
		}
	}
	if s := res.GetHeaders("Server"); len(s) == 1 && s[0].Value() != "strict-test" {
		t.Errorf("Server %q", s[0].Value())
	}
	d.ttag, _ = res.To().Params.Get("tag")
	r.send(r.request("ACK", d, "", ""))
	c := <-accepted
	info, ok := Info(c)
	if !ok || !strings.HasPrefix(info.RequestURI, "sip:ep@") || !strings.Contains(info.From, "raw@") || info.Get("call-id") != d.callID {
		t.Errorf("info %+v", info)
	}
	d.seq = 2
	r.send(r.request("BYE", d, "", ""))
	r.response(sip.BYE, 2, 200, 5*time.Second)
	waitDone(t, ctx, c)
}

// TestLostACK: the ACK of the 200 is lost; the 200 is retransmitted from
// T1 doubling to T2 (RFC 3261 §13.3.1.4) until the ACK comes.
func TestLostACK(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const t1, t2 = 40 * time.Millisecond, 160 * time.Millisecond
	_, r, accepted := callee(t, ctx, Config{T1: t1, T2: t2})
	d := dlg{callID: "lostack@raw", ftag: "la", seq: 1}
	r.send(r.request("INVITE", d, r.sdp(40000, ""), ""))
	var times []time.Duration
	var start time.Time
	for len(times) < 6 {
		res := r.response(sip.INVITE, 1, 200, 5*time.Second)
		if start.IsZero() {
			start = time.Now()
			d.ttag, _ = res.To().Params.Get("tag")
			continue
		}
		times = append(times, time.Since(start))
	}
	t.Logf("2xx retransmissions at %v", times)
	// Expected: T1, 3T1, 7T1, 11T1, 15T1, 19T1 (40 80 160 160 160 ms apart).
	want := []time.Duration{t1, 3 * t1, 7 * t1, 11 * t1, 15 * t1, 19 * t1}
	for i, w := range want {
		if times[i] < w-t1/2 {
			t.Errorf("retransmission %d at %v, before %v", i+1, times[i], w)
		}
	}
	gaps := times[3] - times[2]
	if gaps > 4*t2 {
		t.Errorf("interval %v not capped near T2 %v", gaps, t2)
	}
	r.send(r.request("ACK", d, "", ""))
	c := <-accepted
	// After the ACK the retransmissions stop.
	if m := r.read(4 * t2); m != nil {
		if res, ok := m.(*sip.Response); ok && res.StatusCode == 200 {
			// One may have been in flight when the ACK arrived.
			if m := r.read(4 * t2); m != nil {
				t.Errorf("still retransmitting after ACK: %v", m.String())
			}
		}
	}
	waitState(t, ctx, c, call.Active)
	hctx, hcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	c.Hangup(hctx) // the raw UA does not answer the BYE
	hcancel()
	waitDone(t, ctx, c)
}

// TestNoACK: a 200 that is never acknowledged ends the call with a BYE
// after 64*T1, and Accept returns when its context ends.
func TestNoACK(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const t1 = 20 * time.Millisecond
	b := newEP(t, Config{T1: t1, T2: 80 * time.Millisecond}, call.MediaConfig{})
	a, err := b.StartListening(ctx, UDP, netipLoopback0())
	if err != nil {
		t.Fatal(err)
	}
	r := newRaw(t, a)
	d := dlg{callID: "noack@raw", ftag: "na", seq: 1}
	start := time.Now()
	r.send(r.request("INVITE", d, r.sdp(40000, ""), ""))
	c := <-b.incoming
	actx, acancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = c.Accept(actx)
	acancel()
	if took := time.Since(start); err == nil || took > 3*time.Second {
		t.Errorf("Accept without ACK: %v after %v", err, took)
	}
	// The BYE comes about 64*T1 after the 200.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m := r.read(time.Until(deadline))
		if req, ok := m.(*sip.Request); ok && req.Method == sip.BYE {
			t.Logf("BYE %v after the INVITE (64*T1 = %v)", time.Since(start), 64*t1)
			if time.Since(start) < 64*t1-t1 {
				t.Errorf("BYE too early")
			}
			resp := sip.NewResponseFromRequest(req, 200, "OK", nil)
			r.conn.WriteToUDPAddrPort([]byte(resp.String()), a)
			waitDone(t, ctx, c)
			return
		}
	}
	t.Fatal("no BYE")
}

// TestInviteFlood: 190 INVITEs the application only rings cost at most
// MaxUnanswered calls (and media streams); the rest get 503 with
// Retry-After; Expires ends the admitted ones with 487, and everything is
// released.
func TestInviteFlood(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Unanswered calls are bounded apart from calls: MaxUnanswered applies.
	const maxCalls = 6
	b := newEP(t, Config{MaxCalls: 32, MaxUnanswered: maxCalls, T1: 10 * time.Millisecond}, call.MediaConfig{})
	a, err := b.StartListening(ctx, UDP, netipLoopback0())
	if err != nil {
		t.Fatal(err)
	}
	// The application rings every call and never answers.
	rung := make(chan *call.Call, 200)
	go func() {
		for {
			select {
			case c := <-b.incoming:
				c.Ring(ctx)
				rung <- c
			case <-ctx.Done():
				return
			}
		}
	}()
	g0, f0 := runtime.NumGoroutine(), openFDs()
	r := newRaw(t, a)
	const n = 190
	invites := map[string]string{}
	for i := range n {
		d := dlg{callID: fmt.Sprintf("flood-%03d@raw", i), ftag: fmt.Sprint("f", i), seq: 1}
		invites[d.callID] = r.request("INVITE", d, r.sdp(40000+2*i, ""), "", "Expires: 2")
	}
	peakG, peakF, peakCalls := 0, 0, 0
	final := r.flood(invites, 3*time.Second, func(m sip.Message) {
		peakG, peakF, peakCalls = max(peakG, runtime.NumGoroutine()), max(peakF, openFDs()), max(peakCalls, len(b.agent.Calls()))
		if res, ok := m.(*sip.Response); ok && res.StatusCode == 503 && len(res.GetHeaders("Retry-After")) == 0 {
			t.Error("503 without Retry-After")
		}
	})
	codes := map[int]int{}
	for _, c := range final {
		codes[c]++
	}
	t.Logf("responses %v; peak %d calls at once; goroutines %d before, peak %d; fds %d before, peak %d", codes, peakCalls, g0, peakG, f0, peakF)
	if peakCalls > maxCalls || codes[487] < maxCalls || codes[487]+codes[503] != n {
		t.Errorf("peak %d calls", peakCalls)
		t.Errorf("responses %v", codes)
	}
	for range codes[487] {
		if r := waitDone(t, ctx, <-rung); r.Code != 487 {
			t.Errorf("expired call: %v", r)
		}
	}
	// The agent forgets a call just after its Done closes.
	for len(b.agent.Calls()) != 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("%d calls left", len(b.agent.Calls()))
		case <-time.After(5 * time.Millisecond): // bounded poll of the agent's table
		}
	}
}

// flood sends the INVITEs (Call-ID -> message) and sends again, with the
// same bytes, those without a final response after a quiet spell, as a
// UAC's Timer A would (loopback drops datagrams under such bursts); at most
// three rounds. It returns the first final status per Call-ID and hands
// every message read to seen.
func (r *rawUA) flood(invites map[string]string, quiet time.Duration, seen func(sip.Message)) map[string]int {
	final := map[string]int{}
	for round := 0; round < 3 && len(final) < len(invites); round++ {
		for id, msg := range invites {
			if final[id] == 0 {
				r.send(msg)
			}
		}
		for {
			m := r.read(quiet)
			if m == nil {
				break
			}
			seen(m)
			res, ok := m.(*sip.Response)
			if !ok || res.StatusCode < 200 || res.CallID() == nil || res.CSeq() == nil {
				continue
			}
			if res.StatusCode >= 300 {
				r.ackFailure(res)
			}
			if final[res.CallID().Value()] == 0 {
				final[res.CallID().Value()] = res.StatusCode
			}
			if len(final) == len(invites) {
				return final
			}
		}
	}
	return final
}

// ackFailure acknowledges a final failure response, as the INVITE client
// transaction does (RFC 3261 §17.1.1.3): same Via branch, the response's To.
func (r *rawUA) ackFailure(res *sip.Response) {
	msg := fmt.Sprintf("ACK sip:ep@%s SIP/2.0\nVia: %s\nMax-Forwards: 70\nFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %d ACK\nContent-Length: 0\n\n",
		r.to, res.Via().Value(), res.From().Value(), res.To().Value(), res.CallID().Value(), res.CSeq().SeqNo)
	r.send(msg)
}

func netipLoopback0() netip.AddrPort { return netip.AddrPortFrom(loopback, 0) }

// openFDs counts the process's open file descriptors (sockets included).
func openFDs() int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(es)
}

// TestInviteFloodAccepted: the application accepts every call but the 200s
// are never acknowledged: at most MaxCalls calls hold media, each ends
// after 64*T1 with a BYE, and everything is released.
func TestInviteFloodAccepted(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const maxCalls, t1 = 8, 10 * time.Millisecond
	b := newEP(t, Config{MaxCalls: maxCalls, T1: t1, T2: 40 * time.Millisecond}, call.MediaConfig{})
	a, err := b.StartListening(ctx, UDP, netipLoopback0())
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan call.Reason, 200)
	go func() {
		for {
			select {
			case c := <-b.incoming:
				go func() {
					if err := c.Accept(ctx); err == nil {
						t.Error("Accept without ACK succeeded")
					}
					ended <- waitDone(t, ctx, c)
				}()
			case <-ctx.Done():
				return
			}
		}
	}()
	g0, f0 := runtime.NumGoroutine(), openFDs()
	r := newRaw(t, a)
	const n = 190
	start := time.Now()
	invites := map[string]string{}
	for i := range n {
		d := dlg{callID: fmt.Sprintf("aflood-%03d@raw", i), ftag: fmt.Sprint("a", i), seq: 1}
		invites[d.callID] = r.request("INVITE", d, r.sdp(40000+2*i, ""), "")
	}
	byes, peakG, peakF, peakCalls := 0, 0, 0, 0
	final := r.flood(invites, 2*time.Second, func(m sip.Message) {
		peakG, peakF, peakCalls = max(peakG, runtime.NumGoroutine()), max(peakF, openFDs()), max(peakCalls, len(b.agent.Calls()))
		if req, ok := m.(*sip.Request); ok && req.Method == sip.BYE {
			byes++
		}
	})
	codes := map[int]int{}
	for _, c := range final {
		codes[c]++
	}
	for range codes[200] {
		if r := <-ended; r.Code != 408 {
			t.Errorf("unacknowledged call ended with %v", r)
		}
	}
	// The BYEs went out as the calls ended.
	for m := r.read(time.Second); m != nil; m = r.read(time.Second) {
		if req, ok := m.(*sip.Request); ok && req.Method == sip.BYE {
			byes++
		}
	}
	t.Logf("responses %v, BYEs (with retransmissions) %d, last call ended %v after the flood; peak %d calls at once; goroutines %d before, peak %d; fds %d before, peak %d",
		codes, byes, time.Since(start), peakCalls, g0, peakG, f0, peakF)
	if peakCalls > maxCalls || codes[200] < maxCalls || byes < codes[200] || codes[200]+codes[503] != n {
		t.Errorf("peak %d calls", peakCalls)
		t.Errorf("responses %v, BYEs %d", codes, byes)
	}
}
