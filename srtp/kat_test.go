package srtp_test

// Known-answer tests against an independent SRTP implementation written here
// from RFC 3711 and RFC 7714 with crypto/aes, crypto/cipher, crypto/hmac and
// crypto/sha1 only. The reference is first checked against the RFCs' own
// vectors (RFC 3711 Appendix B.2 and B.3, RFC 7714 §16 and §17); pion's
// public API takes master keys only, so those session-key vectors cannot be
// fed to it directly. Then the Encrypter's output is compared byte for byte
// with the reference for master keys, and the Decrypter must accept the
// reference's packets.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/reflow-go/reflow/srtp"
)

func isAEAD(s srtp.Suite) bool { return s == srtp.AEADAES128GCM || s == srtp.AEADAES256GCM }

// refKDF is the AES-CM PRF of RFC 3711 §4.3.1/§4.3.3 with a key derivation
// rate of 0: x = (label << 48) XOR master_salt, keystream from IV = x * 2^16.
// A 96-bit GCM master salt occupies the same leading bytes (RFC 7714 §11,
// as libsrtp does).
func refKDF(masterKey, masterSalt []byte, label byte, n int) []byte {
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		panic(err)
	}
	iv := make([]byte, 16)
	copy(iv, masterSalt)
	iv[7] ^= label
	out := make([]byte, n)
	cipher.NewCTR(block, iv).XORKeyStream(out, out)
	return out
}

// refSession holds session keys for SRTP or SRTCP.
type refSession struct{ key, auth, salt []byte }

// refDerive derives the SRTP (rtcp false) or SRTCP session keys.
func refDerive(k srtp.Keys, rtcp bool) refSession {
	var base byte
	if rtcp {
		base = 3
	}
	rs := refSession{
		key:  refKDF(k.Key, k.Salt, base+0, k.Suite.KeyLen()),
		salt: refKDF(k.Key, k.Salt, base+2, k.Suite.SaltLen()),
	}
	if !isAEAD(k.Suite) {
		rs.auth = refKDF(k.Key, k.Salt, base+1, 20)
	}
	return rs
}

// refProtectRTP protects an RTP packet with a 12-byte header (RFC 3711 §3.1,
// §4.1.1, §4.2; RFC 7714 §8).
func refProtectRTP(s srtp.Suite, rs refSession, mki, pkt []byte, roc uint32) []byte {
	hdr, payload := pkt[:12], pkt[12:]
	ssrc := binary.BigEndian.Uint32(pkt[8:])
	seq := binary.BigEndian.Uint16(pkt[2:])
	block, _ := aes.NewCipher(rs.key)
	out := append([]byte(nil), hdr...)
	if isAEAD(s) {
		// IV = (00 00 || SSRC || ROC || SEQ) XOR salt.
		iv := make([]byte, 12)
		binary.BigEndian.PutUint32(iv[2:], ssrc)
		binary.BigEndian.PutUint32(iv[6:], roc)
		binary.BigEndian.PutUint16(iv[10:], seq)
		for i := range iv {
			iv[i] ^= rs.salt[i]
		}
		gcm, _ := cipher.NewGCM(block)
		out = gcm.Seal(out, iv, payload, hdr)
		return append(out, mki...)
	}
	// IV = salt*2^16 XOR SSRC*2^64 XOR index*2^16.
	iv := make([]byte, 16)
	copy(iv, rs.salt)
	index := uint64(roc)<<16 | uint64(seq)
	for i := 0; i < 4; i++ {
		iv[4+i] ^= byte(ssrc >> (24 - 8*i))
	}
	for i := 0; i < 6; i++ {
		iv[8+i] ^= byte(index >> (40 - 8*i))
	}
	ct := make([]byte, len(payload))
	cipher.NewCTR(block, iv).XORKeyStream(ct, payload)
	out = append(out, ct...)
	mac := hmac.New(sha1.New, rs.auth)
	mac.Write(out)
	mac.Write(binary.BigEndian.AppendUint32(nil, roc))
	return append(append(out, mki...), mac.Sum(nil)[:s.RTPAuthTagLen()]...)
}

// refProtectRTCP protects an RTCP packet with SRTCP index index and the E
// flag set (RFC 3711 §3.4, §4.1.1, §4.2; RFC 7714 §9). The HMAC tag is always
// 80 bits, whatever the suite's SRTP tag.
func refProtectRTCP(s srtp.Suite, rs refSession, mki, pkt []byte, index uint32) []byte {
	hdr, payload := pkt[:8], pkt[8:]
	ssrc := binary.BigEndian.Uint32(pkt[4:])
	word := binary.BigEndian.AppendUint32(nil, 0x80000000|index)
	block, _ := aes.NewCipher(rs.key)
	out := append([]byte(nil), hdr...)
	if isAEAD(s) {
		// IV = (00 00 || SSRC || 00 00 || 0 || index) XOR salt; AAD = header || E||index.
		iv := make([]byte, 12)
		binary.BigEndian.PutUint32(iv[2:], ssrc)
		binary.BigEndian.PutUint32(iv[8:], index)
		for i := range iv {
			iv[i] ^= rs.salt[i]
		}
		gcm, _ := cipher.NewGCM(block)
		out = gcm.Seal(out, iv, payload, append(append([]byte(nil), hdr...), word...))
		return append(append(out, word...), mki...)
	}
	iv := make([]byte, 16)
	copy(iv, rs.salt)
	for i := 0; i < 4; i++ {
		iv[4+i] ^= byte(ssrc >> (24 - 8*i))
		iv[10+i] ^= byte(index >> (24 - 8*i))
	}
	ct := make([]byte, len(payload))
	cipher.NewCTR(block, iv).XORKeyStream(ct, payload)
	out = append(append(out, ct...), word...)
	mac := hmac.New(sha1.New, rs.auth)
	mac.Write(out)
	return append(append(out, mki...), mac.Sum(nil)[:10]...)
}

// TestReferenceRFC3711 checks the reference AES-CM and key derivation
// against RFC 3711 Appendix B.2 and B.3.
func TestReferenceRFC3711(t *testing.T) {
	// B.2: keystream for session key 2B7E..., salt F0F1...FD, SSRC 0, index 0.
	key := unhex(t, "2B7E151628AED2A6ABF7158809CF4F3C")
	block, _ := aes.NewCipher(key)
	ks := make([]byte, 1044512)
	cipher.NewCTR(block, unhex(t, "F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000")).XORKeyStream(ks, ks)
	if want := unhex(t, `E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB
		41E95B3BB0A2E8DD477901E4FCA894C0`); !bytes.Equal(ks[:48], want) {
		t.Errorf("B.2 keystream start %X", ks[:48])
	}
	if want := unhex(t, `EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE
		6A2CC3787889374FBEB4C81B17BA6C44`); !bytes.Equal(ks[len(ks)-48:], want) {
		t.Errorf("B.2 keystream end %X", ks[len(ks)-48:])
	}
	// The RTP encryption of a zero payload with that session key and salt is
	// the keystream, through the reference's IV construction.
	rs := refSession{key: key, salt: unhex(t, "F0F1F2F3F4F5F6F7F8F9FAFBFCFD"), auth: make([]byte, 20)}
	pkt := make([]byte, 12+48)
	pkt[0] = 0x80
	if got := refProtectRTP(srtp.AESCM128HMACSHA1_80, rs, nil, pkt, 0)[12:60]; !bytes.Equal(got, ks[:48]) {
		t.Errorf("reference SRTP IV does not give the B.2 keystream")
	}

	// B.3: key derivation.
	mk := unhex(t, "E1F97A0D3E018BE0D64FA32C06DE4139")
	ms := unhex(t, "0EC675AD498AFEEBB6960B3AABE6")
	for _, tc := range []struct {
		label byte
		want  string
	}{
		{0x00, "C61E7A93744F39EE10734AFE3FF7A087"},
		{0x02, "30CBBC08863D8C85D49DB34A9AE1"},
		{0x01, "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"},
	} {
		want := unhex(t, tc.want)
		if got := refKDF(mk, ms, tc.label, len(want)); !bytes.Equal(got, want) {
			t.Errorf("B.3 label %d: %X, want %X", tc.label, got, want)
		}
	}
}

// TestReferenceRFC7714 checks the reference AEAD transform against the
// RFC 7714 §16 (SRTP) and §17 (SRTCP) vectors.
func TestReferenceRFC7714(t *testing.T) {
	salt := unhex(t, "517569642070726f2071756f")
	rtpPlain := unhex(t, `8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
		69736120 696e2070 61727465 73207472 6573`)
	rtcpPlain := unhex(t, `81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
		deadbeef deadbeef deadbeef deadbeef deadbeef`)
	for _, tc := range []struct {
		s        srtp.Suite
		key      string
		rtp      string
		rtcp     string
		rtcpAuth string // E flag clear: authenticated only
	}{
		{srtp.AEADAES128GCM, "000102030405060708090a0b0c0d0e0f",
			`8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5 0d294e6f 42a5f47a
			51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce`,
			`81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d c676a5f1 730d6fda
			4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4`,
			`81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 deadbeef deadbeef
			deadbeef deadbeef deadbeef 841dd968 3dd78ec9 2ae58790 125f62b3 000005d4`},
		{srtp.AEADAES256GCM, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
			`8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238 9a58e2f3 b50b2a02
			76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13`,
			`81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d bffe0a50 a2eaa5c1 110555be
			8415f658 c61de047 6f1b6fad 1d1eb30c 4446839f 57ff6f6c b26ac3be 800005d4`,
			`81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 deadbeef deadbeef
			deadbeef deadbeef deadbeef 91db4afb feee5a97 8fab4393 ed2615fe 000005d4`},
	} {
		rs := refSession{key: unhex(t, tc.key), salt: salt}
		if got := refProtectRTP(tc.s, rs, nil, rtpPlain, 0); !bytes.Equal(got, unhex(t, tc.rtp)) {
			t.Errorf("%v: RFC 7714 §16 SRTP vector: got %x", tc.s, got)
		}
		if got := refProtectRTCP(tc.s, rs, nil, rtcpPlain, 0x5d4); !bytes.Equal(got, unhex(t, tc.rtcp)) {
			t.Errorf("%v: RFC 7714 §17 SRTCP vector: got %x", tc.s, got)
		}
		// The authenticated-only vector: GMAC over header||payload||index.
		block, _ := aes.NewCipher(rs.key)
		gcm, _ := cipher.NewGCM(block)
		iv := make([]byte, 12)
		binary.BigEndian.PutUint32(iv[2:], 0x4d617273)
		binary.BigEndian.PutUint32(iv[8:], 0x5d4)
		for i := range iv {
			iv[i] ^= salt[i]
		}
		tag := gcm.Seal(nil, iv, nil, append(bytes.Clone(rtcpPlain), 0, 0, 0x05, 0xd4))
		want := unhex(t, tc.rtcpAuth)
		if !bytes.Equal(tag, want[len(rtcpPlain):len(rtcpPlain)+16]) {
			t.Errorf("%v: RFC 7714 §17 authenticated-only tag %x", tc.s, tag)
		}
	}
}

// katKeys returns master keys for s built from the RFC 3711 B.3 master key
// and salt (extended or truncated to the suite's lengths).
func katKeys(t *testing.T, s srtp.Suite) srtp.Keys {
	mk := unhex(t, "E1F97A0D3E018BE0D64FA32C06DE4139 0DCD213E4CBCF28F017F6994401E2889")
	ms := unhex(t, "0EC675AD498AFEEBB6960B3AABE6")
	return srtp.Keys{Suite: s, Key: mk[:s.KeyLen()], Salt: ms[:s.SaltLen()]}
}

// TestKnownAnswerAgainstReference compares the Encrypter with the reference
// implementation for every suite, with and without MKI, across a rollover,
// and has the Decrypter accept the reference's packets.
func TestKnownAnswerAgainstReference(t *testing.T) {
	for _, s := range srtp.Suites() {
		for _, mki := range [][]byte{nil, {0xde, 0xad, 0xbe, 0xef}} {
			t.Run(fmt.Sprintf("%v/MKI%d", s, len(mki)), func(t *testing.T) {
				k := katKeys(t, s)
				k.MKI = mki
				rtpKeys, rtcpKeys := refDerive(k, false), refDerive(k, true)
				enc, dec := pair(t, k)
				roc := uint32(0)
				for seq := uint16(65533); seq != 3; seq++ {
					if seq == 0 {
						roc++
					}
					pkt := rtpPacket(seq, 0xF7B4DFDE, 33)
					want := refProtectRTP(s, rtpKeys, mki, pkt, roc)
					got, err := enc.ProtectRTP(nil, pkt)
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("SRTP seq %d roc %d:\n got %x (%v)\nwant %x", seq, roc, got, err, want)
					}
					if pt, err := dec.UnprotectRTP(nil, want); err != nil || !bytes.Equal(pt, pkt) {
						t.Fatalf("reference SRTP seq %d not accepted: %v", seq, err)
					}
				}
				for i := uint32(1); i <= 3; i++ {
					pkt := rtcpPacket(0xF7B4DFDE, i)
					want := refProtectRTCP(s, rtcpKeys, mki, pkt, i)
					got, err := enc.ProtectRTCP(nil, pkt)
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("SRTCP index %d:\n got %x (%v)\nwant %x", i, got, err, want)
					}
					if pt, err := dec.UnprotectRTCP(nil, want); err != nil || !bytes.Equal(pt, pkt) {
						t.Fatalf("reference SRTCP %d not accepted: %v", i, err)
					}
				}
			})
		}
	}
}

// TestSRTCPTagIs80BitsFor32Suites proves that the _32 suites use a 32-bit tag
// on SRTP but an 80-bit tag on SRTCP (RFC 3711 §5.2, RFC 4568 §6.2): the
// SRTCP packet is 4 (E||index) + 10 bytes longer than the RTCP packet, its
// last 10 bytes are HMAC-SHA1 truncated to 80 bits, and a packet carrying
// only 32 bits of that tag is refused.
func TestSRTCPTagIs80BitsFor32Suites(t *testing.T) {
	for _, s := range []srtp.Suite{srtp.AESCM128HMACSHA1_32, srtp.AES256CMHMACSHA1_32} {
		k := katKeys(t, s)
		enc, dec := pair(t, k)
		rtp := rtpPacket(1, 0x1234, 160)
		ct, _ := enc.ProtectRTP(nil, rtp)
		if len(ct)-len(rtp) != 4 {
			t.Errorf("%v: SRTP adds %d bytes, want a 4-byte tag", s, len(ct)-len(rtp))
		}
		rtcp := rtcpPacket(0x1234, 1)
		sc, err := enc.ProtectRTCP(nil, rtcp)
		if err != nil {
			t.Fatal(err)
		}
		if len(sc)-len(rtcp) != 4+10 {
			t.Fatalf("%v: SRTCP adds %d bytes, want 4 (E||index) + 10 (tag)", s, len(sc)-len(rtcp))
		}
		rs := refDerive(k, true)
		mac := hmac.New(sha1.New, rs.auth)
		mac.Write(sc[:len(sc)-10])
		if tag := mac.Sum(nil)[:10]; !bytes.Equal(sc[len(sc)-10:], tag) {
			t.Errorf("%v: SRTCP tag %x, want HMAC-SHA1-80 %x", s, sc[len(sc)-10:], tag)
		}
		// What a peer wrongly using 32 bits on SRTCP would send.
		short := append(bytes.Clone(sc[:len(sc)-10]), sc[len(sc)-10:len(sc)-6]...)
		if _, err := dec.UnprotectRTCP(nil, short); !errors.Is(err, srtp.ErrAuthFailed) && !errors.Is(err, srtp.ErrMalformedPacket) {
			t.Errorf("%v: SRTCP with a 32-bit tag = %v, want a refusal", s, err)
		}
		if pt, err := dec.UnprotectRTCP(nil, sc); err != nil || !bytes.Equal(pt, rtcp) {
			t.Errorf("%v: SRTCP with the 80-bit tag: %v", s, err)
		}
	}
}
