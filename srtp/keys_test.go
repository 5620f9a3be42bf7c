package srtp_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/reflow-go/reflow/srtp"
)

func TestGenerateKeys(t *testing.T) {
	for _, s := range srtp.Suites() {
		a, err := srtp.GenerateKeys(s)
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		b, _ := srtp.GenerateKeys(s)
		if err := a.Validate(); err != nil || a.Suite != s {
			t.Errorf("%v: generated keys invalid: %v", s, err)
		}
		if len(a.Key) != s.KeyLen() || len(a.Salt) != s.SaltLen() || a.MKI != nil || a.Lifetime != 0 {
			t.Errorf("%v: %d/%d bytes, MKI %x, lifetime %d", s, len(a.Key), len(a.Salt), a.MKI, a.Lifetime)
		}
		if bytes.Equal(a.Key, b.Key) || bytes.Equal(a.Salt, b.Salt) || a.Equal(b) {
			t.Errorf("%v: two generated keys are equal", s)
		}
		// Appending to the key must not overwrite the salt.
		salt := bytes.Clone(a.Salt)
		_ = append(a.Key, 0xff)
		if !bytes.Equal(salt, a.Salt) {
			t.Errorf("%v: key and salt share capacity", s)
		}
	}
	if _, err := srtp.GenerateKeys(0x0005); !errors.Is(err, srtp.ErrUnknownSuite) {
		t.Errorf("GenerateKeys(NULL profile) = %v, want ErrUnknownSuite", err)
	}
}

func TestKeysValidate(t *testing.T) {
	good := testKeys(srtp.AESCM128HMACSHA1_80, 1)
	mod := func(f func(*srtp.Keys)) srtp.Keys {
		k := good
		f(&k)
		return k
	}
	for _, tc := range []struct {
		name string
		k    srtp.Keys
		want error
	}{
		{"good", good, nil},
		{"MKI 128", mod(func(k *srtp.Keys) { k.MKI = make([]byte, 128) }), nil},
		{"lifetime 2^48", mod(func(k *srtp.Keys) { k.Lifetime = 1 << 48 }), nil},
		{"zero", srtp.Keys{}, srtp.ErrUnknownSuite},
		{"NULL suite", mod(func(k *srtp.Keys) { k.Suite = 5 }), srtp.ErrUnknownSuite},
		{"short key", mod(func(k *srtp.Keys) { k.Key = k.Key[:15] }), srtp.ErrKeyLength},
		{"256 suite, 128 key", mod(func(k *srtp.Keys) { k.Suite = srtp.AES256CMHMACSHA1_80 }), srtp.ErrKeyLength},
		{"GCM salt length", mod(func(k *srtp.Keys) { k.Suite = srtp.AEADAES128GCM }), srtp.ErrKeyLength},
		{"no salt", mod(func(k *srtp.Keys) { k.Salt = nil }), srtp.ErrKeyLength},
		{"MKI 129", mod(func(k *srtp.Keys) { k.MKI = make([]byte, 129) }), srtp.ErrUnsupportedParam},
		{"lifetime 2^48+1", mod(func(k *srtp.Keys) { k.Lifetime = 1<<48 + 1 }), srtp.ErrUnsupportedParam},
	} {
		err := tc.k.Validate()
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: Validate() = %v, want %v", tc.name, err, tc.want)
		}
		_, encErr := srtp.NewEncrypter(tc.k)
		_, decErr := srtp.NewDecrypter(tc.k, 0)
		if (err == nil) != (encErr == nil) || (err == nil) != (decErr == nil) {
			t.Errorf("%s: Validate %v but NewEncrypter %v, NewDecrypter %v", tc.name, err, encErr, decErr)
		}
	}
}

func TestKeysStringHidesKey(t *testing.T) {
	k := testKeys(srtp.AESCM128HMACSHA1_80, 0xAB)
	k.MKI = []byte{0, 1}
	k.Lifetime = 1 << 20
	for _, s := range []string{k.String(), fmt.Sprintf("%v", k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), fmt.Sprint([]srtp.Keys{k})} {
		if strings.Contains(strings.ToLower(s), fmt.Sprintf("%x", k.Key[:4])) || strings.Contains(s, fmt.Sprint(k.Key[0])+" ") {
			t.Errorf("key material in %q", s)
		}
		if !strings.Contains(s, "AES_CM_128_HMAC_SHA1_80") {
			t.Errorf("suite missing from %q", s)
		}
	}
	if got, want := k.String(), "srtp.Keys{AES_CM_128_HMAC_SHA1_80 key:16B salt:14B mki:0001 lifetime:1048576}"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestKeysOverhead(t *testing.T) {
	for _, s := range srtp.Suites() {
		for _, mki := range [][]byte{nil, {7}, bytes.Repeat([]byte{9}, srtp.MaxMKILen)} {
			k := testKeys(s, 3)
			k.MKI = mki
			enc, _ := pair(t, k)
			rtp := rtpPacket(1, 1, 160)
			rtcp := rtcpPacket(1, 1)
			a, err := enc.ProtectRTP(nil, rtp)
			if err != nil {
				t.Fatal(err)
			}
			b, err := enc.ProtectRTCP(nil, rtcp)
			if err != nil {
				t.Fatal(err)
			}
			if len(a)-len(rtp) != k.RTPOverhead() || len(b)-len(rtcp) != k.RTCPOverhead() {
				t.Errorf("%v MKI %d: overhead %d/%d, reported %d/%d", s, len(mki), len(a)-len(rtp), len(b)-len(rtcp), k.RTPOverhead(), k.RTCPOverhead())
			}
			if k.RTPOverhead() > srtp.MaxOverhead || k.RTCPOverhead() > srtp.MaxOverhead {
				t.Errorf("%v MKI %d: overhead above MaxOverhead %d", s, len(mki), srtp.MaxOverhead)
			}
		}
	}
	k := testKeys(srtp.AEADAES256GCM, 1)
	k.MKI = make([]byte, srtp.MaxMKILen)
	if k.RTCPOverhead() != srtp.MaxOverhead {
		t.Errorf("MaxOverhead %d is not the largest overhead %d", srtp.MaxOverhead, k.RTCPOverhead())
	}
}
