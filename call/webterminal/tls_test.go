package webterminal

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// testPKI is a CA with one server and one client certificate.
type testPKI struct {
	pool           *x509.CertPool
	server, client tls.Certificate
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(n int64, cn string, usage x509.ExtKeyUsage) tls.Certificate {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{pool: pool, server: leaf(2, "core", x509.ExtKeyUsageServerAuth), client: leaf(3, "300", x509.ExtKeyUsageClientAuth)}
}

// msisdnFromCert identifies a terminal by its client certificate's CN.
func msisdnFromCert(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return "", nil
	}
	return ti.State.PeerCertificates[0].Subject.CommonName, nil
}

// TLS and mutual TLS on the gRPC connection: a terminal trusting the core's CA
// registers and calls; with mutual TLS the core identifies the terminal by its
// certificate, and a terminal without one is refused.
func TestTLS(t *testing.T) {
	leak.Check(t)
	pki := newPKI(t)
	// Server-only TLS.
	_, addr := startCore(t, CoreConfig{}, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pki.server}})))
	withTLS := func(c *tls.Config) func(*Config) { return func(cfg *Config) { cfg.TLS = c } }
	a := dial(t, addr, "100", MultiPipe, "", withTLS(&tls.Config{RootCAs: pki.pool}))
	dial(t, addr, "200", Pipe, "accept", withTLS(&tls.Config{RootCAs: pki.pool}))
	c, err := a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatal(err)
	}
	a.rec.up(t, c, "call over TLS")

	// Mutual TLS: the msisdn comes from the client certificate (CN 300).
	_, maddr := startCore(t, CoreConfig{Identify: msisdnFromCert}, grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool, ClientAuth: tls.RequireAndVerifyClientCert})))
	m := dial(t, maddr, "300", MultiPipe, "", withTLS(&tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}))
	dial(t, maddr, "400", MultiPipe, "accept", func(cfg *Config) {
		cfg.TLS = &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}
	})
	// Both terminals present CN 300, so the core routes by that: 300 -> 300.
	c, err = m.Call(ctxT(t), "300")
	if err != nil {
		t.Fatal(err)
	}
	m.rec.up(t, c, "call over mutual TLS")

	for name, conf := range map[string]*tls.Config{
		"no client certificate": {RootCAs: pki.pool},
		"untrusted core":        {Certificates: []tls.Certificate{pki.client}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := Dial(ctx, Config{Target: maddr, MSISDN: "500", Agent: newAgent(t, sdpx.Plain, nil), TLS: conf})
		cancel()
		if err == nil {
			t.Fatalf("%s: registered", name)
		}
	}
}
