// Package srtp protects RTP and RTCP with SRTP (RFC 3711) and carries SRTP
// master keys: the Suite names, Keys for one direction, and the SDES
// a=crypto attribute (RFC 4568) that exchanges them in SDP. It is a thin,
// allocation-free layer over github.com/pion/srtp/v3 that adds what a media
// flow needs from it: replay protection on by default, errors that can be
// matched with errors.Is, goroutine safety, and no panics on hostile input.
//
// Keys come from an a=crypto line (SDES) or from DTLS-SRTP (package dtlssrtp,
// RFC 5764, whose protection profile ids are the Suite values). Each
// direction gets its own keys: an Encrypter for what we send, a Decrypter for
// what we receive.
//
//	local, _ := srtp.GenerateKeys(srtp.AESCM128HMACSHA1_80)
//	offer := srtp.Crypto{Tag: 1, Keys: local}.String() // "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:..."
//
//	remote, err := srtp.ParseCrypto(answerLine) // the peer's a=crypto
//	if err != nil { ... }                       // errors.Is(err, srtp.ErrUnknownSuite), ...
//	enc, _ := srtp.NewEncrypter(local)
//	dec, _ := srtp.NewDecrypter(remote.Keys, 0) // replay window 64
//
//	buf := make([]byte, 0, 1500+srtp.MaxOverhead)
//	wire, err := enc.ProtectRTP(buf, rtpPacket)
//	...
//	if srtp.IsRTCP(in) {                        // rtcp-mux, RFC 5761
//		plain, err = dec.UnprotectRTCP(buf, in)
//	} else {
//		plain, err = dec.UnprotectRTP(buf, in)
//	}
//	if errors.Is(err, srtp.ErrAuthFailed) || errors.Is(err, srtp.ErrReplay) { drop and count }
//
// Suites: AES_CM_128_HMAC_SHA1_80 and _32 (RFC 4568), AES_256_CM_HMAC_SHA1_80
// and _32 (RFC 6188), AEAD_AES_128_GCM and AEAD_AES_256_GCM (RFC 7714). With
// the _32 suites SRTCP still carries an 80-bit tag (RFC 4568 §6.2). AES-192 and F8 are not implemented by pion/srtp and are refused.
//
// Buffers: the Protect and Unprotect methods append to dst[:0] and return the
// result, like the rest of Go's append-style APIs; with enough capacity in
// dst (len(pkt)+MaxOverhead is always enough) they do not allocate, with one
// exception inside pion/srtp v3.1.0: SRTCP with the AEAD suites allocates 12
// bytes per packet. dst may be pkt[:0] to work in place.
//
// Concurrency: Encrypter and Decrypter serialize their methods with a mutex
// around the pion context, so one of each may be shared by any number of
// goroutines. Keys, Crypto and Suite are plain values. The package starts no
// goroutines.
//
// Replay protection (RFC 3711 §3.3.2): a Decrypter keeps a sliding window per
// SSRC, for SRTP and for SRTCP, of DefaultReplayWindow packets unless told
// otherwise. A duplicate or too old packet fails with ErrReplay and is not
// returned. The window advances only for packets that authenticated, so a
// forged packet cannot block the genuine one with the same index. pion/srtp
// reports replays with an unexported error type; ErrReplay is not derived
// from its text but from pion's own replay detector, wrapped so that it
// records each rejection.
//
// Robustness: every call into pion/srtp runs under recover; malformed input
// yields ErrMalformedPacket, never a panic.
//
// RFCs: 3711 (SRTP), 4568 (SDES a=crypto), 6188 (AES-256 suites), 7714
// (AES-GCM), 5764 (DTLS-SRTP profile ids), 5761 (RTP/RTCP multiplexing).
package srtp
