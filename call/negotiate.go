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
	// Mid is the a=mid of the call's m= line ("" when the peer uses none).
	Mid string
	// Bundled are the peer's other audio m= lines accepted in the same
	// BUNDLE group (RFC 9143): their RTP arrives on the call's stream too,
	// told apart by SSRC and payload type.
	Bundled []Bundled
}

// Bundled is an m= line carried on the call's transport by BUNDLE.
type Bundled struct {
	// Mid is its a=mid.
	Mid string
	// Codecs are its negotiated codecs, with the offer's payload types.
	Codecs []sdpx.Codec
	// Direction is our negotiated direction on it.
	Direction sdpx.Direction
	// SSRCs are the peer's a=ssrc ids on it, if it lists any.
	SSRCs []uint32
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
	lite     bool           // the peer is an ICE-lite agent (a=ice-lite)
	// controlling: our full ICE agent is the controlling one (we placed the call).
	controlling bool
	group       []string    // the offer's BUNDLE group of remote, if any
	extra       []extraLine // the group's other accepted lines
}

// extraLine is another m= line of the offer's BUNDLE group that we accept
// on the same transport.
type extraLine struct {
	index  int
	remote sdpx.Media
	codecs []sdpx.Codec
}

// bundled reports whether the plan's line is in a BUNDLE group (which
// implies rtcp-mux, RFC 9143 §9.1).
func (p plan) bundled() bool { return p.group != nil && p.remote.Mid != "" }

// iceCredentials are our a=ice-ufrag and a=ice-pwd.
type iceCredentials struct{ ufrag, pwd string }

// malformedICE checks the ICE attributes of remote media m when ICE is in use.
func malformedICE(use bool, m sdpx.Media) error {
	if !use {
		return nil
	}
	if err := m.CheckICE(); err != nil {
		return Reason{Kind: Malformed, Code: 400, Text: "ICE attributes", Err: err}
	}
	return nil
}

// reject builds the Reason for an unacceptable description.
func reject(text string) Reason { return Reason{Kind: NotAcceptable, Code: 488, Text: text} }

// usableAudio reports whether m is an audio RTP line that is not disabled.
func usableAudio(m sdpx.Media) bool {
	return m.Type == "audio" && m.Port != 0 && m.RTPProto
}

// planOffer picks the m-line of a remote offer we answer and what we answer
// with. prev is the association in force (nil for an initial offer): the
// line with its mid is answered again. Other audio lines of the same
// BUNDLE group are accepted on the same transport (RFC 9143); any other
// line is rejected.
func planOffer(d *sdpx.Description, cfg MediaConfig, prev *negotiated) (plan, error) {
	why := "no audio stream offered"
	order := make([]int, 0, len(d.Media))
	for i, m := range d.Media {
		if prev != nil && prev.remote.Mid != "" && m.Mid == prev.remote.Mid {
			order = append([]int{i}, order...)
		} else {
			order = append(order, i)
		}
	}
	useICE := !cfg.NoICE && (prev == nil || prev.state.ICE)
	for _, i := range order {
		m := d.Media[i]
		if !usableAudio(m) {
			continue
		}
		if err := malformedICE(useICE, m); err != nil {
			return plan{}, err
		}
		p := plan{index: i, remote: m, security: m.Security, lite: d.ICELite}
		if p.codecs = sdpx.Intersect(m.Codecs, cfg.Codecs); p.codecs == nil {
			why = "no common codec"
			continue
		}
		if !cfg.accepts(m.Security) {
			why = "secure media required but not offered"
			if m.Security != sdpx.Plain {
				why = m.Security.String() + " media not accepted"
			}
			continue
		}
		if prev != nil && prev.state.Security != sdpx.Plain && m.Security != prev.state.Security {
			// A stream made for SRTP never carries clear media, and one
			// keying method does not turn into the other on it.
			why = "the media protection cannot change from " + prev.state.Security.String() + " to " + m.Security.String()
			continue
		}
		switch m.Security {
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
		if g := d.Bundle(m.Mid); g != nil {
			p.group = g
			for j, o := range d.Media {
				if j == i || o.Type != "audio" || !o.RTPProto || o.Port == 0 && !o.BundleOnly ||
					o.Security != m.Security || !slices.Contains(g, o.Mid) {
					continue
				}
				if codecs := sdpx.Intersect(o.Codecs, cfg.Codecs); codecs != nil {
					p.extra = append(p.extra, extraLine{index: j, remote: o, codecs: codecs})
				}
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
	if err := malformedICE(cfg.ICE, m); err != nil {
		return plan{}, err
	}
	p := plan{remote: m, security: m.Security, lite: d.ICELite}
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

// newAssociation reports whether DTLS must start afresh for remote media m
// on the stream in force: only when the peer's fingerprint changed, or when
// both descriptions carry a=tls-id and it changed (RFC 8842 §5). A new
// address or ICE ufrag (an ICE restart, a peer moving) keeps the
// association and its keys (RFC 8842 §4, RFC 8445 §9).
func newAssociation(prev *negotiated, m sdpx.Media) bool {
	if prev == nil || prev.state.Security != sdpx.DTLS {
		return true
	}
	if prev.remote.TLSID != "" && m.TLSID != "" && prev.remote.TLSID != m.TLSID {
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

// apply puts plan p into force on md. The order is the secure one: ICE
// credentials, then the keys (SDES keys, or the DTLS pin), then the
// destinations, then DTLS, so that nothing is sent or accepted in clear and
// no destination is used before the keys that protect it are in place. prev
// is the state in force before (nil at call setup); ours is our SDES key for
// the chosen suite.
func apply(md *Media, p plan, ours srtp.Keys, dir sdpx.Direction, prev *negotiated) (MediaState, error) {
	s := md.Stream()
	rtp, rtcp := md.advertised()
	st := MediaState{
		Local: rtp, LocalRTCP: rtcp, Remote: p.remote.RTP, RemoteRTCP: p.remote.RTCP,
		RTCPMux: !rtcp.IsValid(), Codecs: p.codecs, Direction: dir, Security: p.security,
		Renegotiated: prev != nil, ICE: p.ice.ufrag != "", Mid: p.remote.Mid,
	}
	for _, x := range p.extra {
		st.Bundled = append(st.Bundled, Bundled{Mid: x.remote.Mid, Codecs: x.codecs,
			Direction: sdpx.Combine(dir, x.remote.Direction), SSRCs: x.remote.SSRCs})
	}
	if err := md.putICE(p.ice, p.remote, p.lite, p.controlling); err != nil {
		return st, err
	}

	// Keys first.
	sameMedia := prev != nil && prev.media == md
	startDTLS := false
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
			startDTLS = true
		} else {
			st.DTLSRole = prev.state.DTLSRole
		}
	}

	// Then destinations. With ICE the peer's nomination (USE-CANDIDATE)
	// decides where media goes (RFC 8445 §8.1.1); the default destination
	// of c=/m= is only used until it has. A destination nominated before
	// this description arrived (the peer checks as soon as it has our
	// offer) is kept, and so is one of an earlier ICE exchange on this
	// stream unless the peer restarted ICE or changed its default
	// destination (it moved).
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

	// Then DTLS.
	if startDTLS {
		if err := md.startDTLS(p.role, st.ICE && !p.lite); err != nil {
			return st, err
		}
	}
	return st, nil
}
