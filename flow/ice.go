package flow

import (
	"crypto/rand"
	"errors"
	"net"
	"strings"

	"github.com/pion/stun/v2"
	"github.com/reflow-go/reflow/internal/stunx"
)

// ICE-lite (RFC 8445 §2.5): a flow with ICE credentials answers the STUN
// connectivity checks of a full ICE agent on the other side, which needs the
// answers before it sends media, and takes the nominated candidate pair's
// address (USE-CANDIDATE) as its active destination. A lite agent sends no
// checks of its own and is always the controlled agent.

// ErrInvalidICECredentials is returned for ICE credentials that RFC 8445 §5.3
// does not allow (ufrag under 4 or pwd under 22 ice-chars).
var ErrInvalidICECredentials = errors.New("flow: invalid ICE credentials")

type iceState struct {
	ufrag, remoteUfrag string
	integrity          stun.MessageIntegrity
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

// SetICECredentials makes the flow an ICE-lite responder with our a=ice-ufrag
// and a=ice-pwd and the peer's a=ice-ufrag (empty accepts any). Checks must
// carry USERNAME "localUfrag:remoteUfrag", MESSAGE-INTEGRITY keyed with
// localPwd and FINGERPRINT; they are answered from the address they were sent
// to (through the relay in TURN modes). An empty localUfrag turns it off.
func (f *Flow) SetICECredentials(localUfrag, localPwd, remoteUfrag string) error {
	if f.closed.Load() {
		return ErrClosed
	}
	if localUfrag == "" {
		f.ice.Store(nil)
		return nil
	}
	if !validICE(localUfrag, 4) || !validICE(localPwd, 22) || (remoteUfrag != "" && !validICE(remoteUfrag, 4)) {
		return ErrInvalidICECredentials
	}
	f.ice.Store(&iceState{ufrag: localUfrag, remoteUfrag: remoteUfrag, integrity: stun.NewShortTermIntegrity(localPwd)})
	return nil
}

// iceInbound answers a connectivity check from a peer (RFC 8445 §7.3).
func (f *Flow) iceInbound(ice *iceState, pkt *packet) {
	m, err := stunx.Decode(pkt.buf[:pkt.n])
	if err != nil {
		if errors.Is(err, stunx.ErrPanic) {
			f.stats.dropped[DropPanic].Add(1)
		} else {
			f.stats.dropped[DropMalformed].Add(1)
		}
		return
	}
	if m.Type != stun.BindingRequest {
		f.stats.dropped[DropUnexpected].Add(1) // a lite agent sends no checks: no responses expected
		return
	}
	var code stun.ErrorCode
	var fpErr, miErr error
	user, uerr := m.Get(stun.AttrUsername)
	if perr := stunx.Safe(func() {
		fpErr = stun.Fingerprint.Check(m)
		if uerr == nil && m.Contains(stun.AttrMessageIntegrity) {
			miErr = ice.integrity.Check(m)
		}
	}); perr != nil {
		f.stats.dropped[DropPanic].Add(1)
		return
	}
	withMI := false
	switch {
	case fpErr != nil:
		f.stats.dropped[DropMalformed].Add(1) // RFC 8445 §7.3: silently discarded
		return
	case uerr != nil || !m.Contains(stun.AttrMessageIntegrity):
		code = stun.CodeBadRequest // RFC 8489 §9.1.3
	case !usernameMatches(string(user), ice):
		code = stun.CodeUnauthorized
	case miErr != nil:
		code = stun.CodeUnauthorized
	case !m.Contains(stun.AttrPriority):
		code, withMI = stun.CodeBadRequest, true
	case m.Contains(stun.AttrICEControlled):
		code, withMI = stun.CodeRoleConflict, true // both controlled: the full agent must switch (§7.3.1.1)
	}
	if code != 0 {
		f.stats.dropped[DropAuth].Add(1)
		f.iceRespond(m, pkt, ice, code, withMI)
		return
	}
	f.stats.iceChecks.Add(1)
	f.iceRespond(m, pkt, ice, 0, true)
	if m.Contains(stun.AttrUseCandidate) {
		f.nominate(pkt)
	}
}

func usernameMatches(user string, ice *iceState) bool {
	local, remote, ok := strings.Cut(user, ":")
	return ok && local == ice.ufrag && (ice.remoteUfrag == "" || remote == ice.remoteUfrag)
}

// iceRespond sends a success (code 0) or error response to a check.
func (f *Flow) iceRespond(req *stun.Message, pkt *packet, ice *iceState, code stun.ErrorCode, withMI bool) {
	setters := []stun.Setter{req} // copies the transaction ID
	if code == 0 {
		setters = append(setters, stun.BindingSuccess,
			&stun.XORMappedAddress{IP: pkt.from.Addr().AsSlice(), Port: int(pkt.from.Port())})
	} else {
		setters = append(setters, stun.NewType(stun.MethodBinding, stun.ClassErrorResponse), code)
	}
	setters = append(setters, stun.NewSoftware(stunx.Software))
	if withMI {
		setters = append(setters, ice.integrity)
	}
	setters = append(setters, stun.Fingerprint)
	res, err := stun.Build(setters...)
	if err != nil {
		f.log.Debug("ice: building a response failed", "err", err)
		return
	}
	if _, err := f.sendRaw(res.Raw, pkt.from); err != nil && !f.closed.Load() {
		f.log.Debug("ice: sending a response failed", "to", pkt.from, "err", err)
	}
}

// nominate makes the source of a nominating check the active destination.
func (f *Flow) nominate(pkt *packet) {
	for {
		d := f.dst.Load()
		if d.ap == pkt.from {
			return
		}
		nd := &destination{ap: pkt.from, addr: net.UDPAddrFromAddrPort(pkt.from)}
		if f.dst.CompareAndSwap(d, nd) {
			f.log.Info("ice: nominated", "addr", pkt.from)
			f.onDestination(pkt.from)
			return
		}
	}
}
