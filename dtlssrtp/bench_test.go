package dtlssrtp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v2"
)

// BenchmarkHandshake measures one complete DTLS-SRTP association on
// loopback UDP: both roles' Handshake (with certificate pinning on both
// sides and key export), then Close on both. ms/op is the wall time of one
// association; it includes making the two sockets.
func BenchmarkHandshake(b *testing.B) {
	checkGoroutines(b)
	alice, bob, _ := testCerts(b)
	ccfg, scfg := Config{Certificate: alice}, Config{Certificate: bob}
	afp, bfp := mustFP(b, alice, SHA256), mustFP(b, bob, SHA256)
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		cv, sv := &Verifier{}, &Verifier{}
		_ = cv.SetFingerprint(bfp)
		_ = sv.SetFingerprint(afp)
		x, y := udpPair(b)
		c, s := handshakePair(b, x, y, ccfg, scfg, cv, sv)
		if c.err != nil || s.err != nil {
			b.Fatal(c.err, s.err)
		}
		c.s.Close()
		s.s.Close()
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
}

// BenchmarkHandshakePion is the baseline for BenchmarkHandshake: the same
// handshake with pion/dtls v2 used directly (same certificates, use_srtp,
// extended master secret, client certificate required, a fingerprint check
// in VerifyPeerCertificate), without this package's wrapping, key export
// or watcher.
func BenchmarkHandshakePion(b *testing.B) {
	checkGoroutines(b)
	alice, bob, _ := testCerts(b)
	afp, bfp := mustFP(b, alice, SHA256), mustFP(b, bob, SHA256)
	pin := func(fp Fingerprint) func([][]byte, [][]*x509.Certificate) error {
		return func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !fp.Matches(raw[0]) {
				return ErrFingerprintMismatch
			}
			return nil
		}
	}
	profiles := []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80}
	lf := newLoggerFactory(nil)
	ccfg := &dtls.Config{
		Certificates: []tls.Certificate{alice}, SRTPProtectionProfiles: profiles, InsecureSkipVerify: true,
		VerifyPeerCertificate: pin(bfp), ExtendedMasterSecret: dtls.RequireExtendedMasterSecret, LoggerFactory: lf,
	}
	scfg := &dtls.Config{
		Certificates: []tls.Certificate{bob}, SRTPProtectionProfiles: profiles, ClientAuth: dtls.RequireAnyClientCert,
		VerifyPeerCertificate: pin(afp), ExtendedMasterSecret: dtls.RequireExtendedMasterSecret, LoggerFactory: lf,
	}
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		x, y := udpPair(b)
		var (
			wg     sync.WaitGroup
			cc, sc *dtls.Conn
			ce, se error
		)
		wg.Add(2)
		go func() { defer wg.Done(); cc, ce = dtls.ClientWithContext(context.Background(), x, ccfg) }()
		go func() { defer wg.Done(); sc, se = dtls.ServerWithContext(context.Background(), y, scfg) }()
		wg.Wait()
		if ce != nil || se != nil {
			b.Fatal(ce, se)
		}
		cc.Close()
		sc.Close()
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
}

// BenchmarkGenerateCertificate measures GenerateCertificate (ECDSA P-256).
func BenchmarkGenerateCertificate(b *testing.B) {
	checkGoroutines(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := GenerateCertificate("sip:bench@example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
