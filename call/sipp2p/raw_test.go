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
)

// rawUA speaks SIP over UDP by hand, to send what a well-behaved library
// would not: foreign tags, old CSeqs, unknown extensions, lost ACKs.
type rawUA struct {
	t    testing.TB
	conn *net.UDPConn
	to   netip.AddrPort
	seq  int
}

func newRaw(t testing.TB, to netip.AddrPort) *rawUA {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadBuffer(4 << 20) // floods: keep what the endpoint answers
	return &rawUA{t: t, conn: c, to: to, seq: 100}
}

func (r *rawUA) addr() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (r *rawUA) send(msg string) {
	r.t.Helper()
	msg = strings.ReplaceAll(msg, "\n", "\r\n")
	if _, err := r.conn.WriteToUDPAddrPort([]byte(msg), r.to); err != nil {
		r.t.Fatal(err)
	}
}

// read returns the next SIP message within d, or nil.
func (r *rawUA) read(d time.Duration) sip.Message {
	r.t.Helper()
	buf := make([]byte, 65535)
	deadline := time.Now().Add(d)
	for {
		r.conn.SetReadDeadline(deadline)
		n, _, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err == nil {
			return m
		}
	}
}

// response waits for a final response (or one with code) to the request
// with method and CSeq seq, skipping anything else; it fails the test after d.
func (r *rawUA) response(method sip.RequestMethod, seq uint32, code int, d time.Duration) *sip.Response {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m := r.read(time.Until(deadline))
		res, ok := m.(*sip.Response)
		if !ok || res.CSeq() == nil || res.CSeq().MethodName != method || res.CSeq().SeqNo != seq {
			continue
		}
		if res.StatusCode == code || code == 0 && res.StatusCode >= 200 {
			return res
		}
		if res.StatusCode >= 200 && code != 0 {
			r.t.Fatalf("%s %d: got %d %s, want %d", method, seq, res.StatusCode, res.Reason, code)
		}
	}
	r.t.Fatalf("%s %d: no response %d within %v", method, seq, code, d)
	return nil
}

// dlg is the raw side of a dialog.
type dlg struct {
	callID, ftag, ttag string
	seq                uint32
}

func (r *rawUA) sdp(port int, extra string) string {
	return fmt.Sprintf("v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio %d RTP/AVP 0\na=rtpmap:0 PCMU/8000\n%s", port, extra)
}

// request formats a request of the raw UA; body is SDP unless ctype says otherwise.
func (r *rawUA) request(method string, d dlg, body, ctype string, extra ...string) string {
	r.seq++
	to := "<sip:ep@" + r.to.String() + ">"
	if d.ttag != "" {
		to += ";tag=" + d.ttag
	}
	h := []string{
		fmt.Sprintf("%s sip:ep@%s SIP/2.0", method, r.to),
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK-%d-%s", r.addr(), r.seq, d.callID[:4]),
		"Max-Forwards: 70",
		fmt.Sprintf("From: <sip:raw@%s>;tag=%s", r.addr(), d.ftag),
		"To: " + to,
		"Call-ID: " + d.callID,
		fmt.Sprintf("CSeq: %d %s", d.seq, method),
		fmt.Sprintf("Contact: <sip:raw@%s>", r.addr()),
	}
	h = append(h, extra...)
	if body != "" {
		if ctype == "" {
			ctype = "application/sdp"
		}
		h = append(h, "Content-Type: "+ctype)
	}
	body = strings.ReplaceAll(body, "\n", "\r\n")
	h = append(h, fmt.Sprintf("Content-Length: %d", len(body)))
	return strings.Join(h, "\n") + "\n\n" + strings.ReplaceAll(body, "\r\n", "\n")
}

// autoAnswer accepts every incoming call of e until ctx ends.
func autoAnswer(ctx context.Context, e *ep) chan *call.Call {
	accepted := make(chan *call.Call, 64)
	go func() {
		for {
			select {
			case c := <-e.incoming:
				go func() {
					if c.Accept(ctx) == nil {
						accepted <- c
					}
				}()
			case <-ctx.Done():
				return
			}
		}
	}()
	return accepted
}

// establish runs INVITE/200/ACK from the raw UA and returns the dialog.
func (r *rawUA) establish(ctx context.Context, id string) (dlg, *sip.Response) {
	r.t.Helper()
	d := dlg{callID: id + "@raw", ftag: "raw-" + id, seq: 1}
	r.send(r.request("INVITE", d, r.sdp(40000, ""), ""))
	res := r.response(sip.INVITE, 1, 200, 10*time.Second)
	d.ttag, _ = res.To().Params.Get("tag")
	r.send(r.request("ACK", d, "", ""))
	return d, res
}
