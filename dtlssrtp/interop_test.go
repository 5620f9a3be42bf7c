package dtlssrtp

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
	"testing"

	"github.com/pion/dtls/v2"
)

// A peer that does not speak use_srtp at all (plain pion/dtls without SRTP
// profiles) gives ErrNoCommonSuite in both of our roles.
func TestHandshakePeerWithoutUseSRTP(t *testing.T) {
	alice, bob, _ := testCerts(t)
	for _, role := range []Role{Client, Server} {
		t.Run(role.String(), func(t *testing.T) {
			checkGoroutines(t)
			ours, theirs := udpPair(t)
			pcfg := &dtls.Config{
				Certificates:         []tls.Certificate{bob},
				InsecureSkipVerify:   true,
				ClientAuth:           dtls.RequireAnyClientCert,
				ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
				LoggerFactory:        newLoggerFactory(nil),
			}
			var (
				wg   sync.WaitGroup
				peer *dtls.Conn
				perr error
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if role == Client {
					peer, perr = dtls.ServerWithContext(context.Background(), theirs, pcfg)
				} else {
					peer, perr = dtls.ClientWithContext(context.Background(), theirs, pcfg)
				}
			}()
			s, err := Handshake(context.Background(), ours, role, Config{Certificate: alice}, nil)
			wg.Wait()
			if peer != nil {
				peer.Close()
			}
			if s != nil {
				s.Close()
				t.Fatal("established without use_srtp")
			}
			if !errors.Is(err, ErrNoCommonSuite) || !errors.Is(err, ErrHandshakeFailed) {
				t.Errorf("err = %v, want ErrNoCommonSuite", err)
			}
			t.Logf("ours: %v; peer: %v", err, perr)
		})
	}
}

func TestHandshakeContextAlreadyCanceled(t *testing.T) {
	checkGoroutines(t)
	alice, _, _ := testCerts(t)
	a, _ := udpPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Handshake(ctx, a, Client, Config{Certificate: alice}, nil)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrHandshakeFailed) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
