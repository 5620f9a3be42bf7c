package mediastream

import (
	"crypto/rand"
	"encoding/binary"
	"errors"

	"github.com/reflow-go/reflow/flow"
)

// ICE (RFC 8445) at the stream level: one agent per flow (component 1 on
// the RTP flow, component 2 on the RTCP flow when RTCP is not multiplexed),
// sharing one role and one tie-breaker. See flow.Flow.StartICE.

// ICEHandler is implemented by a Handler that wants to know when a flow's
// ICE agent selected a candidate pair (flow.EventICESelected): local and
// remote are the pair, whose remote address is now the flow's active
// destination. It is called again after an ICE restart selects a new pair.
// Consent loss (flow.ErrConsentLost) and ICE failure (flow.ErrICEFailed)
// arrive through OnError.
type ICEHandler interface {
	OnICESelected(s *Stream, f *flow.Flow, local, remote flow.Candidate)
}

// StartICE starts ICE on every flow of the stream with our credentials
// (and the peer's, when known), or restarts it with new local credentials
// (RFC 8445 §9: media keeps flowing on the selected pair, DTLS and SRTP are
// not touched). All flows share cfg's role and tie-breaker (a random one
// when zero). Then add the peer's candidates with AddRemoteCandidate and
// advertise LocalCandidates.
func (s *Stream) StartICE(cfg flow.ICEConfig) error {
	if s.closing.Load() {
		return ErrClosed
	}
	if cfg.TieBreaker == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		cfg.TieBreaker = binary.BigEndian.Uint64(b[:]) | 1
	}
	for _, f := range s.flows {
		if err := f.StartICE(cfg); err != nil {
			return err
		}
	}
	return nil
}

// SetRemoteICECredentials sets the peer's a=ice-ufrag and a=ice-pwd on every
// flow (from the answer); new values are the peer's ICE restart.
func (s *Stream) SetRemoteICECredentials(ufrag, pwd string) error {
	if s.closing.Load() {
		return ErrClosed
	}
	for _, f := range s.flows {
		if err := f.SetRemoteICECredentials(ufrag, pwd); err != nil {
			return err
		}
	}
	return nil
}

// AddRemoteCandidate gives a candidate of the peer (from its SDP, or
// trickled, RFC 8838) to the flow of its component: 1 to the RTP flow, 2 to
// the RTCP flow. Component 2 candidates are ignored when RTCP is
// multiplexed on the RTP flow (there is no second component then).
func (s *Stream) AddRemoteCandidate(c flow.Candidate) error {
	if s.closing.Load() {
		return ErrClosed
	}
	switch {
	case c.Component == int(flow.RTP):
		return s.rtp.AddRemoteCandidate(c)
	case c.Component == int(flow.RTCP) && s.rtcp != nil:
		return s.rtcp.AddRemoteCandidate(c)
	case c.Component == int(flow.RTCP):
		return nil
	}
	return flow.ErrInvalidCandidate
}

// EndOfRemoteCandidates records a=end-of-candidates (RFC 8838) on every flow.
func (s *Stream) EndOfRemoteCandidates() error {
	if s.closing.Load() {
		return ErrClosed
	}
	var errs []error
	for _, f := range s.flows {
		errs = append(errs, f.EndOfRemoteCandidates())
	}
	return errors.Join(errs...)
}

// LocalCandidates returns the candidates of every flow of the stream, RTP's
// first; call it after OnReady for the server-reflexive and relayed ones.
func (s *Stream) LocalCandidates() []flow.Candidate {
	var out []flow.Candidate
	for _, f := range s.flows {
		out = append(out, f.LocalCandidates()...)
	}
	return out
}

// iceSelected delivers flow.EventICESelected to an ICEHandler; the stream's
// flow event dispatch calls it.
func (s *Stream) iceSelected(ev flow.Event) {
	// A new selected pair ends an ICE failure (consent lost, ICE failed):
	// an ICE restart recovered the path.
	s.mu.Lock()
	if s.failed != nil && (errors.Is(s.failed, flow.ErrConsentLost) || errors.Is(s.failed, flow.ErrICEFailed)) {
		s.failed = nil
		s.failCh = make(chan struct{})
	}
	s.mu.Unlock()
	ih, ok := s.h.(ICEHandler)
	if !ok {
		return
	}
	local, remote, ok := ev.Flow.SelectedPair()
	if !ok {
		return
	}
	s.post(func() { ih.OnICESelected(s, ev.Flow, local, remote) })
}
