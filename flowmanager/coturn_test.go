package flowmanager_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/coturn"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

func coturnConfig(srv *coturn.Server, mode natmode.Mode) natmode.Config {
	return relayConfig(mode, [3]netip.AddrPort{srv.UDP, srv.TCP, srv.TLS}, srv.Username, srv.Password, srv.RootCAs, srv.ServerName)
}

// Two streams relayed through a real third-party TURN server (coturn) over
// UDP, TCP and TLS exchange RTP and RTCP both ways, plain and with DTLS-SRTP
// through the relay; wrong credentials are refused with ErrTURNAuth.
func TestCoturnRelay(t *testing.T) {
	leak.Check(t)
	srv := coturn.ForTest(t, coturn.Config{})
	for _, mode := range turnModes {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := mediastream.Config{LocalAddr: loop4, RTCP: true, NAT: coturnConfig(srv, mode)}
			a := newSide(t, flowmanager.Config{}, cfg)
			b := newSide(t, flowmanager.Config{}, cfg)
			for i, f := range a.s.Flows() {
				if a.t[i] != f.RelayTuple() || !f.ReflexiveTuple().IsValid() {
					t.Fatalf("%v: session %v relay %v reflexive %v", f.Component(), a.t[i], f.RelayTuple(), f.ReflexiveTuple())
				}
			}
			connect(t, a.s, a.t, b.s, b.t)
			exchange(t, a.s, a.t, b.s, b.t, 5)
			a.s.SetRemoteFingerprint(fingerprintOf(t, b.m))
			b.s.SetRemoteFingerprint(fingerprintOf(t, a.m))
			b.s.StartDTLS(dtlssrtp.Server)
			a.s.StartDTLS(dtlssrtp.Client)
			waitSecure(t, a.s, b.s)
			exchange(t, a.s, a.t, b.s, b.t, 3)
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		m := newManager(t, flowmanager.Config{})
		nat := coturnConfig(srv, natmode.TURNUDP)
		nat.Password = "wrong"
		r := newRecorder()
		s, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: loop4, NAT: nat}, r)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := r.waitError(t, 10*time.Second); !errors.Is(err, flow.ErrTURNAuth) {
			t.Fatalf("err = %v, want ErrTURNAuth", err)
		}
	})
}
