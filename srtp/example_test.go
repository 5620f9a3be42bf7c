package srtp_test

import (
	"errors"
	"fmt"

	"github.com/reflow-go/reflow/srtp"
)

// An SDES offer line is parsed, its keys used, and formatted back.
func ExampleParseCrypto() {
	c, err := srtp.ParseCrypto("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("tag:", c.Tag)
	fmt.Println("suite:", c.Keys.Suite)
	fmt.Println("key, salt:", len(c.Keys.Key), len(c.Keys.Salt))
	fmt.Println("lifetime:", c.Lifetime)
	fmt.Println("MKI:", c.MKILen, "bytes, value", c.Keys.MKI[31])
	fmt.Println(c)

	_, err = srtp.ParseCrypto("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR UNENCRYPTED_SRTP")
	fmt.Println(errors.Is(err, srtp.ErrUnsupportedParam))
	// Output:
	// tag: 1
	// suite: AES_CM_128_HMAC_SHA1_80
	// key, salt: 16 14
	// lifetime: 1048576
	// MKI: 32 bytes, value 1
	// a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32
	// true
}

// Fresh keys for an offer, written as an a=crypto line.
func ExampleGenerateKeys() {
	k, err := srtp.GenerateKeys(srtp.AEADAES128GCM)
	if err != nil {
		fmt.Println(err)
		return
	}
	line := srtp.Crypto{Tag: 1, Keys: k}.String()
	back, err := srtp.ParseCrypto(line)
	fmt.Println(k) // Keys never print the key itself
	fmt.Println(len(line), err, back.Keys.Equal(k))
	// Output:
	// srtp.Keys{AEAD_AES_128_GCM key:16B salt:12B}
	// 75 <nil> true
}

// One direction of a call: the sender protects, the receiver unprotects,
// and a replayed packet is refused.
func ExampleNewEncrypter() {
	keys, _ := srtp.GenerateKeys(srtp.AESCM128HMACSHA1_80)
	enc, _ := srtp.NewEncrypter(keys)
	dec, _ := srtp.NewDecrypter(keys, 0) // default replay window

	rtp := []byte{0x80, 0x00, 0x00, 0x01, 0, 0, 0, 160, 0xca, 0xfe, 0xba, 0xbe, 'h', 'e', 'l', 'l', 'o'}
	buf := make([]byte, 0, 1500+srtp.MaxOverhead)
	wire, err := enc.ProtectRTP(buf, rtp)
	fmt.Println(len(rtp), "->", len(wire), err)

	plain, err := dec.UnprotectRTP(nil, wire)
	fmt.Printf("%s %v\n", plain[12:], err)

	_, err = dec.UnprotectRTP(nil, wire)
	fmt.Println(errors.Is(err, srtp.ErrReplay))

	rtp[3] = 2 // next sequence number
	wire, _ = enc.ProtectRTP(buf, rtp)
	wire[len(wire)-1] ^= 1 // tampered on the way
	_, err = dec.UnprotectRTP(nil, wire)
	fmt.Println(errors.Is(err, srtp.ErrAuthFailed))

	wire[len(wire)-1] ^= 1 // the genuine packet is still accepted
	_, err = dec.UnprotectRTP(nil, wire)
	fmt.Println(err)
	// Output:
	// 17 -> 27 <nil>
	// hello <nil>
	// true
	// true
	// <nil>
}

// Demultiplexing RTP and RTCP on one port (rtcp-mux).
func ExampleIsRTCP() {
	sr := []byte{0x80, 200, 0, 6}   // RTCP sender report
	rtp := []byte{0x80, 0x60, 0, 1} // RTP, payload type 96
	fmt.Println(srtp.IsRTCP(sr), srtp.IsRTCP(rtp))
	// Output:
	// true false
}

// Suite names and sizes.
func ExampleParseSuite() {
	s, err := srtp.ParseSuite("AES_CM_128_HMAC_SHA1_32")
	fmt.Println(s, uint16(s), s.KeyLen(), s.SaltLen(), s.RTPAuthTagLen(), s.RTCPAuthTagLen(), err)
	_, err = srtp.ParseSuite("AES_192_CM_HMAC_SHA1_80")
	fmt.Println(errors.Is(err, srtp.ErrUnknownSuite))
	// Output:
	// AES_CM_128_HMAC_SHA1_32 2 16 14 4 10 <nil>
	// true
}
