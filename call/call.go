package call

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/srtp"
)

// Call is one call: its state, its media stream and the offer/answer
// exchanges with the peer. The application acts on it (Ring, Accept,
// Reject, Hangup, Renegotiate); the signalling binding feeds it what the
// peer sends (the Remote* methods). All methods are safe for concurrent use.
type Call struct {
	a      *Agent
	id     string
	dir    Direction
	remote Party
	sig    Signaling
	cfg    MediaConfig
	log    *slog.Logger
	done   chan struct{} // closed when the call has ended and its media is closed
	ended  chan struct{} // closed when terminate has finished (Terminated queued)

	mu        sync.Mutex
	state     State
	reason    Reason
	ending    bool
	media     *Media
	sessID    uint64
	version   uint64
	keys      map[srtp.Suite]srtp.Keys
	ice       iceCredentials // ours (MediaConfig.ICE), fresh per call and per ICE restart
	localDir  sdpx.Direction
	neg       *negotiated
	offer     *pending          // our outstanding offer
	inOffer   *sdpx.Description // the initial remote offer, until answered
	accepting bool
	answered  bool // the initial offer/answer exchange completed
	// delayed: the initial exchange runs the other way round (delayed
	// offer): an incoming call made without an offer, whose Accept offers,
	// or an outgoing one dialled without an offer, answered in RemoteOffer.
	delayed bool
	// awaitOffer: an outgoing delayed call's request was sent; the peer's
	// offer is awaited (RemoteOffer).
	awaitOffer bool

	trickleStop context.CancelFunc // stops the trickle of our candidates (ice_trickle.go)
	trickleWG   sync.WaitGroup     // the trickling goroutine
}

// pending is an offer of ours awaiting its answer.
type pending struct {
	media  *Media // a new stream for this offer, nil for the current one
	line   sdpx.Line
	dir    sdpx.Direction
	result chan error // receives the outcome once (buffered)
}

// ID returns the call's identifier (the SIP Call-ID for SIP calls).
func (c *Call) ID() string { return c.id }

// Direction tells who placed the call.
func (c *Call) Direction() Direction { return c.dir }

// Remote returns the peer.
func (c *Call) Remote() Party { return c.remote }

// Signaling returns the binding's per-call value given to Dial or Incoming.
func (c *Call) Signaling() Signaling { return c.sig }

// State returns the current state.
func (c *Call) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Reason returns why the call ended; the zero Reason while it runs.
func (c *Call) Reason() Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// Done is closed when the call has ended and its media is closed.
func (c *Call) Done() <-chan struct{} { return c.done }

// Media returns the call's current media adapter. A re-offer with a new
// stream replaces it once the peer accepted the re-offer.
func (c *Call) Media() *Media {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.media
}

// Stream returns the call's current media stream, for RTP/RTCP I/O.
func (c *Call) Stream() *mediastream.Stream { return c.Media().Stream() }

// MediaState returns what the last completed offer/answer put in force, and
// false before the first one completed.
func (c *Call) MediaState() (MediaState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.neg == nil {
		return MediaState{}, false
	}
	return c.neg.state, true
}

// live reports whether the call accepts actions; c.mu held.
func (c *Call) live() bool { return !c.ending && c.state != Terminated }

// initialOfferer reports whether we made the call's initial offer: we placed
// the call, or we answered one without an offer (delayed offer). The
// initial offerer's full ICE agent is the controlling one (RFC 8445 §6.1.1).
func (c *Call) initialOfferer() bool { return (c.dir == Outbound) != c.delayed }

// keyFor returns our SDES key for suite, made once per call; c.mu held.
func (c *Call) keyFor(suite srtp.Suite) (srtp.Keys, error) {
	if k, ok := c.keys[suite]; ok {
		return k, nil
	}
	k, err := srtp.GenerateKeys(suite)
	if err != nil {
		return k, err
	}
	c.keys[suite] = k
	return k, nil
}

// offerLine builds our offer's m-line on md; c.mu held.
func (c *Call) offerLine(md *Media, dir sdpx.Direction) (sdpx.Line, error) {
	rtp, rtcp := md.advertised()
	l := sdpx.Line{RTP: rtp, RTCP: rtcp, RTCPMux: !rtcp.IsValid(), Security: c.cfg.Security, Codecs: c.cfg.Codecs, Direction: dir}
	switch c.cfg.Security {
	case sdpx.SDES:
		for i, s := range c.cfg.Suites {
			k, err := c.keyFor(s)
			if err != nil {
				return l, err
			}
			l.Crypto = append(l.Crypto, srtp.Crypto{Tag: i + 1, Keys: k})
		}
	case sdpx.DTLS:
		l.Fingerprint, l.Setup, l.TLSID = md.Fingerprint(), dtlssrtp.SetupActpass, md.TLSID()
	}
	if c.cfg.ICE {
		// WebRTC style: one m= line named by a=mid in a BUNDLE group of its
		// own (RFC 9143), which a WebRTC answerer expects.
		l.Mid = offerMid
		l.ICEUfrag, l.ICEPwd, l.Candidates = c.ice.ufrag, c.ice.pwd, md.Candidates()
		l.Trickle = c.trickleCapable()
		l.MoreCandidates = l.Trickle && !md.isReady()
		// The answerer may check before its answer reaches us (RFC 8445
		// §7.3): answer checks for our ufrag from any peer ufrag until then.
		if err := md.offerICE(c.ice, c.initialOfferer()); err != nil {
			return l, err
		}
	}
	return l, nil
}

// offerMid is the a=mid of our offers' m= line when ICE is on.
const offerMid = "0"

// answerLine builds our answer's m-line for plan p on md; c.mu held.
func (c *Call) answerLine(md *Media, p plan, dir sdpx.Direction) (sdpx.Line, srtp.Keys, error) {
	rtp, rtcp := md.advertised()
	l := sdpx.Line{RTP: rtp, RTCP: rtcp, RTCPMux: !rtcp.IsValid(), Proto: p.remote.Proto, Codecs: p.codecs, Direction: dir, Mid: p.remote.Mid}
	if l.RTCPMux && !p.remote.RTCPMux {
		// An answer may not add rtcp-mux (RFC 5761 §5.1.1); our stream has
		// one flow, so point a=rtcp at it.
		l.RTCPMux, l.RTCP = false, rtp
	}
	var ours srtp.Keys
	switch p.security {
	case sdpx.SDES:
		var err error
		if ours, err = c.keyFor(p.peerKeys.Suite); err != nil {
			return l, ours, err
		}
		l.Crypto = []srtp.Crypto{{Tag: p.tag, Keys: ours}}
	case sdpx.DTLS:
		l.Fingerprint, l.Setup = md.Fingerprint(), p.setup
		if p.remote.TLSID != "" {
			l.TLSID = md.TLSID() // RFC 8842 §5.2: answer it when offered
		}
	}
	if p.ice.ufrag != "" {
		l.ICEUfrag, l.ICEPwd, l.Candidates = p.ice.ufrag, p.ice.pwd, md.Candidates()
		l.Trickle = c.trickleCapable()
		l.MoreCandidates = l.Trickle && !md.isReady()
	}
	return l, ours, nil
}

// iceFor returns our ICE credentials for answering remote media m: none
// unless ICE is on and m carries ICE, new ones when m restarts ICE (new
// ufrag or pwd, RFC 8445 §9, RFC 8839 §4.4.1.1.2); c.mu held.
func (c *Call) iceFor(m sdpx.Media) (iceCredentials, error) {
	if !c.cfg.ICE || !m.ICE() {
		return iceCredentials{}, nil
	}
	if c.neg != nil && c.neg.remote.ICE() && (c.neg.remote.ICEUfrag != m.ICEUfrag || c.neg.remote.ICEPwd != m.ICEPwd) {
		return newICECredentials()
	}
	return c.ice, nil
}

func newICECredentials() (iceCredentials, error) {
	u, p, err := flow.NewICECredentials()
	return iceCredentials{u, p}, err
}

// marshal writes a session with our lines, bumping the o= version; c.mu
// held. bundle is the a=group:BUNDLE to write (nil: none).
func (c *Call) marshal(lines []sdpx.Line, bundle []string) ([]byte, error) {
	c.version++
	addr := c.cfg.LocalAddr
	for _, l := range lines {
		if l.RTP.Port() != 0 {
			addr = l.RTP.Addr()
			break
		}
	}
	lite := !c.cfg.FullICE && slices.ContainsFunc(lines, func(l sdpx.Line) bool { return l.ICEUfrag != "" })
	return sdpx.Session{SessionID: c.sessID, Version: c.version, Addr: addr, Media: lines, ICELite: lite, Bundle: bundle}.Marshal()
}

// offerSDP writes an offer with our one line; c.mu held.
func (c *Call) offerSDP(l sdpx.Line) ([]byte, error) {
	var bundle []string
	if l.Mid != "" {
		bundle = []string{l.Mid}
	}
	return c.marshal([]sdpx.Line{l}, bundle)
}

// answerSDP answers description d with our line at p.index; c.mu held. The
// other lines of the offer's BUNDLE group that p accepts are answered on
// the same transport (same port, candidates and keys: RFC 9143 §7.3), with
// their own codecs, direction and a=mid; the rest are rejected (port 0),
// keeping their a=mid (RFC 9143 §7.3.3). The answer's BUNDLE group lists
// the accepted mids, ours first (the answerer-tagged line).
func (c *Call) answerSDP(d *sdpx.Description, p plan, ours sdpx.Line) ([]byte, error) {
	lines := make([]sdpx.Line, len(d.Media))
	var bundle []string
	if p.bundled() {
		bundle = []string{ours.Mid}
	}
	for i, m := range d.Media {
		if i == p.index {
			lines[i] = ours
			continue
		}
		if j := slices.IndexFunc(p.extra, func(x extraLine) bool { return x.index == i }); j >= 0 && p.bundled() {
			x := p.extra[j]
			l := ours
			l.Codecs, l.Mid = x.codecs, x.remote.Mid
			l.Direction = sdpx.Combine(c.localDir, x.remote.Direction)
			lines[i] = l
			bundle = append(bundle, x.remote.Mid)
			continue
		}
		lines[i] = sdpx.Line{Type: m.Type, Proto: m.Proto, Formats: m.Formats, Mid: m.Mid}
	}
	return c.marshal(lines, bundle)
}

// setState changes the state and reports it; c.mu must not be held.
func (c *Call) setState(to State) {
	c.mu.Lock()
	from := c.state
	if from == to || !c.live() {
		c.mu.Unlock()
		return
	}
	c.state = to
	c.mu.Unlock()
	c.a.emit(func(h Handler) { h.OnState(c, from, to, Reason{}) })
}

// PeerCloseGrace is how long a call whose peer closed its DTLS association
// (close_notify) waits for the signalling's hangup (a BYE sent just before)
// or a re-offer that starts a new association, before it ends itself with a
// MediaLost reason.
const PeerCloseGrace = time.Second

// onMediaError receives the failures of the call's streams. A failure of
// the stream in force ends the call: the peer's media gone (DTLS
// close_notify, ICE consent lost, ICE failed) with MediaLost, a DTLS
// failure (fingerprint mismatch, handshake timeout, fatal alert, no common
// profile) with SecurityFailed, anything else with MediaFailed; the reason
// wraps the stream's error (match it with errors.Is).
func (c *Call) onMediaError(md *Media, err error) {
	c.mu.Lock()
	current := md == c.media || (c.offer != nil && md == c.offer.media)
	waiting := c.dir == Outbound && !c.answered && c.offer == nil && !c.awaitOffer // Dial is still waiting for the stream
	live := c.live()
	c.mu.Unlock()
	c.log.Debug("media error", "call", c.id, "err", err)
	if !current || !live || waiting {
		return
	}
	r := Reason{Kind: MediaFailed, Text: "media stream failed", Err: err}
	switch {
	case errors.Is(err, dtlssrtp.ErrPeerClosed):
		r = Reason{Kind: MediaLost, Text: "the peer closed its DTLS association", Err: err}
	case errors.Is(err, flow.ErrConsentLost):
		r = Reason{Kind: MediaLost, Text: "ICE consent lost", Err: err}
	case errors.Is(err, flow.ErrICEFailed):
		r = Reason{Kind: MediaLost, Text: "ICE failed", Err: err}
	case errors.Is(err, dtlssrtp.ErrFingerprintMismatch), errors.Is(err, dtlssrtp.ErrHandshakeTimeout),
		errors.Is(err, dtlssrtp.ErrHandshakeFailed), errors.Is(err, dtlssrtp.ErrFatalAlert),
		errors.Is(err, dtlssrtp.ErrNoCommonSuite):
		r = Reason{Kind: SecurityFailed, Text: "DTLS-SRTP failed", Err: err}
	}
	if errors.Is(err, dtlssrtp.ErrPeerClosed) {
		// A peer hanging up closes its association right after its BYE:
		// let the BYE end the call as a remote hangup if it comes. A peer
		// moving its media elsewhere closes it before its re-offer: a new
		// association started meanwhile keeps the call.
		gen := md.dtlsGeneration()
		go func() {
			t := time.NewTimer(PeerCloseGrace)
			defer t.Stop()
			select {
			case <-c.done:
			case <-t.C:
				if md.dtlsGeneration() == gen {
					c.terminate(r, true)
				}
			}
		}()
		return
	}
	// Not on the stream's handler goroutine: terminate sends the hangup and
	// closes the stream.
	go c.terminate(r, true)
}

// terminate ends the call: it sends the hangup (or rejection) when send is
// set, closes the media and reports Terminated. Only the first call acts.
func (c *Call) terminate(r Reason, send bool) {
	c.mu.Lock()
	if !c.live() {
		c.mu.Unlock()
		return
	}
	c.ending = true
	from := c.state
	// An incoming call is unanswered until we sent our answer, or our offer
	// when it came without one (c.offer is then set).
	unanswered := c.dir == Inbound && !c.answered && c.offer == nil
	medias := []*Media{c.media}
	if c.offer != nil {
		if c.offer.media != nil {
			medias = append(medias, c.offer.media)
		}
		c.offer.result <- r
		c.offer = nil
	}
	stop := c.trickleStop
	c.mu.Unlock()
	// No candidate is trickled after the hangup.
	if stop != nil {
		stop()
	}
	c.trickleWG.Wait()
	if send {
		ctx, cancel := context.WithTimeout(context.Background(), c.a.cfg.HangupTimeout)
		var err error
		if unanswered {
			err = c.sig.SendReject(ctx, r)
		} else {
			err = c.sig.SendHangup(ctx, r)
		}
		cancel()
		if err != nil {
			c.log.Debug("sending hangup", "call", c.id, "err", err)
		}
	}
	for _, m := range medias {
		if m != nil {
			m.Close()
		}
	}
	c.mu.Lock()
	c.state, c.reason = Terminated, r
	c.mu.Unlock()
	close(c.done)
	c.a.forget(c)
	c.a.emit(func(h Handler) { h.OnState(c, from, Terminated, r) })
	close(c.ended)
}
