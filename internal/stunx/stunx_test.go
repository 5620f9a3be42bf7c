package stunx

import (
	"encoding/binary"
	"errors"
	"github.com/reflow-go/reflow/internal/leak"
	"net"
	"net/netip"
	"testing"

	"github.com/pion/stun/v2"
)

func TestRFC5769VectorsValidateAndDecode(t *testing.T) {
	leak.Check(t)
	for name, b := range vectors() {
		t.Run(name, func(t *testing.T) {
			if !IsSTUN(b) {
				t.Fatal("IsSTUN = false")
			}
			if err := Validate(b); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			m, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if &m.Raw[0] == &b[0] {
				t.Fatal("Decode did not copy the datagram")
			}
			if name != "request-longterm" {
				if err := stun.Fingerprint.Check(m); err != nil {
					t.Fatalf("fingerprint: %v", err)
				}
			}
		})
	}
}

func TestRFC5769MappedAddress(t *testing.T) {
	leak.Check(t)
	for _, tc := range []struct {
		b    []byte
		want string
	}{
		{rfc5769ResponseIPv4, "192.0.2.1:32853"},
		{rfc5769ResponseIPv6, "[2001:db8:1234:5678:11:2233:4455:6677]:32853"},
	} {
		m, err := Decode(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := MappedAddress(m)
		if err != nil {
			t.Fatal(err)
		}
		if got != netip.MustParseAddrPort(tc.want) {
			t.Fatalf("MappedAddress = %v, want %v", got, tc.want)
		}
	}
	// The long-term request carries credentials that check out.
	m, err := Decode(rfc5769RequestLongTerm)
	if err != nil {
		t.Fatal(err)
	}
	i := stun.NewLongTermIntegrity("\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9", "example.org", "TheMatrIX")
	if err := i.Check(m); err != nil {
		t.Fatalf("integrity: %v", err)
	}
	if _, err := MappedAddress(m); !errors.Is(err, stun.ErrAttributeNotFound) {
		t.Fatalf("MappedAddress of a request: %v, want ErrAttributeNotFound", err)
	}
}

func TestZeroLengthPeerAddressIsRejected(t *testing.T) {
	leak.Check(t)
	b := zeroPeerAddressIndication
	if len(b) != 24 {
		t.Fatalf("packet is %d bytes", len(b))
	}
	// The packet is a syntactically plausible STUN message...
	if !IsSTUN(b) {
		t.Fatal("IsSTUN = false")
	}
	// ...that really does panic in pion (so this test means something).
	err := Safe(func() {
		m := &stun.Message{Raw: append([]byte(nil), b...)}
		if err := m.Decode(); err != nil {
			t.Errorf("pion Decode: %v", err)
			return
		}
		var a stun.XORMappedAddress
		_ = a.GetFromAs(m, stun.AttrXORPeerAddress)
	})
	if !errors.Is(err, ErrPanic) {
		t.Fatalf("pion on the raw packet: %v, want a recovered panic", err)
	}
	if err := Validate(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Validate = %v, want ErrMalformed", err)
	}
	if m, err := Decode(b); err == nil || m != nil {
		t.Fatalf("Decode = %v, %v; want an error", m, err)
	}
}

// withAttr returns a message of type typ with one attribute.
func withAttr(typ uint16, attr uint16, v []byte) []byte {
	padded := (len(v) + 3) &^ 3
	b := make([]byte, 20+4+padded)
	binary.BigEndian.PutUint16(b[0:2], typ)
	binary.BigEndian.PutUint16(b[2:4], uint16(4+padded))
	binary.BigEndian.PutUint32(b[4:8], magicCookie)
	copy(b[8:20], "abcdefghijkl")
	binary.BigEndian.PutUint16(b[20:22], attr)
	binary.BigEndian.PutUint16(b[22:24], uint16(len(v)))
	copy(b[24:], v)
	return b
}

func TestAddressAttributeShapes(t *testing.T) {
	leak.Check(t)
	v4 := []byte{0, 1, 0x12, 0x34, 1, 2, 3, 4}
	v6 := append([]byte{0, 2, 0x12, 0x34}, make([]byte, 16)...)
	for _, attr := range []uint16{0x0001, 0x0012, 0x0016, 0x0020, 0x8020, 0x8023, 0x802B, 0x802C} {
		good := [][]byte{v4, v6}
		bad := [][]byte{
			{}, {0}, {0, 1}, {0, 1, 0, 0}, v4[:7], v6[:19],
			{0, 2, 0x12, 0x34, 1, 2, 3, 4},                        // IPv6 family, IPv4 length
			append([]byte{0, 1, 0x12, 0x34}, make([]byte, 16)...), // IPv4 family, IPv6 length
			{0, 3, 0x12, 0x34, 1, 2, 3, 4},                        // unknown family
			{1, 1, 0x12, 0x34, 1, 2, 3, 4},                        // reserved byte set
			append(append([]byte{}, v4...), 0),                    // one byte too many
		}
		for _, v := range good {
			b := withAttr(0x0101, attr, v)
			if err := Validate(b); err != nil {
				t.Errorf("attr %#04x len %d: Validate = %v", attr, len(v), err)
			}
			if _, err := Decode(b); err != nil {
				t.Errorf("attr %#04x len %d: Decode = %v", attr, len(v), err)
			}
		}
		for _, v := range bad {
			b := withAttr(0x0101, attr, v)
			if err := Validate(b); !errors.Is(err, ErrMalformed) {
				t.Errorf("attr %#04x value %x: Validate = %v, want ErrMalformed", attr, v, err)
			}
			if _, err := Decode(b); err == nil {
				t.Errorf("attr %#04x value %x: Decode accepted it", attr, v)
			}
		}
	}
}

func TestIntegrityAndFingerprintShapes(t *testing.T) {
	leak.Check(t)
	if err := Validate(withAttr(0x0001, 0x0008, make([]byte, 19))); !errors.Is(err, ErrMalformed) {
		t.Errorf("short MESSAGE-INTEGRITY: %v", err)
	}
	if err := Validate(withAttr(0x0001, 0x8028, make([]byte, 3))); !errors.Is(err, ErrMalformed) {
		t.Errorf("short FINGERPRINT: %v", err)
	}
	// FINGERPRINT followed by another attribute.
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint, stun.NewSoftware("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(m.Raw); !errors.Is(err, ErrMalformed) {
		t.Errorf("FINGERPRINT not last: %v", err)
	}
}

func TestTruncationsAreRejected(t *testing.T) {
	leak.Check(t)
	all := vectors()
	req, err := NewBindingRequest()
	if err != nil {
		t.Fatal(err)
	}
	all["binding-request"] = req.Raw
	for name, b := range all {
		for i := range len(b) {
			cut := append([]byte(nil), b[:i]...)
			if IsSTUN(cut) {
				t.Errorf("%s[:%d]: IsSTUN = true", name, i)
			}
			if err := Validate(cut); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s[:%d]: Validate = %v", name, i, err)
			}
			if _, err := Decode(cut); err == nil {
				t.Errorf("%s[:%d]: Decode accepted it", name, i)
			}
		}
	}
}

func TestTruncatedBodyWithFixedLength(t *testing.T) {
	leak.Check(t)
	// Cutting inside an attribute and fixing the header length still leaves
	// an attribute that overruns the message.
	b := append([]byte(nil), rfc5769ResponseIPv4...)
	for i := 24; i < len(b); i += 4 {
		cut := append([]byte(nil), b[:i]...)
		binary.BigEndian.PutUint16(cut[2:4], uint16(i-20))
		// Attribute boundaries of this vector: 20, 36 (SOFTWARE), 48 (XOR), 72 (MI), 80.
		boundary := i == 36 || i == 48 || i == 72
		err := Validate(cut)
		if boundary && err != nil {
			t.Errorf("[:%d] at an attribute boundary: %v", i, err)
		}
		if !boundary && !errors.Is(err, ErrMalformed) {
			t.Errorf("[:%d] inside an attribute: Validate = %v", i, err)
		}
	}
}

func TestIsSTUN(t *testing.T) {
	leak.Check(t)
	base := append([]byte(nil), rfc5769ResponseIPv4...)
	for _, tc := range []struct {
		name string
		mod  func(b []byte) []byte
		want bool
	}{
		{"valid", func(b []byte) []byte { return b }, true},
		{"first byte 4", func(b []byte) []byte { b[0] = 4; return b }, false},
		{"DTLS", func(b []byte) []byte { b[0] = 22; return b }, false},
		{"RTP", func(b []byte) []byte { b[0] = 0x80; return b }, false},
		{"bad cookie", func(b []byte) []byte { b[4] ^= 1; return b }, false},
		{"length not multiple of 4", func(b []byte) []byte { b[3]++; return b }, false},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }, false},
		{"trailing word", func(b []byte) []byte { return append(b, 0, 0, 0, 0) }, false},
		{"header only", func(b []byte) []byte { b = b[:20]; b[2], b[3] = 0, 0; return b }, true},
	} {
		b := tc.mod(append([]byte(nil), base...))
		if got := IsSTUN(b); got != tc.want {
			t.Errorf("%s: IsSTUN = %v, want %v", tc.name, got, tc.want)
		}
		if !tc.want {
			if err := Validate(b); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: Validate = %v", tc.name, err)
			}
		}
	}
}

func TestMappedAddressFallbackAndUnmap(t *testing.T) {
	leak.Check(t)
	// MAPPED-ADDRESS only.
	m, err := stun.Build(stun.TransactionID, stun.BindingSuccess,
		&stun.MappedAddress{IP: net.ParseIP("198.51.100.7").To4(), Port: 4000})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Decode(m.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := MappedAddress(m2); err != nil || got != netip.MustParseAddrPort("198.51.100.7:4000") {
		t.Fatalf("MAPPED-ADDRESS: %v, %v", got, err)
	}
	// Both: XOR-MAPPED-ADDRESS wins.
	m, err = stun.Build(stun.TransactionID, stun.BindingSuccess,
		&stun.MappedAddress{IP: net.ParseIP("198.51.100.7").To4(), Port: 4000},
		&stun.XORMappedAddress{IP: net.ParseIP("203.0.113.9").To4(), Port: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := MappedAddress(m); err != nil || got != netip.MustParseAddrPort("203.0.113.9:5000") {
		t.Fatalf("both: %v, %v", got, err)
	}
	// An IPv4-mapped IPv6 address in an IPv6-family attribute is unmapped.
	m = &stun.Message{TransactionID: stun.NewTransactionID()}
	m.Type = stun.BindingSuccess
	m.WriteHeader()
	v := make([]byte, 20)
	binary.BigEndian.PutUint16(v[0:2], 2)
	binary.BigEndian.PutUint16(v[2:4], 6000) // MAPPED-ADDRESS: not XORed
	copy(v[4:], net.ParseIP("::ffff:192.0.2.44").To16())
	m.Add(stun.AttrMappedAddress, v)
	m2, err = Decode(m.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := MappedAddress(m2); err != nil || got != netip.MustParseAddrPort("192.0.2.44:6000") {
		t.Fatalf("mapped v6: %v, %v", got, err)
	}
	// A message built without Validate (never do this) does not panic.
	bad := &stun.Message{Raw: append([]byte(nil), withAttr(0x0101, 0x0020, nil)...)}
	if err := bad.Decode(); err != nil {
		t.Fatal(err)
	}
	if _, err := MappedAddress(bad); !errors.Is(err, ErrPanic) && !errors.Is(err, ErrMalformed) {
		t.Fatalf("zero-length XOR-MAPPED-ADDRESS: %v", err)
	}
	if _, err := MappedAddress(nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("nil: %v", err)
	}
}

func TestBuilders(t *testing.T) {
	leak.Check(t)
	req, err := NewBindingRequest()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(req.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != stun.BindingRequest {
		t.Fatalf("type %v", m.Type)
	}
	var sw stun.Software
	if err := sw.GetFrom(m); err != nil || sw.String() != "reflow-go" {
		t.Fatalf("SOFTWARE %q, %v", sw, err)
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		t.Fatal(err)
	}
	ind, err := NewBindingIndication()
	if err != nil {
		t.Fatal(err)
	}
	m, err = Decode(ind.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != stun.NewType(stun.MethodBinding, stun.ClassIndication) {
		t.Fatalf("type %v", m.Type)
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		t.Fatal(err)
	}
	again, err := NewBindingRequest()
	if err != nil {
		t.Fatal(err)
	}
	if again.TransactionID == req.TransactionID {
		t.Fatal("transaction IDs repeat")
	}
}

func TestSafe(t *testing.T) {
	leak.Check(t)
	if err := Safe(func() {}); err != nil {
		t.Fatal(err)
	}
	sentinel := errors.New("boom")
	err := Safe(func() { panic(sentinel) })
	if !errors.Is(err, ErrPanic) || !errors.Is(err, sentinel) {
		t.Fatalf("error panic: %v", err)
	}
	err = Safe(func() { panic("text") })
	if !errors.Is(err, ErrPanic) {
		t.Fatalf("string panic: %v", err)
	}
	err = Safe(func() {
		var s []byte
		_ = s[:2]
	})
	if !errors.Is(err, ErrPanic) {
		t.Fatalf("runtime panic: %v", err)
	}
	var re interface{ RuntimeError() }
	if !errors.As(err, &re) {
		t.Fatalf("runtime error not wrapped: %v", err)
	}
}
