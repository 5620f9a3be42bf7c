package flowmanager_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/coturn"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

// waitLost waits for ErrAllocationLost on r and returns how long it took from since.
func waitLost(t *testing.T, r *recorder, since time.Time, within time.Duration) time.Duration {
	t.Helper()
	err := r.waitError(t, within)
	took := time.Since(since)
	if !errors.Is(err, flow.ErrAllocationLost) {
		t.Fatalf("err = %v, want ErrAllocationLost", err)
	}
	return took
}

// checkWriteLost checks that a write after the loss fails with an *flow.Error
// matching ErrAllocationLost, not a raw socket error.
func checkWriteLost(t *testing.T, f *flow.Flow) {
	t.Helper()
	_, err := f.Write(rtpPacket(1, 172))
	var fe *flow.Error
	if !errors.As(err, &fe) || !errors.Is(err, flow.ErrAllocationLost) {
		t.Fatalf("Write after the loss: %v, want an *flow.Error matching ErrAllocationLost", err)
	}
}

// coturn is killed mid-call: over UDP the loss is reported within the
// liveness bound (5 s here), over TCP and TLS at once; writes then fail with
// ErrAllocationLost. Restarted on the same ports: reported as well.
func TestCoturnKilledAndRestarted(t *testing.T) {
	leak.Check(t)
	for _, restart := range []bool{false, true} {
		for _, mode := range turnModes {
			name := "killed/" + mode.String()
			if restart {
				name = "restarted/" + mode.String()
			}
			t.Run(name, func(t *testing.T) {
				srv := coturn.ForTest(t, coturn.Config{})
				nat := coturnConfig(srv, mode)
				nat.Liveness = natmode.MinLiveness
				m := newManager(t, flowmanager.Config{})
				ra, rb := newRecorder(), newRecorder()
				a, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: loop4, NAT: nat}, ra)
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				b, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: loop4, NAT: nat}, rb)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				ta, tb := ra.waitReady(t), rb.waitReady(t)
				connect(t, a, ta, b, tb)
				exchange(t, a, ta, b, tb, 3)
				died := time.Now()
				if restart {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					if err := srv.Restart(ctx); err != nil {
						t.Fatal(err)
					}
				} else {
					srv.Kill()
				}
				bound := natmode.MinLiveness
				if mode != natmode.TURNUDP {
					bound = time.Second
				}
				took := waitLost(t, ra, died, bound+2*time.Second)
				if took > bound+time.Second { // a loaded machine
					t.Fatalf("loss reported after %v, want within %v", took, bound)
				}
				t.Logf("%s: ErrAllocationLost %v after the server went", name, took)
				checkWriteLost(t, a.RTP())
			})
		}
	}
}

// coturn refuses a peer (denied-peer-ip): the refusal reaches the handler
// as ErrPermissionDenied naming the peer, and writes to it fail with it.
func TestCoturnDeniedPeer(t *testing.T) {
	leak.Check(t)
	srv := coturn.ForTest(t, coturn.Config{DeniedPeers: []string{"127.0.0.77"}})
	for _, mode := range turnModes {
		t.Run(mode.String(), func(t *testing.T) {
			m := newManager(t, flowmanager.Config{})
			r := newRecorder()
			s, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: loop4, NAT: coturnConfig(srv, mode)}, r)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			r.waitReady(t)
			peer := "127.0.0.77:4000"
			if err := s.RTP().SetActiveDestination(mustAddrPort(peer)); err != nil {
				t.Fatal(err)
			}
			err = r.waitError(t, 10*time.Second)
			var fe *flow.Error
			if !errors.As(err, &fe) || !errors.Is(err, flow.ErrPermissionDenied) || !errors.Is(err, flow.ErrPermissionFailed) ||
				!strings.Contains(err.Error(), peer) || !strings.Contains(err.Error(), "403") {
				t.Fatalf("err = %v, want ErrPermissionDenied naming %s and the 403", err, peer)
			}
			_, werr := s.RTP().Write(rtpPacket(1, 172))
			if !errors.As(werr, &fe) || !errors.Is(werr, flow.ErrPermissionDenied) {
				t.Fatalf("Write to the refused peer: %v", werr)
			}
			if errors.Is(err, flow.ErrAllocationLost) {
				t.Fatal("a refused permission is not a lost allocation")
			}
		})
	}
}

// coturn listening and relaying on ::1 only: an IPv6 relay is asked for
// with natmode.FamilyIPv6 and media flows through it; without the option
// the server's 440 is reported as ErrTURNRejected naming the option.
func TestCoturnIPv6Only(t *testing.T) {
	leak.Check(t)
	srv := coturn.ForTest(t, coturn.Config{IPv6: true})
	for _, mode := range turnModes {
		t.Run(mode.String(), func(t *testing.T) {
			nat := coturnConfig(srv, mode)
			nat.Family = natmode.FamilyIPv6
			m := newManager(t, flowmanager.Config{})
			cfg := mediastream.Config{LocalAddr: loop6, RTCP: true, NAT: nat}
			a, ta := readyStream(t, m, cfg)
			b, tb := readyStream(t, m, cfg)
			defer a.Close()
			defer b.Close()
			if !ta[0].Addr.Addr().Is6() || !tb[1].Addr.Addr().Is6() {
				t.Fatalf("relayed %v %v, want IPv6", ta, tb)
			}
			connect(t, a, ta, b, tb)
			exchange(t, a, ta, b, tb, 3)
		})
	}
	t.Run("no family option", func(t *testing.T) {
		m := newManager(t, flowmanager.Config{})
		r := newRecorder()
		s, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: loop6, NAT: coturnConfig(srv, natmode.TURNUDP)}, r)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		err = r.waitError(t, 10*time.Second)
		if !errors.Is(err, flow.ErrTURNRejected) || !strings.Contains(err.Error(), "440") || !strings.Contains(err.Error(), "Family") {
			t.Fatalf("err = %v, want ErrTURNRejected with 440 naming the Family option", err)
		}
	})
}

// FamilyBoth against a server with IPv4 and IPv6 relay addresses: two
// relays, and media flows between the IPv6 ones of two flows that reach
// the server over IPv4.
func TestCoturnFamilyBoth(t *testing.T) {
	leak.Check(t)
	srv := coturn.ForTest(t, coturn.Config{RelayIPv6Too: true})
	nat := coturnConfig(srv, natmode.TURNUDP)
	nat.Family = natmode.FamilyBoth
	m := newManager(t, flowmanager.Config{})
	var relay6 [2]netip.AddrPort
	var streams [2]*mediastream.Stream
	for i := range streams {
		s, _ := readyStream(t, m, mediastream.Config{LocalAddr: loop4, NAT: nat})
		defer s.Close()
		al, ok := s.RTP().Allocation()
		if !ok || len(al.Relayed) != 2 || !al.Relayed[0].Addr.Addr().Is4() || !al.Relayed[1].Addr.Addr().Is6() {
			t.Fatalf("allocation %+v, want an IPv4 and an IPv6 relay", al)
		}
		streams[i], relay6[i] = s, al.Relayed[1].Addr
	}
	a, b := streams[0].RTP(), streams[1].RTP()
	if err := a.SetActiveDestination(relay6[1]); err != nil {
		t.Fatal(err)
	}
	if err := b.SetActiveDestination(relay6[0]); err != nil {
		t.Fatal(err)
	}
	p := rtpPacket(7, 172)
	expect(t, func() error { _, err := a.Write(p); return err }, b, p, relay6[0])
	expect(t, func() error { _, err := b.Write(p); return err }, a, p, relay6[1])
}

// Media of every length from 160 to 180 bytes through coturn, with every
// SRTP suite, over UDP, TCP and TLS.
func TestCoturnLengthSweep(t *testing.T) {
	leak.Check(t)
	srv := coturn.ForTest(t, coturn.Config{})
	m := newManager(t, flowmanager.Config{})
	for _, mode := range turnModes {
		for _, suite := range sdesSuites {
			t.Run(mode.String()+"/"+suite.String(), func(t *testing.T) {
				cfg := mediastream.Config{LocalAddr: loop4, NAT: coturnConfig(srv, mode)}
				a, ta := readyStream(t, m, cfg)
				b, tb := readyStream(t, m, cfg)
				defer a.Close()
				defer b.Close()
				connect(t, a, ta, b, tb)
				keyPair(t, a, b, genKeys(t, suite), genKeys(t, suite))
				lengthSweep(t, a, ta, b, tb)
				if al, _ := a.RTP().Allocation(); al.UnpaddedChannelData {
					t.Fatal("coturn pads over TCP/TLS but was taken for a server that does not")
				}
			})
		}
	}
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
