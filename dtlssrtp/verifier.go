package dtlssrtp

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
)

// Verifier pins the peer's certificate to the fingerprint(s) from its SDP.
// Handshake calls VerifyPeer with the certificate the peer presents; the
// fingerprint may be set before or after that (the SDP answer can arrive
// after the handshake, RFC 5763 §6.7.1). Use one Verifier per DTLS
// association (Handshake binds it to the Session it makes). The zero value
// is ready to use: it has no pin yet. All methods are safe for concurrent
// use.
//
// Once a mismatch has been seen the Verifier stays failed: Verified keeps
// returning false, and a Session bound to it has been ended with
// ErrFingerprintMismatch.
type Verifier struct {
	mu     sync.Mutex
	pins   []Fingerprint
	peer   []byte
	failed error
	onFail func(error) // set while a Session is bound
}

// SetFingerprint pins the peer's certificate to fp; it replaces any earlier
// pin. It is SetFingerprints with one fingerprint.
func (v *Verifier) SetFingerprint(fp Fingerprint) error {
	return v.SetFingerprints(fp)
}

// SetFingerprints pins the peer's certificate to the given fingerprints, one
// per a=fingerprint line of the peer's SDP, replacing any earlier pins. As
// RFC 8122 §5 says, only the fingerprints with the strongest hash function
// among them are used, and the certificate must match one of those.
//
// An invalid fingerprint or an empty list gives ErrInvalidFingerprint and
// leaves the Verifier unchanged. If the peer's certificate is already known
// (the handshake has got that far), it is checked now: on a mismatch the
// error matches ErrFingerprintMismatch, the Verifier is failed, and a
// Session made by Handshake with this Verifier is ended (its Err then
// matches ErrFingerprintMismatch) before SetFingerprints returns.
func (v *Verifier) SetFingerprints(fps ...Fingerprint) error {
	if len(fps) == 0 {
		return wrapErr([]error{ErrInvalidFingerprint}, "no fingerprint", nil)
	}
	pins := make([]Fingerprint, 0, len(fps))
	for _, fp := range fps {
		if !fp.valid() {
			return wrapErr([]error{ErrInvalidFingerprint}, fmt.Sprintf("%q", fp.String()), nil)
		}
		name, _, _ := lookupHash(fp.Hash)
		pins = append(pins, Fingerprint{Hash: name, Value: bytes.Clone(fp.Value)})
	}
	v.mu.Lock()
	v.pins = pins
	if v.peer == nil {
		v.mu.Unlock()
		return nil
	}
	err := v.checkLocked()
	var hook func(error)
	if err != nil {
		hook = v.onFail
		v.onFail = nil
	}
	v.mu.Unlock()
	if hook != nil {
		hook(err)
	}
	return err
}

// VerifyPeer checks the peer's DER-encoded leaf certificate; Handshake calls
// it from pion's VerifyPeerCertificate callback. With a pin set it compares
// and returns an error matching ErrFingerprintMismatch on a mismatch; without
// one it records the certificate and accepts it, leaving the check to a
// later SetFingerprint. An empty certDER gives ErrNoCertificate.
func (v *Verifier) VerifyPeer(certDER []byte) error {
	if len(certDER) == 0 {
		return ErrNoCertificate
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.peer = bytes.Clone(certDER)
	if v.pins == nil {
		return nil
	}
	return v.checkLocked()
}

// checkLocked compares v.peer with the strongest pins and records a failure.
func (v *Verifier) checkLocked() error {
	if v.failed != nil {
		return v.failed
	}
	best := -1
	for _, p := range v.pins {
		best = max(best, hashRank(p.Hash))
	}
	for _, p := range v.pins {
		if hashRank(p.Hash) == best && p.Matches(v.peer) {
			return nil
		}
	}
	got := ""
	for _, p := range v.pins {
		if hashRank(p.Hash) == best {
			if fp, err := FingerprintOf(v.peer, p.Hash); err == nil {
				got = fp.String()
			}
			break
		}
	}
	v.failed = wrapErr([]error{ErrFingerprintMismatch},
		fmt.Sprintf("peer certificate has %s", got), nil)
	return v.failed
}

// Verified reports whether the peer's certificate is known and matches the
// pinned fingerprint(s). It is false before the handshake has seen the
// certificate, while no fingerprint is set, and after any mismatch.
func (v *Verifier) Verified() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.peer != nil && v.pins != nil && v.failed == nil
}

// PeerCertificate returns a copy of the peer's DER-encoded leaf certificate,
// or nil while it is not known.
func (v *Verifier) PeerCertificate() []byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	return bytes.Clone(v.peer)
}

// Fingerprints returns a copy of the pinned fingerprints (nil when none).
func (v *Verifier) Fingerprints() []Fingerprint {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := slices.Clone(v.pins)
	for i := range out {
		out[i].Value = bytes.Clone(out[i].Value)
	}
	return out
}

// bind attaches a failure hook (the Session's) unless the Verifier has
// already failed, in which case it returns that failure.
func (v *Verifier) bind(onFail func(error)) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.failed != nil {
		return v.failed
	}
	v.onFail = onFail
	return nil
}

// unbind removes the failure hook.
func (v *Verifier) unbind() {
	v.mu.Lock()
	v.onFail = nil
	v.mu.Unlock()
}
