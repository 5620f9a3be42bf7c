package webterminal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/flow"
)

// CoreMedia returns a MediaFunc that runs every webterminal call's offer/answer
// and media on the call core: each call is a call.Call of agent, with a real
// media stream (NAT mode, security and codecs from the agent's MediaConfig),
// the same core the SIP binding uses. The terminal keeps the signalling (who
// sends what on the stream); the core makes and applies the SDP.
//
// The SDP the core writes is completed with a=candidate lines (RFC 8839) for
// the RTP flow's host tuple and its reflexive or relayed tuple, so that it
// carries our candidates, fingerprint and setup as the API asks.
func CoreMedia(agent *call.Agent) MediaFunc {
	return func(_ context.Context, c *Call) (Media, error) {
		if agent == nil {
			return nil, fmt.Errorf("%w: nil call.Agent", ErrInvalidConfig)
		}
		return &coreMedia{agent: agent, id: c.ID(), peer: c.Peer(), sig: &bridge{
			offer: make(chan []byte, 1), answer: make(chan []byte, 1)}}, nil
	}
}

// coreMedia is the Media of one call on the call core.
type coreMedia struct {
	agent    *call.Agent
	id, peer string
	sig      *bridge
	mu       sync.Mutex
	cc       *call.Call
}

// CallOf returns the call core's call behind a call made with CoreMedia (for
// its media stream: CallOf(c).Stream()), or nil.
func CallOf(c *Call) *call.Call {
	if m, ok := c.Media().(*coreMedia); ok {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.cc
	}
	return nil
}

func (m *coreMedia) params() call.Params {
	return call.Params{ID: m.id, Remote: call.Party{URI: "tel:" + m.peer}}
}

func (m *coreMedia) set(cc *call.Call) {
	m.mu.Lock()
	m.cc = cc
	m.mu.Unlock()
}

func (m *coreMedia) get() *call.Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cc
}

// Offer places a core call whose offer the bridge catches.
func (m *coreMedia) Offer(ctx context.Context) (string, error) {
	if m.get() != nil {
		return "", errors.New("webterminal: terminal-initiated re-offers are not part of the API")
	}
	cc, err := m.agent.Dial(ctx, m.sig, m.params())
	if cc != nil {
		m.set(cc)
	}
	if err != nil {
		return "", err
	}
	return m.sig.take(ctx, m.sig.offer, cc)
}

// SetAnswer hands the remote answer to the core call.
func (m *coreMedia) SetAnswer(_ context.Context, answer string) error {
	cc := m.get()
	if cc == nil {
		return errors.New("webterminal: answer without an offer")
	}
	return cc.RemoteAnswer([]byte(answer))
}

// Answer takes the first offer (Incoming + Accept) or a re-offer.
func (m *coreMedia) Answer(ctx context.Context, offer string) (string, error) {
	if cc := m.get(); cc != nil {
		ans, err := cc.RemoteOffer(ctx, []byte(offer))
		if err != nil {
			return "", err
		}
		return withCandidates(string(ans), cc), nil
	}
	cc, err := m.agent.Incoming(ctx, m.sig, m.params(), []byte(offer))
	if err != nil {
		return "", err
	}
	m.set(cc)
	if err := cc.Accept(ctx); err != nil {
		return "", err
	}
	return m.sig.take(ctx, m.sig.answer, cc)
}

// Close ends the core call; the bridge swallows the core's Bye, the terminal
// sends its own.
func (m *coreMedia) Close() error {
	cc := m.get()
	if cc == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return cc.Hangup(ctx)
}

// bridge is the call.Signaling of a core call: it hands the SDP the core
// sends to the terminal, which does the real signalling.
type bridge struct {
	offer, answer chan []byte
}

func (b *bridge) take(ctx context.Context, ch chan []byte, cc *call.Call) (string, error) {
	select {
	case sdp := <-ch:
		return withCandidates(string(sdp), cc), nil
	case <-cc.Done():
		return "", cc.Reason()
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func put(ch chan []byte, b []byte) {
	select {
	case <-ch: // keep the latest
	default:
	}
	ch <- b
}

// SendOffer implements call.Signaling.
func (b *bridge) SendOffer(_ context.Context, offer []byte) error { put(b.offer, offer); return nil }

// SendRinging implements call.Signaling; the terminal sends Ringing itself.
func (b *bridge) SendRinging(context.Context) error { return nil }

// SendAnswer implements call.Signaling.
func (b *bridge) SendAnswer(_ context.Context, answer []byte) error {
	put(b.answer, answer)
	return nil
}

// SendReject implements call.Signaling; the terminal sends Bye itself.
func (b *bridge) SendReject(context.Context, call.Reason) error { return nil }

// SendHangup implements call.Signaling; the terminal sends Bye itself.
func (b *bridge) SendHangup(context.Context, call.Reason) error { return nil }

// withCandidates appends a=candidate lines for the RTP flow's tuples to the
// SDP's (last, audio) media section.
func withCandidates(sdp string, cc *call.Call) string {
	s := cc.Stream()
	if s == nil || strings.Contains(sdp, "a=candidate:") {
		return sdp
	}
	f := s.RTP()
	var b strings.Builder
	b.WriteString(sdp)
	if !strings.HasSuffix(sdp, "\n") {
		b.WriteString("\r\n")
	}
	host := f.LocalTuple()
	if host.IsValid() {
		fmt.Fprintf(&b, "a=candidate:1 1 udp 2130706431 %s %d typ host\r\n", host.Addr.Addr(), host.Addr.Port())
	}
	for i, x := range []struct {
		t   flow.Tuple
		typ string
		pri int
	}{{f.ReflexiveTuple(), "srflx", 1694498815}, {f.RelayTuple(), "relay", 16777215}} {
		if x.t.IsValid() {
			fmt.Fprintf(&b, "a=candidate:%d 1 udp %d %s %d typ %s raddr %s rport %d\r\n", i+2, x.pri,
				x.t.Addr.Addr(), x.t.Addr.Port(), x.typ, host.Addr.Addr(), host.Addr.Port())
		}
	}
	return b.String()
}
