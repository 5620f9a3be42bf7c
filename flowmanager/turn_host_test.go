package flowmanager_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

// Servers named by host name and by RFC 7065 URI: "localhost" is resolved
// under the setup context, the TLS certificate is checked against the host
// name by default, and the stream relays media. The granted lifetime and
// the expiry are visible on the flow.
func TestTURNHostNameAndURI(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, testserver.TURNConfig{MaxLifetime: 90 * time.Second})
	uris := map[natmode.Mode]string{
		natmode.TURNUDP: fmt.Sprintf("turn:localhost:%d", srv.UDP.Port()),
		natmode.TURNTCP: fmt.Sprintf("turn:localhost:%d?transport=tcp", srv.TCP.Port()),
		natmode.TURNTLS: fmt.Sprintf("turns:localhost:%d", srv.TLS.Port()),
	}
	m := newManager(t, flowmanager.Config{})
	for _, mode := range turnModes {
		t.Run(mode.String(), func(t *testing.T) {
			nat, err := natmode.ParseURI(uris[mode])
			if err != nil {
				t.Fatal(err)
			}
			if nat.Mode != mode || nat.Server.IsValid() || nat.Host == "" {
				t.Fatalf("ParseURI(%q) = %+v", uris[mode], nat)
			}
			nat.Username, nat.Password, nat.RootCAs = testserver.DefaultUsername, testserver.DefaultPassword, srv.RootCAs
			cfg := mediastream.Config{LocalAddr: loop4, NAT: nat}
			start := time.Now()
			a, ta := readyStream(t, m, cfg)
			b, tb := readyStream(t, m, cfg)
			defer a.Close()
			defer b.Close()
			connect(t, a, ta, b, tb)
			exchange(t, a, ta, b, tb, 2)
			al, ok := a.RTP().Allocation()
			if !ok || al.Lifetime != 90*time.Second || al.Expires.Before(start.Add(89*time.Second)) || al.Expires.After(time.Now().Add(90*time.Second)) {
				t.Fatalf("allocation %+v, want a 90 s lifetime expiring 90 s from now", al)
			}
			if al.Server.Addr.Addr() != loop4 || al.Relayed[0] != a.RTP().RelayTuple() {
				t.Fatalf("allocation %+v", al)
			}
		})
	}
	t.Run("unknown host", func(t *testing.T) {
		r := newRecorder()
		nat := natmode.Config{Mode: natmode.TURNUDP, Host: "no-such-host.invalid", Username: "u", Password: "p", Timeout: 5 * time.Second}
		s, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: loop4, NAT: nat}, r)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := r.waitError(t, 10*time.Second); !errors.Is(err, flow.ErrTURNUnreachable) {
			t.Fatalf("err = %v, want ErrTURNUnreachable", err)
		}
	})
}
