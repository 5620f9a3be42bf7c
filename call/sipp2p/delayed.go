package sipp2p

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/srtp"
)

// An INVITE without a body asks us to make the offer, in the 200, and
// brings the answer in the ACK (RFC 3261 §13.2.1, §13.3.1; RFC 3264 §5).
// The call core answers offers only, so the endpoint hands it a stand-in
// offer built from the agent's own media configuration (our codecs and
// SDES suites, RTP to the discard port of loopback): the core's answer to
// it is exactly what we offer. The peer's answer, from the ACK, is then put
// in force as a re-offer (Call.RemoteOffer), whose own answer is not sent.
// Until the ACK arrives no media reaches the peer. DTLS-SRTP and ICE need
// roles and credentials a stand-in cannot carry: with those the INVITE is
// refused 488.

// errNoDelayedOffer refuses a delayed offer the stand-in cannot make.
var errNoDelayedOffer = errors.New("sipp2p: no delayed offer with DTLS-SRTP or ICE")

// standInOffer is the offer the core answers for an INVITE without one.
func standInOffer(m call.MediaConfig) ([]byte, error) {
	if m.Security == sdpx.DTLS || m.ICE {
		return nil, errNoDelayedOffer
	}
	proto := "RTP/AVP"
	if m.Security == sdpx.SDES {
		proto = "RTP/SAVP"
	}
	addr := "127.0.0.1"
	ip := "IP4"
	if m.LocalAddr.Is6() && !m.LocalAddr.Is4In6() {
		addr, ip = "::1", "IP6"
	}
	var pts []string
	var attrs []string
	for _, c := range m.Codecs {
		pts = append(pts, fmt.Sprint(c.PT))
		rm := fmt.Sprintf("a=rtpmap:%d %s/%d", c.PT, c.Name, c.Rate)
		if c.Channels > 1 {
			rm += fmt.Sprintf("/%d", c.Channels)
		}
		attrs = append(attrs, rm)
		if c.Fmtp != "" {
			attrs = append(attrs, fmt.Sprintf("a=fmtp:%d %s", c.PT, c.Fmtp))
		}
	}
	if len(pts) == 0 {
		return nil, errNoDelayedOffer
	}
	if m.Security == sdpx.SDES {
		for i, s := range m.Suites {
			k, err := srtp.GenerateKeys(s)
			if err != nil {
				return nil, err
			}
			attrs = append(attrs, srtp.Crypto{Tag: i + 1, Keys: k}.String())
		}
	}
	if m.RTCPMux {
		attrs = append(attrs, "a=rtcp-mux")
	}
	attrs = append(attrs, "a=sendrecv")
	lines := []string{"v=0", "o=- 0 0 IN " + ip + " " + addr, "s=-", "c=IN " + ip + " " + addr, "t=0 0",
		"m=audio 9 " + proto + " " + strings.Join(pts, " ")}
	lines = append(lines, attrs...)
	return []byte(strings.Join(lines, "\r\n") + "\r\n"), nil
}

// applyDelayedAnswer puts the peer's answer from the ACK in force. A
// missing or unusable answer ends the dialog with a BYE (RFC 3261 §13.3.1.4
// leaves no other way out once the 2xx is acknowledged).
func (d *dialog) applyDelayedAnswer(ctx context.Context, body []byte) error {
	c := d.callRef()
	if c == nil {
		return call.ErrClosed
	}
	var err error
	if len(body) == 0 {
		err = call.Reason{Kind: call.NotAcceptable, Code: 488, Text: "no answer in the ACK"}
	} else {
		filtered, _ := filterOffer(body)
		_, err = c.RemoteOffer(ctx, filtered)
	}
	if err != nil {
		d.byeAsync()
	}
	return err
}
