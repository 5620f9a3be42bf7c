package call

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/natmode"
	"github.com/reflow-go/reflow/srtp"
)

// MediaConfig is how a call's media stream is made and offered.
type MediaConfig struct {
	// LocalAddr is the IP address the stream binds. Required.
	LocalAddr netip.Addr
	// NAT is the NAT traversal mode and server of the stream's flows.
	NAT natmode.Config
	// RTCPMux multiplexes RTCP on the RTP flow in our offers (a=rtcp-mux);
	// false gives RTCP its own flow, advertised with a=rtcp. As answerer the
	// offer decides: a=rtcp-mux offered is answered with a=rtcp-mux (RFC
	// 5761 §5.1.1; WebRTC peers require it), else RTCP gets its own flow.
	RTCPMux bool
	// Security is what our offers use: sdpx.Plain (RTP/AVP), sdpx.SDES
	// (RTP/SAVP with a=crypto) or sdpx.DTLS (UDP/TLS/RTP/SAVP with
	// a=fingerprint and a=setup:actpass). As answerer the offer decides
	// (see Accept). A stream made for SDES or DTLS never sends or delivers
	// clear media (mediastream.Config.Security).
	Security sdpx.Security
	// SecurityRequired refuses offers and answers without SRTP (SIP 488).
	SecurityRequired bool
	// Accept restricts the protections we accept as answerer, e.g.
	// []sdpx.Security{sdpx.DTLS} for a WebRTC gateway; nil accepts all
	// three (SecurityRequired still refuses plain RTP). An offer with none
	// of them is refused as NotAcceptable (488).
	Accept []sdpx.Security
	// NoICE answers offers that carry ICE (a=ice-ufrag) without it: ICE
	// attributes are then neither written nor looked at. By default an
	// answer follows the offer: ICE when the offer has it, whatever ICE says.
	NoICE bool
	// Suites are the SDES suites we offer and accept, in preference order;
	// nil means AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32.
	Suites []srtp.Suite
	// Codecs are the codecs we offer and accept, in preference order; nil
	// means sdpx.DefaultCodecs (PCMU, PCMA, telephone-event).
	Codecs []sdpx.Codec
	// Latch makes the flows adopt the first source of media (symmetric RTP).
	Latch bool
	// ICE makes our offers those of an ICE-lite agent (RFC 8445 §2.5, SDP
	// per RFC 8839): a=ice-lite, a=ice-ufrag/a=ice-pwd (fresh per call) and
	// a=candidate lines for the stream's host, reflexive and relayed
	// addresses; the stream's flows answer the peer's connectivity checks
	// and take the address it nominates (USE-CANDIDATE) as where media goes.
	// Our answers do the same whenever the offer carries a=ice-ufrag (unless
	// NoICE). A peer description with a=ice-ufrag but no usable a=ice-pwd is
	// refused as Malformed. Off (the default, as SIP peers expect), offers
	// carry no ICE. WebRTC peers need ICE: they send no media before a
	// check succeeds.
	ICE bool
	// FullICE makes a call that uses ICE a full ICE agent (RFC 8445) instead
	// of a lite one: no a=ice-lite; it checks the peer's candidates (from
	// its SDP, and peer-reflexive ones learnt from its checks, so trickle
	// offers without candidates work), is the controlling agent on the calls
	// it places, and keeps ICE consent (RFC 7675) on the selected pair, so a
	// peer that vanishes (a killed browser) ends the call with MediaLost
	// within flow.ConsentTimeout. A full agent also connects faster with
	// peers that pace their own checks slowly.
	FullICE bool
	// Trickle makes a full ICE call (FullICE) trickle its own candidates
	// (RFC 8838, SDP per RFC 8840) when its Signaling implements
	// CandidateSender: the initial offer, and the answer to an offer with
	// a=ice-options:trickle, are sent at once with a=ice-options:trickle
	// and the host candidates, without waiting for the stream's NAT setup
	// (STUN binding, TURN allocation); the server-reflexive and relayed
	// candidates follow through CandidateSender, then the end of
	// candidates. Off, or without a CandidateSender, a description waits
	// for the setup and carries every candidate and a=end-of-candidates.
	// Re-offers always carry every candidate.
	Trickle bool
}

func (m MediaConfig) withDefaults() (MediaConfig, error) {
	if !m.LocalAddr.IsValid() {
		return m, fmt.Errorf("%w: MediaConfig.LocalAddr is required", ErrInvalidConfig)
	}
	if err := m.NAT.Validate(); err != nil {
		return m, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if m.Suites == nil {
		m.Suites = []srtp.Suite{srtp.AESCM128HMACSHA1_80, srtp.AESCM128HMACSHA1_32}
	}
	for _, s := range m.Suites {
		if !s.Valid() {
			return m, fmt.Errorf("%w: SRTP suite %v", ErrInvalidConfig, s)
		}
	}
	for _, s := range m.Accept {
		if s < sdpx.Plain || s > sdpx.DTLS {
			return m, fmt.Errorf("%w: Accept: %v", ErrInvalidConfig, s)
		}
	}
	if m.Codecs == nil {
		m.Codecs = sdpx.DefaultCodecs()
	}
	if len(m.Codecs) == 0 {
		return m, fmt.Errorf("%w: no codecs", ErrInvalidConfig)
	}
	return m, nil
}

// accepts reports whether we answer an offer protected with sec.
func (m MediaConfig) accepts(sec sdpx.Security) bool {
	if sec == sdpx.Plain && m.SecurityRequired {
		return false
	}
	return m.Accept == nil || slices.Contains(m.Accept, sec)
}

// answering returns the configuration of a call that answers plan p: the
// offer decides the protection, rtcp-mux and ICE (the answer follows it).
func (m MediaConfig) answering(p plan) MediaConfig {
	m.Security = p.security
	m.RTCPMux = p.remote.RTCPMux || p.bundled()
	m.ICE = p.remote.ICE() && !m.NoICE
	return m
}

// Config configures an Agent.
type Config struct {
	// Manager makes the calls' media streams. Required; the agent does not close it.
	Manager *flowmanager.Manager
	// Media is the default media configuration of calls.
	Media MediaConfig
	// Handler receives the calls' events; nil ignores them (incoming calls
	// then ring until the peer gives up).
	Handler Handler
	// Logger receives log records; nil discards them.
	Logger *slog.Logger
	// SetupTimeout bounds the media stream's NAT setup; zero means 10 s.
	SetupTimeout time.Duration
	// HangupTimeout bounds the signalling sent when a call ends (BYE,
	// CANCEL, a rejection); zero means 2 s.
	HangupTimeout time.Duration
}

// Params describes one call to the agent.
type Params struct {
	// ID identifies the call; "" makes a random UUID. The SIP binding uses the Call-ID.
	ID string
	// Remote is the peer.
	Remote Party
	// Media overrides the agent's media configuration when not nil.
	Media *MediaConfig
	// DelayedOffer makes Agent.Dial send the call request without an offer
	// (SIP: an INVITE without SDP, RFC 3261 §13.2.1): the binding's
	// SendOffer gets a nil offer, the peer makes the offer in its answer
	// (SIP: the 2xx) and the binding hands it to Call.RemoteOffer, whose
	// answer it sends (SIP: in the ACK). The offer decides the protection
	// and rtcp-mux as for an incoming call; a missing or unacceptable offer
	// ends the call. Incoming ignores it (an incoming call is delayed when
	// its offer is nil).
	DelayedOffer bool
}

// Party names a call's peer.
type Party struct {
	// URI is the peer's address, e.g. "sip:bob@192.0.2.1".
	URI string
	// DisplayName is the peer's display name, or "".
	DisplayName string
}
