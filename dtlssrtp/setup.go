package dtlssrtp

import (
	"fmt"
	"strings"
)

// Setup is an SDP a=setup value (RFC 4145 §4, used for DTLS-SRTP by
// RFC 5763 §5). The zero value is not a valid role.
type Setup int

// The setup roles of RFC 4145.
const (
	// SetupActpass means the endpoint can take either role (offers use it).
	SetupActpass Setup = iota + 1
	// SetupActive means the endpoint initiates the connection (DTLS client).
	SetupActive
	// SetupPassive means the endpoint accepts the connection (DTLS server).
	SetupPassive
	// SetupHoldconn means the endpoint does not want a connection now.
	SetupHoldconn
)

var setupNames = [...]string{
	SetupActpass:  "actpass",
	SetupActive:   "active",
	SetupPassive:  "passive",
	SetupHoldconn: "holdconn",
}

// ParseSetup parses an a=setup value ("actpass", "active", "passive",
// "holdconn"), case-insensitively. A leading "a=setup:" or "setup:" and
// surrounding white space are accepted. Anything else gives ErrInvalidSetup.
// An absent a=setup attribute is not this function's business: RFC 4145
// says to assume "active" for an offer and RFC 5763 requires answers to
// carry one.
func ParseSetup(s string) (Setup, error) {
	t := strings.TrimSpace(s)
	for _, p := range []string{"a=setup:", "setup:"} {
		if len(t) >= len(p) && strings.EqualFold(t[:len(p)], p) {
			t = strings.TrimSpace(t[len(p):])
			break
		}
	}
	for v, name := range setupNames {
		if name != "" && strings.EqualFold(t, name) {
			return Setup(v), nil
		}
	}
	return 0, wrapErr([]error{ErrInvalidSetup}, fmt.Sprintf("%q", s), nil)
}

// String returns the SDP token ("actpass", "active", "passive", "holdconn"),
// or "Setup(n)" for an invalid value.
func (s Setup) String() string {
	if s.valid() {
		return setupNames[s]
	}
	return fmt.Sprintf("Setup(%d)", int(s))
}

func (s Setup) valid() bool { return s >= SetupActpass && s <= SetupHoldconn }

// Answer returns the role an answerer takes for the offered role offer, as
// RFC 5763 §5 recommends: actpass -> active (the answerer should start the
// handshake), active -> passive, passive -> active, holdconn -> holdconn.
// An invalid offer gives ErrInvalidSetup.
func (offer Setup) Answer() (Setup, error) {
	switch offer {
	case SetupActpass:
		return SetupActive, nil
	case SetupActive:
		return SetupPassive, nil
	case SetupPassive:
		return SetupActive, nil
	case SetupHoldconn:
		return SetupHoldconn, nil
	}
	return 0, wrapErr([]error{ErrInvalidSetup}, fmt.Sprintf("offer %v", offer), nil)
}

// IsClient reports whether this endpoint is the DTLS client, given its own
// negotiated a=setup value (local) and the peer's (remote): the active side
// is the client (RFC 5763 §5). local may be actpass when we offered actpass;
// the answer's role then decides. Combinations that leave no connection or
// give both sides the same role (active/active, passive/passive,
// actpass/actpass, anything with holdconn) give ErrInvalidSetup.
func IsClient(local, remote Setup) (bool, error) {
	bad := func() (bool, error) {
		return false, wrapErr([]error{ErrInvalidSetup},
			fmt.Sprintf("local %v, remote %v", local, remote), nil)
	}
	if !local.valid() || !remote.valid() {
		return bad()
	}
	switch {
	case local == SetupActive && (remote == SetupPassive || remote == SetupActpass):
		return true, nil
	case local == SetupPassive && (remote == SetupActive || remote == SetupActpass):
		return false, nil
	case local == SetupActpass && remote == SetupActive:
		return false, nil
	case local == SetupActpass && remote == SetupPassive:
		return true, nil
	}
	return bad()
}

// RoleFor returns the DTLS role matching IsClient(local, remote): Client
// when we are the active side, Server when we are the passive side.
func RoleFor(local, remote Setup) (Role, error) {
	c, err := IsClient(local, remote)
	if err != nil {
		return 0, err
	}
	if c {
		return Client, nil
	}
	return Server, nil
}
