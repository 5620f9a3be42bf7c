package sipp2p

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/internal/leak"
)

func TestTLSFailures(t *testing.T) {
	leak.Check(t)
	ca, other := newCA(t), newCA(t)
	good := func() *TLSConfig {
		return &TLSConfig{Certificate: ca.leaf(t, loopback, time.Now().Add(time.Hour)), RootCAs: ca.pool}
	}
	cases := []struct {
		name   string
		server *TLSConfig
		client *TLSConfig
		target func(a netip.AddrPort) string
		want   TLSFailure
	}{
		{"untrusted", &TLSConfig{Certificate: other.leaf(t, loopback, time.Now().Add(time.Hour))}, good(), nil, UntrustedRemoteCertificate},
		{"expired", &TLSConfig{Certificate: ca.leaf(t, loopback, time.Now().Add(-time.Hour))}, good(), nil, CertificateExpired},
		{"name", good(), &TLSConfig{RootCAs: ca.pool, ServerName: "bob.example.test"}, nil, NameMismatch},
		{"rejected-none", &TLSConfig{Certificate: ca.leaf(t, loopback, time.Now().Add(time.Hour)), RootCAs: ca.pool, NeedMutualTLS: true},
			&TLSConfig{RootCAs: ca.pool}, nil, RemoteRejectedCertificate},
		{"rejected-untrusted", &TLSConfig{Certificate: ca.leaf(t, loopback, time.Now().Add(time.Hour)), RootCAs: ca.pool, NeedMutualTLS: true},
			&TLSConfig{Certificate: other.leaf(t, loopback, time.Now().Add(time.Hour)), RootCAs: ca.pool}, nil, RemoteRejectedCertificate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			b := newEP(t, Config{TLS: tc.server}, call.MediaConfig{})
			target := b.listen(t, TLS)
			a := newEP(t, Config{TLS: tc.client, Transport: TLS}, call.MediaConfig{})
			start := time.Now()
			_, err := a.Call(ctx, target, nil)
			var te *TLSError
			if !errors.As(err, &te) || te.Reason != tc.want {
				t.Fatalf("err = %v, want TLS failure %v", err, tc.want)
			}
			var r call.Reason
			if !errors.As(err, &r) || r.Kind != call.SignalingFailed {
				t.Errorf("call reason %+v", r)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("failure took %v", d)
			}
			if len(a.agent.Calls()) != 0 {
				t.Error("call left behind")
			}
			select {
			case c := <-b.incoming:
				t.Errorf("callee got call %s", c.ID())
			default:
			}
		})
	}

	t.Run("local-certificate-not-found", func(t *testing.T) {
		leak.Check(t)
		e := newEP(t, Config{TLS: &TLSConfig{RootCAs: ca.pool}}, call.MediaConfig{})
		_, err := e.StartListening(context.Background(), TLS, netip.AddrPortFrom(loopback, 0))
		var te *TLSError
		if !errors.As(err, &te) || te.Reason != LocalCertificateNotFound {
			t.Errorf("listen: %v", err)
		}
		e2 := newEP(t, Config{TLS: &TLSConfig{RootCAs: ca.pool, NeedMutualTLS: true}}, call.MediaConfig{})
		_, err = e2.Call(context.Background(), "sip:x@127.0.0.1:5061;transport=tls", nil)
		if !errors.As(err, &te) || te.Reason != LocalCertificateNotFound {
			t.Errorf("call: %v", err)
		}
	})
}
