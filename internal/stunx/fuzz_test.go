package stunx

import (
	"testing"

	"github.com/pion/stun/v2"
)

// FuzzDecode checks that Decode never panics, that whatever Validate accepts
// Decode accepts, and that pion's attribute getters do not panic on a message
// that passed Validate (they are called here without recover, so a panic
// fails the fuzz run).
func FuzzDecode(f *testing.F) {
	for _, b := range vectors() {
		f.Add(b)
	}
	f.Add(zeroPeerAddressIndication)
	f.Add(withAttr(0x0101, 0x0020, []byte{0, 1, 0x12, 0x34, 1, 2, 3, 4}))
	f.Add(withAttr(0x0017, 0x0012, []byte{0, 2}))
	f.Add(withAttr(0x0111, 0x0009, []byte{0, 0, 4, 1, 'x'}))
	f.Add([]byte{})
	f.Add(make([]byte, 20))
	if req, err := NewBindingRequest(); err == nil {
		f.Add(req.Raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		verr := Validate(b)
		m, derr := Decode(b)
		if verr != nil {
			if derr == nil || m != nil {
				t.Fatalf("Validate rejected (%v) but Decode accepted", verr)
			}
			return
		}
		if !IsSTUN(b) {
			t.Fatal("Validate accepted what IsSTUN rejects")
		}
		if derr != nil {
			t.Fatalf("Validate accepted but Decode failed: %v", derr)
		}
		// Getters without any recover.
		for _, at := range []stun.AttrType{stun.AttrXORMappedAddress, stun.AttrXORPeerAddress, stun.AttrXORRelayedAddress} {
			var a stun.XORMappedAddress
			_ = a.GetFromAs(m, at)
		}
		for _, at := range []stun.AttrType{stun.AttrMappedAddress, stun.AttrAlternateServer, stun.AttrResponseOrigin, stun.AttrOtherAddress} {
			var a stun.MappedAddress
			_ = a.GetFromAs(m, at)
		}
		var ec stun.ErrorCodeAttribute
		_ = ec.GetFrom(m)
		var ua stun.UnknownAttributes
		_ = ua.GetFrom(m)
		var u stun.Username
		_ = u.GetFrom(m)
		var n stun.Nonce
		_ = n.GetFrom(m)
		var r stun.Realm
		_ = r.GetFrom(m)
		var sw stun.Software
		_ = sw.GetFrom(m)
		_ = stun.Fingerprint.Check(m)
		_ = stun.NewShortTermIntegrity("pw").Check(m)
		if _, err := MappedAddress(m); err != nil && (m.Contains(stun.AttrXORMappedAddress) || m.Contains(stun.AttrMappedAddress)) {
			t.Fatalf("MappedAddress on a validated message: %v", err)
		}
	})
}
