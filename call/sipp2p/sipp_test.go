package sipp2p

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
)

// sdesKey is a 30-byte SDES master key and salt for sipp's answers.
const sdesKey = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"

func needSipp(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sipp (Debian sip-tester) is required in CI")
		}
		t.Skip("sipp not installed (Debian package sip-tester): skipping the sipp interop tests")
	}
	return p
}

// freePort returns a loopback port that was free a moment ago for network
// ("udp" or "tcp"): sipp needs a port on its command line.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// sippCmd is one sipp run, bounded by -m 1 and -timeout.
func sippCmd(ctx context.Context, t *testing.T, bin, scenario string, tr Transport, port, mediaPort int, keys map[string]string, extra ...string) *exec.Cmd {
	t.Helper()
	dir := t.TempDir()
	mode := "u1"
	if tr == TCP {
		mode = "t1"
	}
	args := []string{"-sf", filepath.Join("testdata", scenario), "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-mp", strconv.Itoa(mediaPort), "-t", mode, "-m", "1", "-timeout", "20s", "-timeout_error", "-nostdin",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"), "-s", "ep"}
	for k, v := range keys {
		args = append(args, "-key", k, v)
	}
	args = append(args, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = "."
	return cmd
}

func sippKeys(sdes bool) map[string]string {
	if sdes {
		return map[string]string{"profile": "RTP/SAVP", "crypto": sdesKey}
	}
	return map[string]string{"profile": "RTP/AVP", "crypto": "a=ptime:20"}
}

// TestSippUAC: sipp calls the endpoint (UDP and TCP, plain and SDES): an
// INVITE with audio and a T.38 line (port 0 in the answer), a re-INVITE
// putting us on hold, BYE; a call whose ACK sipp holds back for 1.2 s while
// the 200 is retransmitted; one that never sends its ACK and gets our BYE
// after 64*T1; a delayed offer (INVITE without SDP).
func TestSippUAC(t *testing.T) {
	leak.Check(t)
	bin := needSipp(t)
	for _, tc := range []struct {
		name     string
		tr       Transport
		scenario string
		sdes     bool
	}{
		{"udp-reinvite-t38", UDP, "uac_reinvite.xml", false},
		{"tcp-reinvite-t38", TCP, "uac_reinvite.xml", false},
		{"udp-sdes", UDP, "uac_reinvite.xml", true},
		{"tcp-sdes", TCP, "uac_reinvite.xml", true},
		{"udp-late-ack", UDP, "uac_lost_ack.xml", false},
		{"udp-no-ack", UDP, "uac_no_ack.xml", false},
		{"udp-delayed-offer", UDP, "uac_delayed.xml", false},
		{"tcp-delayed-offer", TCP, "uac_delayed.xml", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			media := call.MediaConfig{}
			if tc.sdes {
				media.Security = sdpx.SDES
			}
			t1 := 100 * time.Millisecond
			if tc.scenario == "uac_no_ack.xml" {
				t1 = 30 * time.Millisecond // the BYE comes 64*T1 after the 200
			}
			b := newEP(t, Config{URI: "sip:ep@127.0.0.1", T1: t1}, media)
			bound, err := b.StartListening(ctx, tc.tr, netip.AddrPortFrom(loopback, 0))
			if err != nil {
				t.Fatal(err)
			}
			accepted := autoAnswer(ctx, b)
			var out bytes.Buffer
			start := time.Now()
			for attempt := 0; ; attempt++ {
				cmd := sippCmd(ctx, t, bin, tc.scenario, tc.tr, freePort(t, string(tc.tr)), freePort(t, "udp"), sippKeys(tc.sdes), bound.String())
				out.Reset()
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				if err == nil {
					break
				}
				if !sippBindFailed(err) || attempt == 2 {
					t.Fatalf("sipp: %v\n%s", err, tail(out.String()))
				}
			}
			t.Logf("sipp scenario %s passed in %v", tc.scenario, time.Since(start))
			if tc.scenario == "uac_no_ack.xml" {
				// sipp got the BYE; Accept never succeeded (no ACK).
				return
			}
			select {
			case c := <-accepted:
				waitDone(t, ctx, c)
			case <-ctx.Done():
				t.Fatal("no call")
			}
		})
	}
}

// TestSippUAS: the endpoint calls sipp (UDP and TCP, plain and SDES) and
// hangs up; over TCP sipp sends its 200 a second time after our ACK, and we
// must ACK again (over UDP sipp takes that identical ACK for a
// retransmission: TestLossyUDP covers re-ACK over UDP).
func TestSippUAS(t *testing.T) {
	leak.Check(t)
	bin := needSipp(t)
	for _, tc := range []struct {
		name string
		tr   Transport
		sdes bool
	}{
		{"udp", UDP, false},
		{"tcp-reack", TCP, false},
		{"udp-sdes", UDP, true},
		{"tcp-reack-sdes", TCP, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			media := call.MediaConfig{}
			if tc.sdes {
				media.Security = sdpx.SDES
				media.SecurityRequired = true
			}
			a := newEP(t, Config{URI: "sip:ep@127.0.0.1"}, media)
			a.listen(t, tc.tr)
			scenario := "uas_basic.xml"
			if tc.tr == TCP {
				scenario = "uas_reack.xml"
			}
			var out bytes.Buffer
			var exited chan error
			var c *call.Call
			var err error
		attempts:
			for attempt := 0; attempt < 3; attempt++ {
				port := freePort(t, string(tc.tr))
				keys := sippKeys(tc.sdes)
				keys["contact"] = fmt.Sprintf("sip:sipp@127.0.0.1:%d;transport=%s", port, tc.tr)
				cmd := sippCmd(ctx, t, bin, scenario, tc.tr, port, freePort(t, "udp"), keys)
				out.Reset()
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				exited = make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				target := fmt.Sprintf("sip:sipp@127.0.0.1:%d;transport=%s", port, tc.tr)
				for range 50 { // sipp takes a moment to bind; bounded retries
					cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
					c, err = a.Call(cctx, target, nil)
					ccancel()
					if err == nil {
						break attempts
					}
					select {
					case err := <-exited:
						if sippBindFailed(err) {
							continue attempts // its port was taken again: new ports
						}
						t.Fatalf("sipp ended: %v\n%s", err, tail(out.String()))
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			waitState(t, ctx, c, call.Active)
			if st, _ := c.MediaState(); tc.sdes && st.Security != sdpx.SDES {
				t.Errorf("security %v", st.Security)
			}
			// sipp's second 200 comes right after our ACK: hang up once it
			// was acknowledged again.
			d := c.Signaling().(*dialog)
			for tc.tr == TCP && d.reacks.Load() == 0 {
				select {
				case err := <-exited:
					t.Fatalf("sipp ended before the re-ACK: %v\n%s", err, tail(out.String()))
				case <-ctx.Done():
					t.Fatal("no re-ACK")
				case <-time.After(5 * time.Millisecond): // bounded poll of the dialog's counter
				}
			}
			if err := c.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("sipp: %v\n%s", err, tail(out.String()))
				}
			case <-ctx.Done():
				t.Fatalf("sipp did not finish\n%s", tail(out.String()))
			}
		})
	}
}

// sippBindFailed reports sipp's exit status for a socket it could not bind
// (254): a port freePort found was taken again before sipp started.
func sippBindFailed(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == 254
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}
