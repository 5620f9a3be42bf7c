package testserver

import (
	"encoding/binary"
	"time"

	"github.com/pion/stun/v2"
)

// lifetimeSeconds turns TURNConfig.MaxLifetime into the LIFETIME value in
// seconds (0: no cap).
func lifetimeSeconds(d time.Duration) uint32 {
	switch {
	case d <= 0:
		return 0
	case d < time.Second:
		return 1
	case d > time.Hour:
		return 3600
	}
	return uint32(d / time.Second)
}

// capLifetime returns m (an Allocate or Refresh request) re-encoded with a
// LIFETIME of at most max seconds, re-signed with the user's long-term key,
// or nil when m needs no change or cannot be re-signed (no or wrong
// MESSAGE-INTEGRITY, unknown user or realm: pion then answers it as it is).
// A LIFETIME of 0 (deallocation) is left alone.
func capLifetime(m *stun.Message, max uint32, realm string, keys map[string][]byte) []byte {
	if !m.Contains(stun.AttrMessageIntegrity) {
		return nil
	}
	if v, err := m.Get(stun.AttrLifetime); err == nil && len(v) == 4 {
		if lt := binary.BigEndian.Uint32(v); lt == 0 || lt <= max {
			return nil
		}
	}
	var (
		u stun.Username
		r stun.Realm
	)
	if u.GetFrom(m) != nil || r.GetFrom(m) != nil || r.String() != realm {
		return nil
	}
	key, ok := keys[u.String()]
	if !ok || stun.MessageIntegrity(key).Check(m) != nil {
		return nil
	}
	lifetime := stun.RawAttribute{Type: stun.AttrLifetime, Value: binary.BigEndian.AppendUint32(nil, max)}
	setters := []stun.Setter{stun.NewTransactionIDSetter(m.TransactionID), m.Type}
	added := false
	for _, a := range m.Attributes {
		if a.Type == stun.AttrMessageIntegrity {
			break
		}
		if a.Type == stun.AttrLifetime {
			if !added {
				setters = append(setters, lifetime)
				added = true
			}
			continue
		}
		setters = append(setters, stun.RawAttribute{Type: a.Type, Value: append([]byte(nil), a.Value...)})
	}
	if !added {
		setters = append(setters, lifetime)
	}
	setters = append(setters, stun.MessageIntegrity(key))
	if m.Contains(stun.AttrFingerprint) {
		setters = append(setters, stun.Fingerprint)
	}
	out, err := stun.Build(setters...)
	if err != nil {
		return nil
	}
	return out.Raw
}
