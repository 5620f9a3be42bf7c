package flow

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/pion/stun/v2"
)

// ICE (RFC 8445) inside the flow.
//
// A flow runs one ICE agent for its component on its own socket: checks,
// responses and consent checks share the socket and the demux with media,
// DTLS and the TURN client. The agent is full by default and lite on request
// (ICEConfig.Lite, or SetICECredentials for the ICE-lite responder of older
// callers). Files:
//
//	ice.go            configuration and the public API
//	ice_candidate.go  candidates, priorities, foundations, a=candidate syntax
//	ice_agent.go      the agent's state: check list, pacing, nomination, consent
//	ice_inbound.go    what the socket reader does with a STUN message from a peer
//	ice_send.go       sending on a path (host socket or relay), rate limiting
//
// The socket reader only validates and answers: it checks FINGERPRINT,
// USERNAME and MESSAGE-INTEGRITY before anything else, answers an
// authenticated check on the path it came in on (a UDP write, or for TURN
// over TCP/TLS a hand-off to the agent's worker), and updates the agent's
// state under a short lock. It never runs a TURN transaction and never waits.
// Unauthenticated or malformed checks create no state and get at most a
// rate-limited 400/401 on their own path. Everything timed (pacing,
// retransmissions, nomination, consent) runs on a worker that exists only
// while it has work: it is started by a timer (time.AfterFunc), so a flow with
// ICE has no goroutine more than a flow without it while idle.

// Errors of the ICE agent, matched with errors.Is. They reach the handler as
// the Err of an EventError, wrapped in *Error.
var (
	// ErrInvalidICECredentials is returned for ICE credentials that RFC 8445 §5.3
	// does not allow (ufrag under 4 or pwd under 22 ice-chars).
	ErrInvalidICECredentials = errors.New("flow: invalid ICE credentials")
	// ErrConsentLost means the peer stopped answering consent checks on the
	// selected pair for ConsentTimeout (RFC 7675 §5.1): the flow stopped
	// sending; writes fail with it until an ICE restart selects a pair again.
	ErrConsentLost = errors.New("flow: ICE consent lost")
	// ErrICEFailed means every candidate pair failed after the peer signalled
	// the end of its candidates (RFC 8445 §8.1.2, RFC 8838 §9).
	ErrICEFailed = errors.New("flow: ICE failed")
	// ErrNoICE is returned by ICE methods of a flow on which StartICE was not called.
	ErrNoICE = errors.New("flow: ICE not started")
)

// EventICESelected is the flow event (Event.Kind) sent when the ICE agent
// selected a candidate pair (nominated, RFC 8445 §8.1.1) and made its remote
// address the active destination; SelectedPair tells which. It is sent again
// for a new pair after an ICE restart. ICE event kinds start at 64 so that
// they stay clear of the flow's other events.
const EventICESelected EventKind = 64

// ICE timing defaults (RFC 8445 §14, RFC 7675).
const (
	// DefaultICEPacing is Ta, the interval between new checks (RFC 8445 §14.2).
	DefaultICEPacing = 50 * time.Millisecond
	// ConsentInterval is the mean interval of consent checks on the selected
	// pair; each interval is randomised to 0.8-1.2 times it (RFC 7675 §5.1).
	// They are also the pair's keep-alives (RFC 8445 §11).
	ConsentInterval = 5 * time.Second
	// ConsentTimeout is how long the peer may leave consent checks
	// unanswered before consent is lost (RFC 7675 §5.1).
	ConsentTimeout = 30 * time.Second
	// NominationWait is how long a controlling agent waits after the first
	// valid pair for a better one before it nominates the best valid pair,
	// unless the best possible pair succeeds first.
	NominationWait = 200 * time.Millisecond
)

// ICEConfig starts a flow's ICE agent. LocalUfrag and LocalPwd are required;
// the remote credentials may come later (SetRemoteICECredentials).
type ICEConfig struct {
	// LocalUfrag and LocalPwd are our a=ice-ufrag and a=ice-pwd
	// (NewICECredentials makes them).
	LocalUfrag, LocalPwd string
	// RemoteUfrag and RemotePwd are the peer's. An empty RemoteUfrag accepts
	// checks from any peer ufrag until it is known.
	RemoteUfrag, RemotePwd string
	// Lite makes the agent an ICE-lite one (RFC 8445 §2.5): it answers
	// checks, takes the pair nominated with USE-CANDIDATE and sends nothing
	// of its own (no checks, no consent freshness). A lite agent is always
	// controlled.
	Lite bool
	// Controlling makes a full agent start in the controlling role (the
	// offerer, RFC 8445 §6.1.1); a role conflict may change it (§7.3.1.1).
	// It is forced on when RemoteLite is set.
	Controlling bool
	// RemoteLite says the peer is an ICE-lite agent (a=ice-lite).
	RemoteLite bool
	// TieBreaker is the 64-bit role tie-breaker; zero draws a random one.
	// Flows of one stream should share it.
	TieBreaker uint64
	// Pacing is Ta; zero means DefaultICEPacing.
	Pacing time.Duration
}

const iceChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// NewICECredentials returns a random ufrag (8 ice-chars, 48 bits) and password
// (24 ice-chars, 144 bits) for a=ice-ufrag and a=ice-pwd (RFC 8445 §5.3).
func NewICECredentials() (ufrag, pwd string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	for i := range b {
		b[i] = iceChars[b[i]&63]
	}
	return string(b[:8]), string(b[8:]), nil
}

func validICE(s string, minLen int) bool {
	if len(s) < minLen || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(iceChars, s[i]) < 0 {
			return false
		}
	}
	return true
}

// iceCreds are the credentials in force, replaced as a whole (restart).
type iceCreds struct {
	ufrag, pwd  string
	integrity   stun.MessageIntegrity // keyed with our pwd
	remoteUfrag string                // empty: any
	remoteKey   stun.MessageIntegrity // keyed with the peer's pwd; nil until known
}

// SetICECredentials makes the flow an ICE-lite responder with our a=ice-ufrag
// and a=ice-pwd and the peer's a=ice-ufrag (empty accepts any): it is
// StartICE with ICEConfig.Lite. Checks must carry USERNAME
// "localUfrag:remoteUfrag", MESSAGE-INTEGRITY keyed with localPwd and
// FINGERPRINT; they are answered on the path they came in on (the flow's
// socket, or the TURN relay). An empty localUfrag stops the agent.
func (f *Flow) SetICECredentials(localUfrag, localPwd, remoteUfrag string) error {
	if f.closed.Load() {
		return ErrClosed
	}
	if localUfrag == "" {
		f.stopICE()
		return nil
	}
	return f.StartICE(ICEConfig{LocalUfrag: localUfrag, LocalPwd: localPwd, RemoteUfrag: remoteUfrag, Lite: true})
}

// StartICE starts the flow's ICE agent, or changes the one running: with new
// local credentials it is an ICE restart (RFC 8445 §9): the remote
// candidates and the check list are dropped and checks start again with the
// new credentials, while media keeps flowing on the pair selected before
// (DTLS and SRTP state are not touched) until a new pair is selected. With
// the same local credentials it only updates the remote ones. A change
// between lite and full replaces the agent.
//
// Local candidates are gathered from the flow's socket and NAT setup
// (LocalCandidates); remote ones are added with AddRemoteCandidate (trickle,
// RFC 8838) and closed with EndOfRemoteCandidates.
func (f *Flow) StartICE(cfg ICEConfig) error {
	if f.closed.Load() {
		return ErrClosed
	}
	if !validICE(cfg.LocalUfrag, 4) || !validICE(cfg.LocalPwd, 22) ||
		(cfg.RemoteUfrag != "" && !validICE(cfg.RemoteUfrag, 4)) ||
		(cfg.RemotePwd != "" && !validICE(cfg.RemotePwd, 22)) {
		return ErrInvalidICECredentials
	}
	if cfg.Pacing <= 0 {
		cfg.Pacing = DefaultICEPacing
	}
	if cfg.Lite {
		cfg.Controlling, cfg.RemoteLite = false, false
	}
	if cfg.RemoteLite {
		cfg.Controlling = true
	}
	if cfg.TieBreaker == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		cfg.TieBreaker = binary.BigEndian.Uint64(b[:])
	}
	for {
		old := f.ice.Load()
		if old != nil && old.lite == cfg.Lite {
			old.reconfigure(cfg)
			return nil
		}
		a := newICEState(f, cfg)
		if !f.ice.CompareAndSwap(old, a) {
			a.close()
			continue
		}
		if old != nil {
			old.close()
		}
		if f.closed.Load() { // Close ran meanwhile: whoever swaps it out closes it
			f.stopICE()
			return ErrClosed
		}
		a.kick()
		return nil
	}
}

// SetRemoteICECredentials sets the peer's a=ice-ufrag and a=ice-pwd (from
// the answer, when StartICE ran with the offer). New values while a pair is
// selected are the peer's ICE restart: the check list starts again.
func (f *Flow) SetRemoteICECredentials(ufrag, pwd string) error {
	if !validICE(ufrag, 4) || !validICE(pwd, 22) {
		return ErrInvalidICECredentials
	}
	a := f.ice.Load()
	if a == nil {
		return ErrNoICE
	}
	a.setRemote(ufrag, pwd)
	return nil
}

// AddRemoteCandidate adds a candidate of the peer (from its SDP or trickled,
// RFC 8838). Candidates of another component than the flow's, non-UDP ones
// and those without an address give ErrInvalidCandidate. A lite agent
// ignores them (it only answers checks).
func (f *Flow) AddRemoteCandidate(c Candidate) error {
	a := f.ice.Load()
	if a == nil {
		return ErrNoICE
	}
	if c.Component != int(f.cfg.Component) || !c.Addr.IsValid() || c.Addr.Port() == 0 ||
		c.Addr.Addr().IsUnspecified() || c.Addr.Addr().IsMulticast() {
		return ErrInvalidCandidate
	}
	a.addRemote(c)
	return nil
}

// EndOfRemoteCandidates records that the peer has no more candidates
// (a=end-of-candidates, RFC 8838 §8.2): once every pair has failed the flow
// reports ErrICEFailed.
func (f *Flow) EndOfRemoteCandidates() error {
	a := f.ice.Load()
	if a == nil {
		return ErrNoICE
	}
	a.endOfCandidates()
	return nil
}

// LocalCandidates returns the flow's ICE candidates as known now: host (the
// socket's address, or every interface address when it is bound to the
// unspecified address), server-reflexive and relayed ones once the NAT setup
// is done (after EventReady). Call it again after EventReady to trickle the
// later ones.
func (f *Flow) LocalCandidates() []Candidate {
	a := f.ice.Load()
	if a == nil {
		tmp := &iceState{f: f}
		tmp.gatherLocked()
		return tmp.localCandidates()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gatherLocked()
	return a.localCandidates()
}

// SelectedPair returns the selected (nominated) candidate pair, or ok false.
func (f *Flow) SelectedPair() (local, remote Candidate, ok bool) {
	a := f.ice.Load()
	if a == nil {
		return Candidate{}, Candidate{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.selected == nil {
		return Candidate{}, Candidate{}, false
	}
	return a.selected.local.Candidate, *a.selected.remote, true
}

// ICEControlling reports whether the agent is in the controlling role now.
func (f *Flow) ICEControlling() bool {
	a := f.ice.Load()
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.controlling
}

// stopICE stops the agent and waits for its worker. Flow.Close calls it.
func (f *Flow) stopICE() {
	if a := f.ice.Swap(nil); a != nil {
		a.close()
	}
}

// icePath tells sendRaw how to send to dst: direct is true when the selected
// pair's local candidate is the flow's own socket (a TURN-mode flow then
// sends past the relay); err is ErrConsentLost once consent is lost.
func (f *Flow) icePath(dst netip.AddrPort) (direct bool, err error) {
	a := f.ice.Load()
	if a == nil {
		return false, nil
	}
	if a.consentLost.Load() {
		return false, ErrConsentLost
	}
	d := a.direct.Load()
	return d != nil && *d == dst && f.conn != nil, nil
}
