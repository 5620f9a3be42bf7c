package flow

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v2"
)

// icePath is the way a packet reaches or leaves the flow.
type icePath uint8

const (
	pathHost  icePath = iota // the flow's own UDP socket
	pathRelay                // the TURN allocation
)

// Bounds on what the network can make the agent hold.
const (
	maxRemoteCandidates = 64
	maxPairs            = 128
	maxCheckSends       = 7                      // Rc (RFC 8489 §6.2.1)
	checkRTO            = 500 * time.Millisecond // first RTO (RFC 8445 §14.3)
	maxCheckRTO         = 1600 * time.Millisecond
	maxOutQueue         = 32
)

type localCand struct {
	Candidate
	path icePath
}

type pairState uint8

const (
	pairFrozen pairState = iota
	pairWaiting
	pairInProgress
	pairSucceeded
	pairFailed
)

// candPair is one entry of the check list (RFC 8445 §6.1.2).
type candPair struct {
	local    *localCand
	remote   *Candidate
	prio     uint64
	state    pairState
	found    string // local and remote foundation
	useCand  bool   // controlled: the peer nominated it; selected once our check succeeds
	inFlight *iceTxn
}

// iceTxn is one outstanding request of ours.
type iceTxn struct {
	id          [stun.TransactionIDSize]byte
	pair        *candPair
	raw         []byte
	key         stun.MessageIntegrity
	controlling bool
	nominate    bool
	consent     bool
	sends       int
	next        time.Time
}

// outMsg is a datagram for the worker to send.
type outMsg struct {
	b    []byte
	dst  netip.AddrPort
	path icePath
}

// iceState is a flow's ICE agent. Its state is guarded by mu; no network I/O
// happens with mu held. The lock order is iceState.mu before Flow.mu.
type iceState struct {
	f     *Flow
	lite  bool
	creds atomic.Pointer[iceCreds] // read lock-free by the socket reader

	consentLost atomic.Bool
	direct      atomic.Pointer[netip.AddrPort] // selected remote when its local is the socket
	errTAT      atomic.Int64                   // error response rate limiter (ice_send.go)

	mu          sync.Mutex
	controlling bool
	remoteLite  bool
	tie         uint64
	ta          time.Duration
	locals      []*localCand
	signalled   []Candidate // srflx: advertised, paired through their base
	remotes     []*Candidate
	pairs       []*candPair // highest priority first
	triggered   []*candPair
	txns        map[[stun.TransactionIDSize]byte]*iceTxn
	eoc         bool
	selected    *candPair
	nominating  *candPair
	firstValid  time.Time
	nextPace    time.Time
	nextConsent time.Time
	lastConsent time.Time
	failed      bool // ErrICEFailed reported
	out         []outMsg
	permits     map[netip.Addr]permitState // TURN permissions for checks from the relay
	permitQ     []netip.Addr               // permissions to ask for, outside mu
	closed      bool

	timer *time.Timer
	runMu sync.Mutex
	again atomic.Bool
	wg    sync.WaitGroup
}

func newICEState(f *Flow, cfg ICEConfig) *iceState {
	a := &iceState{
		f:           f,
		lite:        cfg.Lite,
		controlling: cfg.Controlling,
		remoteLite:  cfg.RemoteLite,
		tie:         cfg.TieBreaker,
		ta:          cfg.Pacing,
		txns:        make(map[[stun.TransactionIDSize]byte]*iceTxn),
		permits:     make(map[netip.Addr]permitState),
	}
	a.creds.Store(makeCreds(cfg.LocalUfrag, cfg.LocalPwd, cfg.RemoteUfrag, cfg.RemotePwd))
	a.timer = time.AfterFunc(time.Hour, a.run)
	a.timer.Stop()
	a.mu.Lock()
	a.gatherLocked()
	a.mu.Unlock()
	return a
}

func makeCreds(ufrag, pwd, rufrag, rpwd string) *iceCreds {
	c := &iceCreds{ufrag: ufrag, pwd: pwd, integrity: stun.NewShortTermIntegrity(pwd), remoteUfrag: rufrag}
	if rpwd != "" {
		c.remoteKey = stun.NewShortTermIntegrity(rpwd)
	}
	return c
}

// reconfigure applies StartICE to a running agent: a restart when the local
// credentials changed, else an update of the remote ones.
func (a *iceState) reconfigure(cfg ICEConfig) {
	old := a.creds.Load()
	a.mu.Lock()
	if old.ufrag != cfg.LocalUfrag || old.pwd != cfg.LocalPwd {
		a.restartLocked()
		a.controlling, a.remoteLite, a.tie, a.ta = cfg.Controlling, cfg.RemoteLite, cfg.TieBreaker, cfg.Pacing
		a.creds.Store(makeCreds(cfg.LocalUfrag, cfg.LocalPwd, cfg.RemoteUfrag, cfg.RemotePwd))
	} else if cfg.RemoteUfrag != "" && cfg.RemotePwd != "" {
		a.setRemoteLocked(cfg.RemoteUfrag, cfg.RemotePwd)
	}
	a.mu.Unlock()
	a.kick()
}

func (a *iceState) setRemote(ufrag, pwd string) {
	a.mu.Lock()
	a.setRemoteLocked(ufrag, pwd)
	a.mu.Unlock()
	a.kick()
}

func (a *iceState) setRemoteLocked(ufrag, pwd string) {
	c := a.creds.Load()
	if c.remoteUfrag == ufrag && c.remoteKey != nil && string(c.remoteKey) == string(stun.NewShortTermIntegrity(pwd)) {
		return
	}
	if c.remoteUfrag != "" && c.remoteUfrag != ufrag && c.remoteKey != nil {
		a.restartLocked() // the peer restarted ICE
	}
	a.creds.Store(makeCreds(c.ufrag, c.pwd, ufrag, pwd))
}

// restartLocked drops the check list for an ICE restart; the selected pair
// stays in use (and under consent checks) until a new one is selected.
func (a *iceState) restartLocked() {
	a.remotes, a.pairs, a.triggered = nil, nil, nil
	clear(a.txns)
	a.eoc, a.nominating, a.failed = false, nil, false
	a.firstValid = time.Time{}
	if a.selected != nil {
		// Keep the old pair only as a media path; it is no longer in the list.
		// Consent checks on it need the new credentials, which the peer may
		// send a while later: consent gets a fresh window from now.
		a.selected.inFlight = nil
		a.lastConsent = time.Now()
	}
}

func (a *iceState) addRemote(c Candidate) {
	a.mu.Lock()
	if !a.lite {
		a.addRemoteLocked(c)
	}
	a.mu.Unlock()
	a.kick()
}

// addRemoteLocked adds c unless known or over the limit, and pairs it.
func (a *iceState) addRemoteLocked(c Candidate) *Candidate {
	c.Addr = netip.AddrPortFrom(c.Addr.Addr().Unmap(), c.Addr.Port())
	for _, r := range a.remotes {
		if r.Addr == c.Addr {
			return r
		}
	}
	if len(a.remotes) >= maxRemoteCandidates {
		return nil
	}
	r := &c
	a.remotes = append(a.remotes, r)
	for _, l := range a.locals {
		a.pairLocked(l, r)
	}
	return r
}

func (a *iceState) endOfCandidates() {
	a.mu.Lock()
	a.eoc = true
	a.mu.Unlock()
	a.kick()
}

// gatherLocked adds local candidates the flow has learnt since the last call.
func (a *iceState) gatherLocked() {
	f := a.f
	comp := int(f.cfg.Component)
	known := func(t CandidateType, ap netip.AddrPort) bool {
		for _, l := range a.locals {
			if l.Type == t && l.Addr == ap {
				return true
			}
		}
		for _, s := range a.signalled {
			if s.Type == t && s.Addr == ap {
				return true
			}
		}
		return false
	}
	add := func(l *localCand) {
		a.locals = append(a.locals, l)
		for _, r := range a.remotes {
			a.pairLocked(l, r)
		}
	}
	lt := f.LocalTuple()
	var base netip.AddrPort
	if f.conn != nil && lt.Addr.IsValid() {
		for i, ip := range hostAddrs(lt.Addr.Addr()) {
			ap := netip.AddrPortFrom(ip, lt.Addr.Port())
			if i == 0 {
				base = ap
			}
			if known(CandidateHost, ap) {
				continue
			}
			pref := uint16(65535 - i)
			add(&localCand{Candidate: Candidate{Foundation: foundation(CandidateHost, ip, netip.Addr{}), Component: comp,
				Priority: candidatePriority(CandidateHost, pref, comp), Addr: ap, Type: CandidateHost}, path: pathHost})
		}
	}
	refl := f.ReflexiveTuple()
	if f.conn != nil && refl.Addr.IsValid() && refl.Addr != base && !known(CandidateServerReflexive, refl.Addr) {
		a.signalled = append(a.signalled, Candidate{Foundation: foundation(CandidateServerReflexive, base.Addr(), f.natServer().Addr()),
			Component: comp, Priority: candidatePriority(CandidateServerReflexive, 65535, comp), Addr: refl.Addr,
			Type: CandidateServerReflexive, Related: base})
	}
	if rt := f.RelayTuple(); rt.Addr.IsValid() && !known(CandidateRelay, rt.Addr) {
		add(&localCand{Candidate: Candidate{Foundation: foundation(CandidateRelay, f.natServer().Addr(), f.natServer().Addr()),
			Component: comp, Priority: candidatePriority(CandidateRelay, 65535, comp), Addr: rt.Addr,
			Type: CandidateRelay, Related: refl.Addr}, path: pathRelay})
	}
}

// hostAddrs returns the host candidate addresses of a socket bound to ip:
// ip itself, or the interfaces' addresses for an unspecified ip (loopback
// and link-local left out).
func hostAddrs(ip netip.Addr) []netip.Addr {
	if !ip.IsUnspecified() {
		return []netip.Addr{ip.Unmap()}
	}
	ifas, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ifa := range ifas {
		pfx, err := netip.ParsePrefix(ifa.String())
		if err != nil {
			continue
		}
		a := pfx.Addr().Unmap()
		if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || (ip.Is4() && !a.Is4()) {
			continue
		}
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(x, y netip.Addr) int { // IPv6 first (RFC 8421)
		if x.Is6() == y.Is6() {
			return 0
		}
		if x.Is6() {
			return -1
		}
		return 1
	})
	return out
}

func (a *iceState) localCandidates() []Candidate {
	out := make([]Candidate, 0, len(a.locals)+len(a.signalled))
	for _, l := range a.locals {
		out = append(out, l.Candidate)
	}
	out = append(out, a.signalled...)
	slices.SortStableFunc(out, func(x, y Candidate) int { return int(int64(y.Priority) - int64(x.Priority)) })
	return out
}

// pairLocked forms the pair (l, r) when both are of one address family.
func (a *iceState) pairLocked(l *localCand, r *Candidate) *candPair {
	if l.Addr.Addr().Is4() != r.Addr.Addr().Is4() {
		return nil
	}
	for _, p := range a.pairs {
		if p.local == l && p.remote == r {
			return p
		}
	}
	if len(a.pairs) >= maxPairs {
		return nil
	}
	if l.path == pathRelay && a.permits[r.Addr.Addr()] == permitNone {
		a.permits[r.Addr.Addr()] = permitPending
		a.permitQ = append(a.permitQ, r.Addr.Addr())
	}
	p := &candPair{local: l, remote: r, found: l.Foundation + ":" + r.Foundation}
	p.prio = a.pairPrio(p)
	// Frozen unless no pair of its foundation is active (RFC 8445 §6.1.2.6).
	p.state = pairWaiting
	for _, q := range a.pairs {
		if q.found == p.found && q.state != pairFailed {
			p.state = pairFrozen
			break
		}
	}
	a.pairs = append(a.pairs, p)
	a.sortPairsLocked()
	return p
}

func (a *iceState) pairPrio(p *candPair) uint64 {
	if a.controlling {
		return pairPriority(p.local.Priority, p.remote.Priority)
	}
	return pairPriority(p.remote.Priority, p.local.Priority)
}

func (a *iceState) sortPairsLocked() {
	slices.SortStableFunc(a.pairs, func(x, y *candPair) int {
		switch {
		case x.prio > y.prio:
			return -1
		case x.prio < y.prio:
			return 1
		}
		return 0
	})
}

// setRoleLocked switches the role after a conflict (RFC 8445 §7.3.1.1, §7.2.5.1).
func (a *iceState) setRoleLocked(controlling bool) {
	if a.controlling == controlling || a.lite {
		return
	}
	a.controlling = controlling
	a.nominating = nil
	for _, p := range a.pairs {
		p.prio = a.pairPrio(p)
	}
	a.sortPairsLocked()
	a.f.log.Debug("ice: role switched", "controlling", controlling)
}

// triggerLocked queues a triggered check for p (RFC 8445 §7.3.1.4).
func (a *iceState) triggerLocked(p *candPair) {
	if a.lite || p.state == pairSucceeded || slices.Contains(a.triggered, p) {
		return
	}
	if p.state == pairInProgress {
		if t := p.inFlight; t != nil {
			t.next = time.Time{} // retransmit at once (RFC 8445 §7.3.1.4)
		}
		return
	}
	p.state = pairWaiting
	a.triggered = append(a.triggered, p)
}

// kick runs the worker now.
func (a *iceState) kick() { a.timer.Reset(0) }

// run is the worker: started by the timer, one at a time; a kick while it
// runs makes it run again.
func (a *iceState) run() {
	for {
		a.again.Store(true)
		if !a.runMu.TryLock() {
			return
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			a.runMu.Unlock()
			return
		}
		a.wg.Add(1)
		a.mu.Unlock()
		a.again.Store(false)
		a.step()
		a.wg.Done()
		a.runMu.Unlock()
		if !a.again.Load() {
			return
		}
	}
}

// step does what is due: queued sends, retransmissions, the next paced
// check, nomination, consent, failure; then re-arms the timer.
func (a *iceState) step() {
	f := a.f
	now := time.Now()
	var sends []outMsg
	var events []Event

	a.mu.Lock()
	a.gatherLocked()
	sends, a.out = a.out, nil
	c := a.creds.Load()
	full := !a.lite && c.remoteKey != nil
	if full {
		// Retransmissions, and failed checks.
		for id, t := range a.txns {
			if t.consent {
				if now.Sub(t.next) > ConsentTimeout {
					delete(a.txns, id)
				}
				continue
			}
			if now.Before(t.next) {
				continue
			}
			if t.sends >= maxCheckSends {
				delete(a.txns, id)
				if t.pair.inFlight == t {
					t.pair.inFlight = nil
					if t.pair.state == pairInProgress {
						t.pair.state = pairFailed
					}
				}
				if a.nominating == t.pair {
					a.nominating = nil
				}
				continue
			}
			t.sends++
			t.next = now.Add(min(checkRTO<<(t.sends-1), maxCheckRTO))
			sends = append(sends, outMsg{t.raw, t.pair.remote.Addr, t.pair.local.path})
		}
		// One new check per Ta.
		if !now.Before(a.nextPace) {
			if p := a.nextCheckLocked(); p != nil {
				if m, ok := a.checkLocked(p, c, false, false, now); ok {
					sends = append(sends, m)
					a.nextPace = now.Add(a.ta)
				}
			}
		}
		// Regular nomination by the controlling agent.
		if a.controlling && a.nominating == nil && (a.selected == nil || !a.inListLocked(a.selected)) {
			if p := a.nominationLocked(now); p != nil {
				if m, ok := a.checkLocked(p, c, true, false, now); ok {
					a.nominating = p
					sends = append(sends, m)
				}
			}
		}
		// Consent freshness on the selected pair (RFC 7675).
		if s := a.selected; s != nil && !a.consentLost.Load() {
			if now.Sub(a.lastConsent) >= ConsentTimeout {
				a.consentLost.Store(true)
				events = append(events, Event{Flow: f, Kind: EventError, Err: &Error{f.cfg.Component, "ice consent",
					ErrConsentLost}})
			} else if !now.Before(a.nextConsent) {
				if m, ok := a.checkLocked(s, c, false, true, now); ok {
					sends = append(sends, m)
				}
				a.nextConsent = now.Add(consentJitter())
			}
		}
		// Failure: every pair failed and the peer has no more candidates.
		if a.selected == nil && a.eoc && !a.failed && len(a.triggered) == 0 &&
			!slices.ContainsFunc(a.pairs, func(p *candPair) bool { return p.state != pairFailed }) {
			a.failed = true
			events = append(events, Event{Flow: f, Kind: EventError, Err: &Error{f.cfg.Component, "ice", ErrICEFailed}})
		}
	}
	permits := a.permitQ
	a.permitQ = nil
	npairs := len(a.pairs)
	next := a.nextWakeLocked(now, full)
	if !a.closed && next >= 0 {
		a.timer.Reset(next)
	}
	a.mu.Unlock()

	for _, ip := range permits {
		a.permit(ip)
	}
	for _, m := range sends {
		a.sendOn(m)
	}
	if len(sends) > 0 {
		f.log.Debug("ice: sent", "messages", len(sends), "pairs", npairs)
	}
	for _, ev := range events {
		if ev.Kind == EventError {
			f.fail(ev.Err)
		} else {
			f.emit(ev)
		}
	}
}

// nextWakeLocked returns when the worker must run next (negative: not before a kick).
func (a *iceState) nextWakeLocked(now time.Time, full bool) time.Duration {
	if len(a.out) > 0 {
		return 0
	}
	if !full {
		return -1
	}
	var at time.Time
	soon := func(t time.Time) {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	for _, t := range a.txns {
		if !t.consent {
			soon(t.next)
		}
	}
	if len(a.triggered) > 0 || slices.ContainsFunc(a.pairs, func(p *candPair) bool {
		return p.state == pairWaiting || p.state == pairFrozen
	}) {
		soon(a.nextPace)
	}
	if a.controlling && a.nominating == nil && !a.firstValid.IsZero() && (a.selected == nil || !a.inListLocked(a.selected)) {
		soon(a.firstValid.Add(NominationWait))
	}
	if a.selected != nil && !a.consentLost.Load() {
		soon(a.nextConsent)
		soon(a.lastConsent.Add(ConsentTimeout))
	}
	if at.IsZero() {
		return -1
	}
	return max(at.Sub(now), 0)
}

func (a *iceState) inListLocked(p *candPair) bool { return slices.Contains(a.pairs, p) }

// consentJitter returns ConsentInterval times a random factor in [0.8, 1.2).
func consentJitter() time.Duration {
	return time.Duration(float64(ConsentInterval) * (0.8 + 0.4*rand.Float64()))
}

// nextCheckLocked picks the pair for the next paced check: a triggered one,
// else the best waiting one, else the best frozen one (RFC 8445 §6.1.4.2).
func (a *iceState) nextCheckLocked() *candPair {
	for i, p := range a.triggered {
		if p.state != pairWaiting || !a.inListLocked(p) {
			continue
		}
		if a.permittedLocked(p) {
			a.triggered = slices.Delete(a.triggered, 0, i+1)
			return p
		}
	}
	for _, p := range a.pairs {
		if p.state == pairWaiting && a.permittedLocked(p) {
			return p
		}
	}
	for _, p := range a.pairs {
		if p.state == pairFrozen && a.permittedLocked(p) {
			return p
		}
	}
	return nil
}

// permitState is the state of a TURN permission for checks from the relay.
type permitState uint8

const (
	permitNone permitState = iota
	permitPending
	permitGranted
	permitFailed
)

// permittedLocked reports whether p may be checked now: a pair from the
// relayed candidate waits for its TURN permission (a check sent before it
// would be dropped by the server and cost a retransmission timeout), and
// fails when the permission is refused.
func (a *iceState) permittedLocked(p *candPair) bool {
	if p.local.path != pathRelay {
		return true
	}
	switch a.permits[p.remote.Addr.Addr()] {
	case permitGranted:
		return true
	case permitFailed:
		p.state = pairFailed
	}
	return false
}

// permitted records the TURN client's answer to a permission request.
func (a *iceState) permitted(ip netip.Addr, err error) {
	a.mu.Lock()
	if err != nil {
		a.permits[ip] = permitFailed
	} else {
		a.permits[ip] = permitGranted
	}
	a.mu.Unlock()
	a.kick()
}

// nominationLocked returns the valid pair to nominate, if it is time: at
// once when the best pair that has not failed is valid, else NominationWait
// after the first valid pair.
func (a *iceState) nominationLocked(now time.Time) *candPair {
	var best *candPair
	for _, p := range a.pairs {
		if p.state == pairSucceeded {
			best = p
			break
		}
	}
	if best == nil {
		return nil
	}
	for _, p := range a.pairs {
		if p == best {
			return best // every better pair failed
		}
		if p.state != pairFailed {
			break
		}
	}
	if now.Sub(a.firstValid) >= NominationWait {
		return best
	}
	return nil
}

// checkLocked builds a Binding request on p (RFC 8445 §7.2.2) and records
// its transaction.
func (a *iceState) checkLocked(p *candPair, c *iceCreds, nominate, consent bool, now time.Time) (outMsg, bool) {
	var prio [4]byte
	binary.BigEndian.PutUint32(prio[:], candidatePriority(CandidatePeerReflexive, uint16(p.local.Priority>>8), p.local.Component))
	var tie [8]byte
	binary.BigEndian.PutUint64(tie[:], a.tie)
	role := stun.AttrICEControlled
	if a.controlling {
		role = stun.AttrICEControlling
	}
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest,
		stun.NewUsername(c.remoteUfrag + ":" + c.ufrag), iceAttr{stun.AttrPriority, prio[:]}, iceAttr{role, tie[:]}}
	if nominate {
		setters = append(setters, iceAttr{stun.AttrUseCandidate, nil})
	}
	setters = append(setters, c.remoteKey, stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		return outMsg{}, false
	}
	t := &iceTxn{id: m.TransactionID, pair: p, raw: m.Raw, key: c.remoteKey, controlling: a.controlling,
		nominate: nominate, consent: consent, sends: 1, next: now.Add(checkRTO)}
	a.txns[t.id] = t
	if !consent {
		p.inFlight = t
		if p.state != pairSucceeded {
			p.state = pairInProgress
		}
	}
	return outMsg{m.Raw, p.remote.Addr, p.local.path}, true
}

type iceAttr struct {
	t stun.AttrType
	v []byte
}

func (r iceAttr) AddTo(m *stun.Message) error { m.Add(r.t, r.v); return nil }

// selectLocked makes p the selected pair; the caller applies it with
// applySelected once mu is released.
func (a *iceState) selectLocked(p *candPair) bool {
	if a.selected == p {
		return false
	}
	if s := a.selected; s != nil && a.inListLocked(s) && s.prio >= p.prio && !a.lite {
		return false // a better pair of this generation is selected already
	}
	now := time.Now()
	a.selected = p
	a.nominating = nil
	a.lastConsent = now
	a.nextConsent = now.Add(consentJitter())
	a.consentLost.Store(false)
	return true
}

// applySelected makes the selected pair the flow's media path and
// announces it (EventICESelected).
func (a *iceState) applySelected(p *candPair) {
	a.useSelected(p)
	a.announceSelected()
}

// announceSelected tells the flow's owner a pair was selected.
func (a *iceState) announceSelected() { a.f.emit(Event{Flow: a.f, Kind: EventICESelected}) }

// useSelected makes the selected pair the flow's media path.
func (a *iceState) useSelected(p *candPair) {
	f := a.f
	dst := p.remote.Addr
	if p.local.path == pathHost {
		a.direct.Store(&dst)
	} else {
		a.direct.Store(nil)
	}
	if f.dst.Load().ap != dst {
		_ = f.SetActiveDestination(dst) // also asks the TURN client for what the relay needs
	}
	f.log.Info("ice: selected", "local", p.local.Addr, "type", p.local.Type, "remote", dst)
}

// close stops the worker and waits for it.
func (a *iceState) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.timer.Stop()
	a.wg.Wait()
}
