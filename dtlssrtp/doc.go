// Package dtlssrtp keys SRTP with DTLS (DTLS-SRTP, RFC 5763 and RFC 5764) on
// top of github.com/pion/dtls/v2: it makes the self-signed certificate
// whose fingerprint an endpoint puts into its SDP, parses and formats
// a=fingerprint (RFC 8122) and a=setup (RFC 4145) values, runs the DTLS 1.2
// handshake (RFC 6347) with the use_srtp extension in the client or server
// role, checks the peer's certificate against the fingerprint from its SDP,
// and exports the SRTP master keys and salts for both directions as
// srtp.Keys. It is the Go counterpart of reflow's initializeDtlsFactory,
// startDtlsClient and setRemoteSDPFingerprint; package flow drives it and
// keys its own SRTP from the result.
//
// # Usage
//
//	cert, err := dtlssrtp.GenerateCertificate("sip:alice@example.com") // once per application
//	fp, _ := dtlssrtp.CertificateFingerprint(cert, dtlssrtp.SHA256)
//	// offer: fp.Attribute() and "a=setup:actpass"
//
//	// answer received:
//	remoteSetup, err := dtlssrtp.ParseSetup(answerSetup)   // e.g. "active"
//	role, err := dtlssrtp.RoleFor(dtlssrtp.SetupActpass, remoteSetup)
//	remoteFP, err := dtlssrtp.ParseFingerprint(answerFingerprint)
//	var v dtlssrtp.Verifier
//	err = v.SetFingerprint(remoteFP)            // may also come after Handshake
//
//	s, err := dtlssrtp.Handshake(ctx, dtlsConn, role, dtlssrtp.Config{Certificate: cert}, &v)
//	if err != nil { /* errors.Is(err, dtlssrtp.ErrFingerprintMismatch), ErrHandshakeTimeout, ... */ }
//	defer s.Close()
//	local, remote := s.Keys()                   // protect with local, unprotect with remote
//	<-s.Done()                                  // the association ended: s.Err() says why
//
// dtlsConn is a net.Conn that carries only the DTLS records (first byte
// 20..63, RFC 7983) exchanged with the peer, one datagram per Read and
// Write. Handshake owns it from then on: pion's dtls.Conn closes it when
// the association is closed, and Handshake closes it when it fails.
//
// # Behaviour worth knowing
//
//   - The DTLS server requires the client's certificate (dtls.RequireAnyClientCert),
//     so both sides check the peer's fingerprint; the client skips chain
//     verification, the certificates being self-signed. The extended master
//     secret (RFC 7627) is required.
//   - Fingerprints are compared over their whole value with the hash the SDP
//     names. A fingerprint set after the handshake is checked at once; a
//     mismatch then ends the Session (Err matches ErrFingerprintMismatch).
//   - The negotiated SRTP profile is the one reported and keyed (with
//     dtls/v2 the client's preference order decides). The default offer is
//     AEAD_AES_128_GCM, then AES_CM_128_HMAC_SHA1_80.
//   - The handshake is bounded by the context and by Config.HandshakeTimeout
//     (DefaultHandshakeTimeout, 10 s). pion retransmits lost flights every
//     second.
//   - Errors from pion are mapped to this package's sentinels (errors.go):
//     the side whose check failed sees ErrFingerprintMismatch, the other
//     side ErrFatalAlert (bad_certificate); every handshake failure matches
//     ErrHandshakeFailed.
//   - Logging goes to Config.Logger only, pion's included (nil discards it).
//   - dtls/v2 draws AES-GCM record nonces at random (GHSA-9f3f-wv7r-qc8r,
//     fixed only in dtls/v3). A DTLS-SRTP association encrypts just a few
//     records (Finished, alerts), so a collision is not a practical risk, but
//     vulnerability scanners will flag the module.
//
// # Concurrency
//
// Verifier and Session are safe for concurrent use. Handshake blocks; a
// Session runs one goroutine that reads the DTLS conn so that alerts and
// close_notify are processed (application data is discarded), in addition
// to the two goroutines pion's dtls.Conn keeps for its lifetime. Close
// stops all of them and waits for them, and is idempotent.
//
// # RFCs
//
// RFC 5763 (DTLS-SRTP framework: setup roles, fingerprints), RFC 5764
// (use_srtp extension and key export "EXTRACTOR-dtls_srtp"), RFC 8122 (SDP
// fingerprint attribute, replacing RFC 4572), RFC 4145 (SDP a=setup),
// RFC 6347 (DTLS 1.2), RFC 7627 (extended master secret), RFC 7714 (AES-GCM
// profiles).
package dtlssrtp
