package webterminal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/reflow-go/reflow/call"
)

// CoreMedia returns a MediaFunc that runs every webterminal call's offer/answer
// and media on the call core: each call is a call.Call of agent, with a real
// media stream (NAT mode, security and codecs from the agent's MediaConfig),
// the same core the SIP binding uses. The terminal keeps the signalling (who
// sends what on the stream); the core makes and applies the SDP.
//
// The calls run with the agent's MediaConfig, ICE on (call.MediaConfig.ICE) and
// rtcp-mux (WebRTC requires it), whatever the agent's defaults: the terminal is the WebRTC side, so its SDP
// says a=ice-lite and carries a=ice-ufrag/a=ice-pwd and our candidates
// (RFC 8839), and the streams answer the core's connectivity checks and
// follow its nomination; WebRTC cores send no media before a check succeeds.
func CoreMedia(agent *call.Agent) MediaFunc {
	return func(_ context.Context, c *Call) (Media, error) {
		if agent == nil {
			return nil, fmt.Errorf("%w: nil call.Agent", ErrInvalidConfig)
		}
		return &coreMedia{agent: agent, id: c.ID(), peer: c.Peer(), sig: &bridge{
			call: c, offer: make(chan []byte, 1), answer: make(chan []byte, 1)}}, nil
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
	mc := m.agent.MediaConfig()
	mc.ICE = true
	mc.RTCPMux = true // WebRTC requires rtcp-mux (RFC 8829 §5.1.3, rtcpMuxPolicy "require")
	// The terminal's Handler owns the call: the agent does not announce it.
	return call.Params{ID: m.id, Remote: call.Party{URI: "tel:" + m.peer}, Media: &mc, Unannounced: true}
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
		return string(ans), nil
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

// Close ends the core call as a local hangup.
func (m *coreMedia) Close() error { return m.closeFor(ErrLocalHangup) }

// closeFor ends the core call for the terminal call's end reason, so that
// the core records who ended it: a Bye from the other side is a remote
// hangup, a rejection a refusal, a lost stream a signalling failure; our own
// hangup (or Close) a local one. The core's hangup comes back through the
// bridge, which the ended terminal call ignores.
func (m *coreMedia) closeFor(reason error) error {
	cc := m.get()
	if cc == nil {
		return nil
	}
	switch {
	case errors.Is(reason, ErrRejected):
		cc.RemoteReject(call.Reason{Kind: call.Declined, Text: "Bye before Answer", Err: reason})
		cc.RemoteHangup(call.Reason{Kind: call.Declined, Err: reason}) // an established call cannot be rejected
	case errors.Is(reason, ErrRemoteHangup), errors.Is(reason, ErrTransferred):
		cc.RemoteHangup(call.Reason{Kind: call.RemoteHangup, Err: reason})
	case errors.Is(reason, ErrStreamLost):
		cc.RemoteHangup(call.Reason{Kind: call.SignalingFailed, Text: "registration stream lost", Err: reason})
	default:
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return cc.Hangup(ctx)
	}
	<-cc.Done()
	return nil
}

// remoteRinging reports the callee's Ringing to the core call.
func (m *coreMedia) remoteRinging() {
	if cc := m.get(); cc != nil {
		cc.RemoteRinging()
	}
}

// bridge is the call.Signaling of a core call: it hands the SDP the core
// sends to the terminal, which does the real signalling, and turns the
// core's own hangups (its media failed or was lost, its agent closed) into
// the end of the terminal call, with Bye.
type bridge struct {
	call          *Call // the terminal call
	offer, answer chan []byte
}

func (b *bridge) take(ctx context.Context, ch chan []byte, cc *call.Call) (string, error) {
	select {
	case sdp := <-ch:
		return string(sdp), nil
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

// SendReject implements call.Signaling: the core refused the call itself.
func (b *bridge) SendReject(_ context.Context, r call.Reason) error {
	b.coreEnded(r)
	return nil
}

// SendHangup implements call.Signaling: the core ended the call itself.
func (b *bridge) SendHangup(_ context.Context, r call.Reason) error {
	b.coreEnded(r)
	return nil
}

// coreEnded ends the terminal call (Bye) when the core ended the call on
// its own; a terminal call that already ended (it asked the core to end)
// ignores it. It runs on its own goroutine: ending the terminal call
// closes its media, which waits for the core call to finish ending.
func (b *bridge) coreEnded(r call.Reason) {
	if b.call == nil || b.call.t == nil || b.call.State() == Ended { // t nil: not a terminal's call
		return
	}
	go b.call.end(fmt.Errorf("%w: %w", ErrMedia, r), true)
}
