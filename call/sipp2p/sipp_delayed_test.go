package sipp2p

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
)

// TestSippUASDelayedOffer: the endpoint calls sipp with an INVITE without
// SDP (CallOptions.DelayedOffer) over UDP and TCP; sipp checks the INVITE
// has no body, offers in its 200 (plain RTP or SDES) and checks the answer
// in our ACK, then takes our BYE. A 200 without an offer gets an ACK
// without a body and a BYE, and the call ends NotAcceptable.
func TestSippUASDelayedOffer(t *testing.T) {
	leak.Check(t)
	bin := needSipp(t)
	for _, tc := range []struct {
		name     string
		tr       Transport
		scenario string
		sdes     bool
	}{
		{"udp", UDP, "uas_delayed.xml", false},
		{"tcp", TCP, "uas_delayed.xml", false},
		{"udp-sdes", UDP, "uas_delayed.xml", true},
		{"tcp-sdes", TCP, "uas_delayed.xml", true},
		{"udp-200-without-sdp", UDP, "uas_delayed_nosdp.xml", false},
		{"tcp-200-without-sdp", TCP, "uas_delayed_nosdp.xml", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			a := newEP(t, Config{URI: "sip:ep@127.0.0.1"}, call.MediaConfig{})
			a.listen(t, tc.tr)
			var out bytes.Buffer
			var exited chan error
			var c *call.Call
			var err error
		attempts:
			for attempt := 0; attempt < 3; attempt++ {
				port := freePort(t, string(tc.tr))
				keys := sippKeys(tc.sdes)
				keys["contact"] = fmt.Sprintf("sip:sipp@127.0.0.1:%d;transport=%s", port, tc.tr)
				cmd := sippCmd(ctx, t, bin, tc.scenario, tc.tr, port, freePort(t, "udp"), keys)
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
					c, err = a.CallWith(cctx, target, CallOptions{DelayedOffer: true})
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
			if tc.scenario == "uas_delayed_nosdp.xml" {
				r := waitDone(t, ctx, c)
				if r.Kind != call.NotAcceptable || r.Code != 488 || !strings.Contains(r.Text, "no offer") {
					t.Errorf("reason %+v", r)
				}
			} else {
				waitState(t, ctx, c, call.Active)
				want := sdpx.Plain
				if tc.sdes {
					want = sdpx.SDES
				}
				if st, _ := c.MediaState(); st.Security != want || st.Remote.Port() == 0 {
					t.Errorf("media %+v", st)
				}
				if err := c.Hangup(ctx); err != nil {
					t.Fatal(err)
				}
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
