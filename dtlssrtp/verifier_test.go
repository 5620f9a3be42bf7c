package dtlssrtp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestVerifierPinFirst(t *testing.T) {
	checkGoroutines(t)
	alice, bob, _ := testCerts(t)
	var v Verifier
	if v.Verified() || v.PeerCertificate() != nil || v.Fingerprints() != nil {
		t.Fatal("zero Verifier not empty")
	}
	if err := v.SetFingerprint(mustFP(t, alice, SHA256)); err != nil {
		t.Fatal(err)
	}
	if v.Verified() {
		t.Fatal("Verified without a peer certificate")
	}
	if err := v.VerifyPeer(alice.Certificate[0]); err != nil {
		t.Fatalf("VerifyPeer(right cert) = %v", err)
	}
	if !v.Verified() || !bytes.Equal(v.PeerCertificate(), alice.Certificate[0]) {
		t.Fatal("not Verified after a matching certificate")
	}
	if err := v.VerifyPeer(bob.Certificate[0]); !errors.Is(err, ErrFingerprintMismatch) {
		t.Fatalf("VerifyPeer(wrong cert) = %v", err)
	}
	if v.Verified() {
		t.Fatal("Verified after a mismatch")
	}
	if err := v.VerifyPeer(nil); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("VerifyPeer(nil) = %v", err)
	}
}

func TestVerifierCertificateFirst(t *testing.T) {
	checkGoroutines(t)
	alice, bob, _ := testCerts(t)
	var v Verifier
	if err := v.VerifyPeer(alice.Certificate[0]); err != nil {
		t.Fatalf("VerifyPeer without a pin = %v, want accepted", err)
	}
	if v.Verified() {
		t.Fatal("Verified without a pin")
	}
	if err := v.SetFingerprint(Fingerprint{Hash: SHA256, Value: []byte{1, 2}}); !errors.Is(err, ErrInvalidFingerprint) {
		t.Fatalf("invalid fingerprint: %v", err)
	}
	if err := v.SetFingerprints(); !errors.Is(err, ErrInvalidFingerprint) {
		t.Fatalf("no fingerprints: %v", err)
	}
	if err := v.SetFingerprint(mustFP(t, alice, SHA1)); err != nil || !v.Verified() {
		t.Fatalf("matching pin: %v, Verified %v", err, v.Verified())
	}
	if err := v.SetFingerprint(mustFP(t, bob, SHA1)); !errors.Is(err, ErrFingerprintMismatch) || v.Verified() {
		t.Fatalf("mismatching pin: %v, Verified %v", err, v.Verified())
	}
}

// RFC 8122 §5: use the fingerprints with the strongest hash, and require a
// match among those.
func TestVerifierStrongestHash(t *testing.T) {
	checkGoroutines(t)
	alice, bob, _ := testCerts(t)
	for _, tc := range []struct {
		name string
		pins []Fingerprint
		ok   bool
	}{
		{"right sha-256 and sha-1", []Fingerprint{mustFP(t, alice, SHA256), mustFP(t, alice, SHA1)}, true},
		{"two certs, one right", []Fingerprint{mustFP(t, bob, SHA256), mustFP(t, alice, SHA256)}, true},
		{"weak right, strong wrong", []Fingerprint{mustFP(t, alice, SHA1), mustFP(t, bob, SHA512)}, false},
		{"strong right, weak wrong", []Fingerprint{mustFP(t, bob, SHA1), mustFP(t, alice, SHA384)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v Verifier
			if err := v.SetFingerprints(tc.pins...); err != nil {
				t.Fatal(err)
			}
			err := v.VerifyPeer(alice.Certificate[0])
			if (err == nil) != tc.ok || v.Verified() != tc.ok {
				t.Fatalf("VerifyPeer = %v, Verified = %v; want ok=%v", err, v.Verified(), tc.ok)
			}
			if got := v.Fingerprints(); len(got) != len(tc.pins) {
				t.Fatalf("Fingerprints = %v", got)
			}
		})
	}
}

func TestVerifierConcurrent(t *testing.T) {
	checkGoroutines(t)
	alice, _, _ := testCerts(t)
	fp := mustFP(t, alice, SHA256)
	var v Verifier
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(3)
		go func() { defer wg.Done(); _ = v.SetFingerprint(fp) }()
		go func() { defer wg.Done(); _ = v.VerifyPeer(alice.Certificate[0]) }()
		go func() { defer wg.Done(); _ = v.Verified(); _ = v.PeerCertificate() }()
	}
	wg.Wait()
	if !v.Verified() {
		t.Fatal("not Verified")
	}
}

func TestGenerateCertificate(t *testing.T) {
	checkGoroutines(t)
	const aor = "sip:alice@example.com"
	c, err := GenerateCertificate(aor)
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf == nil || len(c.Certificate) != 1 || !bytes.Equal(c.Leaf.Raw, c.Certificate[0]) {
		t.Fatal("Leaf not set or not the certificate")
	}
	leaf := c.Leaf
	if leaf.Subject.CommonName != aor || leaf.Issuer.CommonName != aor {
		t.Errorf("subject %q issuer %q", leaf.Subject, leaf.Issuer)
	}
	key, ok := c.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("key %T, want ECDSA P-256", c.PrivateKey)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		t.Fatal("certificate key is not the private key's")
	}
	// Self-signed by its own key (CheckSignatureFrom would want a CA).
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	now := time.Now()
	if !leaf.NotBefore.Before(now.Add(-CertificateBackdate+time.Minute)) || leaf.NotAfter.Before(now.Add(CertificateLifetime-time.Minute)) {
		t.Errorf("validity %v .. %v", leaf.NotBefore, leaf.NotAfter)
	}
	if leaf.SignatureAlgorithm != x509.ECDSAWithSHA256 || leaf.IsCA {
		t.Errorf("signature %v, CA %v", leaf.SignatureAlgorithm, leaf.IsCA)
	}
	if leaf.SerialNumber.Sign() <= 0 {
		t.Errorf("serial %v", leaf.SerialNumber)
	}
	d, err := GenerateCertificate(aor)
	if err != nil {
		t.Fatal(err)
	}
	if d.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("two certificates with the same serial")
	}
	if mustFP(t, c, SHA256).Equal(mustFP(t, d, SHA256)) {
		t.Error("two certificates with the same fingerprint")
	}
}
