package dtlssrtp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"
)

// Validity of the certificates made by GenerateCertificate: NotBefore lies
// CertificateBackdate in the past (to tolerate peers whose clocks are behind)
// and NotAfter CertificateLifetime after the moment of creation. DTLS-SRTP
// peers pin the certificate by fingerprint and do not normally check dates,
// but some implementations reject expired certificates, so a long-running
// application should make a new one before NotAfter.
const (
	CertificateLifetime = 365 * 24 * time.Hour
	CertificateBackdate = 24 * time.Hour
)

// GenerateCertificate makes a self-signed certificate for DTLS-SRTP, like
// reflow's initializeDtlsFactory(aor): an ECDSA P-256 key, subject and
// issuer common name aor (used as given, it may be empty), a random 127-bit
// serial number, ECDSA-with-SHA256 signature, valid from one day ago
// (CertificateBackdate) for one year (CertificateLifetime), key usage
// digitalSignature and extended key usage serverAuth and clientAuth, not a
// CA. The returned certificate has Leaf set.
func GenerateCertificate(aor string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("dtlssrtp: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("dtlssrtp: generate serial: %w", err)
	}
	if serial.Sign() == 0 {
		serial.SetInt64(1)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: aor},
		NotBefore:             now.Add(-CertificateBackdate),
		NotAfter:              now.Add(CertificateLifetime),
		SignatureAlgorithm:    x509.ECDSAWithSHA256,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("dtlssrtp: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("dtlssrtp: parse certificate: %w", err)
	}
	return tls.Certificate{
		Certificate: [][]byte{der},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}
