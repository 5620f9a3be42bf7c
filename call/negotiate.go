package call

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/srtp"
)

// MediaState is what a completed offer/answer exchange put in force.
type MediaState struct {
	// Local and LocalRTCP are our advertised RTP and RTCP addresses
	// (LocalRTCP is zero with rtcp-mux).
	Local, LocalRTCP netip.AddrPort
	// Remote and RemoteRTCP are where our RTP and RTCP go. Remote's address
	// is unspecified when the peer put us on hold the RFC 2543 way (c=0.0.0.0).
	Remote, RemoteRTCP netip.AddrPort
	// RTCPMux is set when RTCP shares the RTP flow.
	RTCPMux bool
	// Codecs are the negotiated codecs, with the payload types of the offer.
	Codecs []sdpx.Codec
	// Direction is our negotiated direction: sendonly means we hold the
	// peer, recvonly that the peer holds us, inactive both.
	Direction sdpx.Direction
	// Security is the negotiated protection.
	Security sdpx.Security
	// Suite is the SDES suite (Security == sdpx.SDES).
	Suite srtp.Suite
	// DTLSRole is our DTLS role (Security == sdpx.DTLS).
	DTLSRole dtlssrtp.Role
	// RemoteFingerprints are the pinned peer fingerprints (Security == sdpx.DTLS).
	RemoteFingerprints []dtlssrtp.Fingerprint
	// ICE is set when ICE is in use (MediaConfig.ICE and the peer's
	// description carried ICE credentials): the stream answers the peer's
	// connectivity checks, and the address it nominates replaces Remote as
	// where media goes.
	ICE bool
	// Renegotiated is false for the exchange that set the call up.
	Renegotiated bool
}

// plan is the result of checking a remote description against our configuration.
type plan struct {
	index    int // m-line in the remote description
	remote   sdpx.Media
	codecs   []sdpx.Codec
	security sdpx.Security
	peerKeys srtp.Keys // SDES: the peer's key
	tag      int       // SDES: the tag of the chosen crypto line
	setup    dtlssrtp.Setup
	role     dtlssrtp.Role
	ice      iceCredentials // ours, when ICE is in use for this exchange
}

// iceCredentials are our a=ice-ufrag and a=ice-pwd.
type iceCredentials struct{ ufrag, pwd string }

// malformedICE checks the ICE attributes of remote media m when ICE is on.
func malformedICE(cfg MediaConfig, m sdpx.Media) error {
	if !cfg.ICE {
		return nil
	}
	if err := m.CheckICE(); err != nil {
		return Reason{Kind: Malformed, Code: 400, Text: "ICE attributes", Err: err}
	}
	return nil
}

// reject builds the Reason for an unacceptable description.
func reject(text string) Reason { return Reason{Kind: NotAcceptable, Code: 488, Text: text} }

// planOffer picks the m-line of a remote offer we answer and what we answer
// with. prev is the association in force (nil for an initial offer).
func planOffer(d *sdpx.Description, cfg MediaConfig, prev *negotiated) (plan, error) {
	why := "no audio stream offered"
	for i, m := range d.Media {
		if m.Type != "audio" || m.Port == 0 || !m.RTPProto {
			continue
		}
		if err := malformedICE(cfg, m); err != nil {
			return plan{}, err
		}
		p := plan{index: i, remote: m, security: m.Security}
		if p.codecs = sdpx.Intersect(m.Codecs, cfg.Codecs); p.codecs == nil {
			why = "no common codec"
			continue
		}
		switch m.Security {
		case sdpx.Plain:
			if cfg.SecurityRequired {
				why = "secure media required but not offered"
				continue
			}
		case sdpx.SDES:
			idx := slices.IndexFunc(m.Crypto, func(c srtp.Crypto) bool { return slices.Contains(cfg.Suites, c.Keys.Suite) })
			if idx < 0 {
				why = "no acceptable SRTP crypto suite offered"
				continue
			}
			p.tag, p.peerKeys = m.Crypto[idx].Tag, m.Crypto[idx].Keys
		case sdpx.DTLS:
			if len(m.Fingerprints) == 0 {
				why = "DTLS-SRTP offered without a=fingerprint"
				continue
			}
			offered := m.Setup
			if offered == 0 {
				offered = dtlssrtp.SetupActive // RFC 4145 §4: absent means active
			}
			if offered == dtlssrtp.SetupHoldconn {
				why = "a=setup:holdconn"
				continue
			}
			p.setup, _ = offered.Answer()
			if prev != nil && prev.state.Security == sdpx.DTLS && !newAssociation(prev, m) && offered == dtlssrtp.SetupActpass {
				// Keep the role of the association in force (JSEP §5.3.2).
				p.setup = dtlssrtp.SetupPassive
				if prev.state.DTLSRole == dtlssrtp.Client {
					p.setup = dtlssrtp.SetupActive
				}
			}
			var err error
			if p.role, err = dtlssrtp.RoleFor(p.setup, offered); err != nil {
				why = err.Error()
				continue
			}
		}
		return p, nil
	}
	return plan{}, reject(why)
}

// planAnswer checks a remote answer to our offer line (at index 0).
func planAnswer(d *sdpx.Description, cfg MediaConfig, offered sdpx.Line) (plan, error) {
	if len(d.Media) != 1 {
		return plan{}, reject(fmt.Sprintf("answer has %d m-lines, offer had 1", len(d.Media)))
	}
	m := d.Media[0]
	if m.Port == 0 {
		return plan{}, reject("media stream rejected by the peer")
	}
	if !m.RTPProto || m.Security != offered.Security {
		return plan{}, reject("answer changed the transport protocol to " + m.Proto)
	}
	if err := malformedICE(cfg, m); err != nil {
		return plan{}, err
	}
	p := plan{remote: m, security: m.Security}
	for _, c := range m.Codecs {
		if slices.ContainsFunc(offered.Codecs, func(o sdpx.Codec) bool { return o.PT == c.PT && o.Same(c) }) {
			p.codecs = append(p.codecs, c)
		}
	}
	if !slices.ContainsFunc(p.codecs, func(c sdpx.Codec) bool { return !strings.EqualFold(c.Name, sdpx.TelephoneEvent.Name) }) {
		return plan{}, reject("no common codec in the answer")
	}
	switch m.Security {
	case sdpx.SDES:
		if len(m.Crypto) != 1 {
			return plan{}, reject(fmt.Sprintf("answer has %d usable a=crypto lines, want 1", len(m.Crypto)))
		}
		c := m.Crypto[0]
		ok := slices.ContainsFunc(offered.Crypto, func(o srtp.Crypto) bool { return o.Tag == c.Tag && o.Keys.Suite == c.Keys.Suite })
		if !ok {
			return plan{}, reject("answer's a=crypto matches no offered tag and suite")
		}
		p.tag, p.peerKeys = c.Tag, c.Keys
	case sdpx.DTLS:
		if len(m.Fingerprints) == 0 {
			return plan{}, reject("answer without a=fingerprint")
		}
		if m.Setup != dtlssrtp.SetupActive && m.Setup != dtlssrtp.SetupPassive {
			return plan{}, reject("answer's a=setup must be active or passive")
		}
		var err error
		if p.role, err = dtlssrtp.RoleFor(offered.Setup, m.Setup); err != nil {
			return plan{}, reject(err.Error())
		}
		p.setup = offered.Setup
	}
	return p, nil
}

// newAssociation reports whether DTLS must start afresh for remote media m:
// a new fingerprint or a new transport address (RFC 5763 §6.7.1, JSEP §5.3.2).
func newAssociation(prev *negotiated, m sdpx.Media) bool {
	if prev == nil || prev.state.Security != sdpx.DTLS {
		return true
	}
	if prev.state.Remote != m.RTP {
		return true
	}
	if len(prev.state.RemoteFingerprints) != len(m.Fingerprints) {
		return true
	}
	for i, f := range m.Fingerprints {
		if !f.Equal(prev.state.RemoteFingerprints[i]) {
			return true
		}
	}
	return false
}

// negotiated is the offer/answer state in force.
type negotiated struct {
	media  *Media
	line   sdpx.Line // our last sent line (offer or answer)
	remote sdpx.Media
	ours   srtp.Keys // SDES: our key in force
	peer   srtp.Keys // SDES: the peer's key in force
	state  MediaState
}

// apply puts plan p into force on md: destinations, SDES keys, DTLS pin and
// role. prev is the state in force before (nil at call setup); ours is our
// SDES key for the chosen suite.
func apply(md *Media, p plan, ours srtp.Keys, dir sdpx.Direction, prev *negotiated) (MediaState, error) {
	s := md.Stream()
	rtp, rtcp := md.Tuples()
	st := MediaState{
		Local: rtp.Addr, LocalRTCP: rtcp.Addr, Remote: p.remote.RTP, RemoteRTCP: p.remote.RTCP,
		RTCPMux: !rtcp.IsValid(), Codecs: p.codecs, Direction: dir, Security: p.security,
		Renegotiated: prev != nil, ICE: p.ice.ufrag != "",
	}
	if err := md.setICE(p.ice, p.remote.ICEUfrag); err != nil {
		return st, err
	}
	// With ICE the peer's nomination (USE-CANDIDATE) decides where media
	// goes (RFC 8445 §8.1.1); the default destination of c=/m= is only used
	// until it has. A destination nominated before this description arrived
	// (the peer checks as soon as it has our offer) is kept, and so is one of
	// an earlier ICE exchange on this stream unless the peer restarted ICE
	// or changed its default destination (it moved).
	iceKeeps := st.ICE && (prev == nil || prev.media != md ||
		prev.state.ICE && prev.remote.ICEUfrag == p.remote.ICEUfrag && prev.remote.RTP == p.remote.RTP && prev.remote.RTCP == p.remote.RTCP)
	setDst := func(f *flow.Flow, dst netip.AddrPort) error {
		if st.ICE && (dst.Addr().IsUnspecified() || iceKeeps && f.ActiveDestination().IsValid()) {
			return nil
		}
		return f.SetActiveDestination(dst)
	}
	if p.remote.RTP.Addr().IsUnspecified() && !st.ICE {
		st.Direction = sdpx.Combine(dir, sdpx.Inactive)
	} else {
		// With ICE, c=0.0.0.0 means no default candidate (JSEP), not hold.
		if err := setDst(s.RTP(), p.remote.RTP); err != nil {
			return st, err
		}
		if f := s.RTCP(); f != nil {
			dst := p.remote.RTCP
			if !dst.IsValid() {
				dst = p.remote.RTP
			}
			if err := setDst(f, dst); err != nil {
				return st, err
			}
		}
	}
	sameMedia := prev != nil && prev.media == md
	switch p.security {
	case sdpx.SDES:
		st.Suite = p.peerKeys.Suite
		if !sameMedia || prev.state.Security != sdpx.SDES || !prev.ours.Equal(ours) {
			if err := s.SetOutboundSRTP(ours); err != nil {
				return st, err
			}
		}
		if !sameMedia || prev.state.Security != sdpx.SDES || !prev.peer.Equal(p.peerKeys) {
			if err := s.SetInboundSRTP(p.peerKeys); err != nil {
				return st, err
			}
		}
	case sdpx.DTLS:
		st.DTLSRole, st.RemoteFingerprints = p.role, p.remote.Fingerprints
		if !sameMedia || newAssociation(prev, p.remote) || prev.state.DTLSRole != p.role {
			if err := s.SetRemoteFingerprint(p.remote.Fingerprints...); err != nil {
				return st, err
			}
			if err := s.StartDTLS(p.role); err != nil {
				return st, err
			}
		} else {
			st.DTLSRole = prev.state.DTLSRole
		}
	}
	return st, nil
}
