package flow

import (
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/pion/stun/v2"
	"github.com/reflow-go/reflow/internal/stunx"
)

// iceInbound takes a STUN message from a peer (not from the flow's NAT
// server), on the goroutine that reads the socket. It validates before it
// looks at anything else, never waits and never runs a TURN transaction.
func (f *Flow) iceInbound(a *iceState, pkt *packet) {
	m, err := stunx.Decode(pkt.buf[:pkt.n])
	if err != nil {
		if errors.Is(err, stunx.ErrPanic) {
			f.stats.dropped[DropPanic].Add(1)
		} else {
			f.stats.dropped[DropMalformed].Add(1)
		}
		return
	}
	if m.Type.Method != stun.MethodBinding {
		f.stats.dropped[DropUnexpected].Add(1)
		return
	}
	switch m.Type.Class {
	case stun.ClassRequest:
		a.onRequest(m, pkt)
	case stun.ClassSuccessResponse, stun.ClassErrorResponse:
		a.onResponse(m, pkt)
	default: // a Binding indication: the peer's keep-alive, nothing to do
	}
}

func pathOf(pkt *packet) icePath {
	if pkt.relayed {
		return pathRelay
	}
	return pathHost
}

// onRequest answers a connectivity check (RFC 8445 §7.3).
func (a *iceState) onRequest(m *stun.Message, pkt *packet) {
	f := a.f
	c := a.creds.Load()
	var fpErr, miErr error
	user, uerr := m.Get(stun.AttrUsername)
	hasMI := m.Contains(stun.AttrMessageIntegrity)
	if perr := stunx.Safe(func() {
		fpErr = stun.Fingerprint.Check(m)
		if fpErr == nil && uerr == nil && hasMI && usernameMatches(string(user), c) {
			miErr = c.integrity.Check(m)
		}
	}); perr != nil {
		f.stats.dropped[DropPanic].Add(1)
		return
	}
	var code stun.ErrorCode
	switch {
	case fpErr != nil:
		f.stats.dropped[DropMalformed].Add(1) // RFC 8445 §7.3: silently discarded
		return
	case uerr != nil || !hasMI:
		code = stun.CodeBadRequest // RFC 8489 §9.1.3
	case !usernameMatches(string(user), c) || miErr != nil:
		code = stun.CodeUnauthorized
	}
	if code != 0 {
		// Unauthenticated: no state, at most a rate-limited error.
		f.stats.dropped[DropAuth].Add(1)
		if a.allowError() {
			a.respond(m, pkt, c, code, false)
		}
		return
	}
	// Authenticated from here on.
	prioV, perr := m.Get(stun.AttrPriority)
	if perr != nil || len(prioV) != 4 {
		f.stats.dropped[DropAuth].Add(1)
		if a.allowError() {
			a.respond(m, pkt, c, stun.CodeBadRequest, true)
		}
		return
	}
	prio := binary.BigEndian.Uint32(prioV)
	var theirTie uint64
	v, err := m.Get(stun.AttrICEControlling)
	theyControl := err == nil && len(v) == 8
	if theyControl {
		theirTie = binary.BigEndian.Uint64(v)
	}
	v, err = m.Get(stun.AttrICEControlled)
	theyControlled := err == nil && len(v) == 8
	if theyControlled && !theyControl {
		theirTie = binary.BigEndian.Uint64(v)
	}
	useCand := m.Contains(stun.AttrUseCandidate)
	path := pathOf(pkt)

	var sel *candPair
	conflict, kick := false, false
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	// Role conflict (RFC 8445 §7.3.1.1).
	switch {
	case a.lite:
		conflict = theyControlled // both controlled: the full agent must switch
	case a.controlling && theyControl:
		if a.tie >= theirTie {
			conflict = true
		} else {
			a.setRoleLocked(false)
		}
	case !a.controlling && theyControlled:
		if a.tie >= theirTie {
			a.setRoleLocked(true)
		} else {
			conflict = true
		}
	}
	if !conflict {
		// Find or learn the pair (RFC 8445 §7.3.1.3, §7.3.1.4).
		var local *localCand
		for _, l := range a.locals {
			if l.path == path && l.Addr.Addr().Is4() == pkt.from.Addr().Is4() {
				local = l
				break
			}
		}
		if local == nil && a.lite { // lite: answer on any path
			local = &localCand{Candidate: Candidate{Type: CandidateHost, Component: int(f.cfg.Component)}, path: path}
		}
		var p *candPair
		if local != nil {
			if a.lite {
				p = &candPair{local: local, remote: &Candidate{Addr: pkt.from, Component: local.Component,
					Type: CandidatePeerReflexive, Priority: prio}}
				if s := a.selected; s != nil && s.remote.Addr == pkt.from && s.local.path == path {
					p = s
				}
			} else {
				var r *Candidate
				for _, x := range a.remotes {
					if x.Addr == pkt.from {
						r = x
						break
					}
				}
				if r == nil {
					r = a.addRemoteLocked(Candidate{Foundation: "prflx" + pkt.from.String(), Component: local.Component,
						Priority: prio, Addr: pkt.from, Type: CandidatePeerReflexive})
				}
				if r != nil {
					p = a.pairLocked(local, r)
				}
			}
		}
		if p != nil {
			if !a.lite {
				a.triggerLocked(p)
				kick = true
			}
			if useCand && !a.controlling {
				switch {
				case a.lite || p.state == pairSucceeded:
					if a.selectLocked(p) {
						sel = p
					}
				default:
					p.useCand = true
				}
			}
		}
	}
	a.mu.Unlock()

	if conflict {
		f.stats.dropped[DropAuth].Add(1)
		if a.allowError() {
			a.respond(m, pkt, c, stun.CodeRoleConflict, true)
		}
		return
	}
	f.stats.iceChecks.Add(1)
	f.log.Debug("ice: check answered", "from", pkt.from, "relayed", pkt.relayed, "use-candidate", useCand)
	if sel != nil {
		a.useSelected(sel) // before the response: the peer may send media at once
	}
	a.respond(m, pkt, c, 0, true)
	if sel != nil {
		// Announced after the response, so that what the owner sends on
		// the news (a DTLS ClientHello) reaches the controlling peer after
		// the response that makes the pair selected there too: before it,
		// a peer whose default path is a TURN relay still being allocated
		// would have no path to answer on.
		a.announceSelected()
	}
	if kick {
		a.kick()
	}
}

// usernameMatches checks USERNAME "ours:theirs" (RFC 8445 §7.2.2).
func usernameMatches(user string, c *iceCreds) bool {
	local, remote, ok := strings.Cut(user, ":")
	return ok && local == c.ufrag && (c.remoteUfrag == "" || remote == c.remoteUfrag)
}

// onResponse takes a response to one of our checks (RFC 8445 §7.2.5).
func (a *iceState) onResponse(m *stun.Message, pkt *packet) {
	f := a.f
	a.mu.Lock()
	t := a.txns[m.TransactionID]
	if t == nil || a.closed {
		a.mu.Unlock()
		f.stats.dropped[DropUnexpected].Add(1)
		return
	}
	var authErr error
	if perr := stunx.Safe(func() {
		if authErr = stun.Fingerprint.Check(m); authErr == nil {
			authErr = t.key.Check(m)
		}
	}); perr != nil || authErr != nil {
		a.mu.Unlock()
		f.stats.dropped[DropAuth].Add(1)
		return
	}
	delete(a.txns, t.id)
	p := t.pair
	f.log.Debug("ice: response", "from", pkt.from, "class", m.Type.Class, "consent", t.consent, "nominate", t.nominate)
	if p.inFlight == t {
		p.inFlight = nil
	}
	var sel *candPair
	kick := false
	now := time.Now()
	switch {
	case t.consent:
		if m.Type.Class == stun.ClassSuccessResponse && pkt.from == p.remote.Addr && pathOf(pkt) == p.local.path {
			a.lastConsent = now
		}
	case m.Type.Class == stun.ClassErrorResponse:
		var ec stun.ErrorCodeAttribute
		_ = stunx.Safe(func() { _ = ec.GetFrom(m) })
		if ec.Code == stun.CodeRoleConflict {
			a.setRoleLocked(!t.controlling)
			p.state = pairWaiting
			a.triggerLocked(p)
			kick = true
		} else if p.state != pairSucceeded {
			p.state = pairFailed
		}
		if a.nominating == p {
			a.nominating = nil
		}
	case pkt.from != p.remote.Addr || pathOf(pkt) != p.local.path:
		p.state = pairFailed // not symmetric (RFC 8445 §7.2.5.2.1)
		if a.nominating == p {
			a.nominating = nil
		}
	default:
		if p.state != pairSucceeded {
			p.state = pairSucceeded
			if a.firstValid.IsZero() {
				a.firstValid = now
			}
			for _, q := range a.pairs { // unfreeze its foundation (§7.2.5.3.3)
				if q.state == pairFrozen && q.found == p.found {
					q.state = pairWaiting
				}
			}
		}
		if (t.nominate && a.controlling) || (!a.controlling && p.useCand) {
			if a.selectLocked(p) {
				sel = p
			}
		}
		if a.selected == p {
			a.lastConsent = now
		}
		kick = true
	}
	a.mu.Unlock()
	if sel != nil {
		a.applySelected(sel)
	}
	if kick {
		a.kick()
	}
}
