package flowmanager_test

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/memnet"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
	"github.com/reflow-go/reflow/srtp"
)

type side struct {
	m *flowmanager.Manager
	s *mediastream.Stream
	t [2]flow.Tuple
	r *recorder
}

func newSide(t testing.TB, mcfg flowmanager.Config, cfg mediastream.Config) *side {
	t.Helper()
	m := newManager(t, mcfg)
	r := newRecorder()
	s, err := m.NewStream(context.Background(), cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	return &side{m: m, s: s, t: r.waitReady(t), r: r}
}

func fingerprintOf(t testing.TB, m *flowmanager.Manager) dtlssrtp.Fingerprint {
	t.Helper()
	fp, err := m.Fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func TestDTLSEveryRoleAndNATMode(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, testserver.TURNConfig{})
	nats := []natmode.Config{{}, {Mode: natmode.STUNBinding, Server: srv.UDP},
		turnConfig(srv, natmode.TURNUDP), turnConfig(srv, natmode.TURNTCP), turnConfig(srv, natmode.TURNTLS)}
	for _, nat := range nats {
		for _, aRole := range []dtlssrtp.Role{dtlssrtp.Client, dtlssrtp.Server} {
			t.Run(nat.Mode.String()+"/a-"+aRole.String(), func(t *testing.T) {
				cfg := mediastream.Config{LocalAddr: loop4, RTCP: true, NAT: nat}
				a := newSide(t, flowmanager.Config{AOR: "sip:a@example.test"}, cfg)
				b := newSide(t, flowmanager.Config{AOR: "sip:b@example.test"}, cfg)
				connect(t, a.s, a.t, b.s, b.t)
				if err := a.s.SetRemoteFingerprint(fingerprintOf(t, b.m)); err != nil {
					t.Fatal(err)
				}
				if err := b.s.SetRemoteFingerprint(fingerprintOf(t, a.m)); err != nil {
					t.Fatal(err)
				}
				bRole := dtlssrtp.Server
				if aRole == dtlssrtp.Server {
					bRole = dtlssrtp.Client
				}
				// The server side first, as an answerer does.
				first, second, firstRole, secondRole := a, b, aRole, bRole
				if aRole == dtlssrtp.Client {
					first, second, firstRole, secondRole = b, a, bRole, aRole
				}
				if err := first.s.StartDTLS(firstRole); err != nil {
					t.Fatal(err)
				}
				if err := second.s.StartDTLS(secondRole); err != nil {
					t.Fatal(err)
				}
				waitSecure(t, a.s, b.s)
				exchange(t, a.s, a.t, b.s, b.t, 3)
				for _, f := range append(a.s.Flows(), b.s.Flows()...) {
					if !f.IsSecure() || f.DTLSSuite() != srtp.AEADAES128GCM {
						t.Fatalf("%v flow secure=%v suite=%v", f.Component(), f.IsSecure(), f.DTLSSuite())
					}
				}
				select {
				case err := <-a.r.errs:
					t.Fatal(err)
				case err := <-b.r.errs:
					t.Fatal(err)
				default:
				}
			})
		}
	}
}

// No media in clear before the handshake, and none before the fingerprint is
// pinned; pinning after the handshake releases it. The client's profile
// preference decides (RFC 5764 with pion/dtls v2).
func TestDTLSFingerprintAfterHandshake(t *testing.T) {
	leak.Check(t)
	cfg := mediastream.Config{LocalAddr: loop4}
	a := newSide(t, flowmanager.Config{DTLSSuites: []srtp.Suite{srtp.AESCM128HMACSHA1_80}}, cfg)
	b := newSide(t, flowmanager.Config{}, cfg)
	connect(t, a.s, a.t, b.s, b.t)
	b.s.StartDTLS(dtlssrtp.Server)
	if _, err := b.s.RTP().Write(rtpPacket(1, 50)); !errors.Is(err, flow.ErrNotSecure) {
		t.Fatalf("write before keys: %v, want ErrNotSecure", err)
	}
	a.s.StartDTLS(dtlssrtp.Client)
	// Handshake completes, but nobody pinned anything: still no media.
	deadline := time.Now().Add(10 * time.Second)
	for a.s.RTP().DTLSSuite() == 0 || b.s.RTP().DTLSSuite() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("handshake did not finish")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := a.s.RTP().Write(rtpPacket(1, 50)); !errors.Is(err, flow.ErrNotSecure) {
		t.Fatalf("write before the pin: %v", err)
	}
	if err := a.s.SetRemoteFingerprint(fingerprintOf(t, b.m)); err != nil {
		t.Fatal(err)
	}
	if err := b.s.SetRemoteFingerprint(fingerprintOf(t, a.m)); err != nil {
		t.Fatal(err)
	}
	waitSecure(t, a.s, b.s)
	exchange(t, a.s, a.t, b.s, b.t, 3)
	if a.s.RTP().DTLSSuite() != srtp.AESCM128HMACSHA1_80 {
		t.Fatalf("negotiated %v, want the client's only profile", a.s.RTP().DTLSSuite())
	}
}

// A wrong fingerprint on either side: the pinning side reports
// ErrFingerprintMismatch, and no media is delivered.
func TestDTLSWrongFingerprint(t *testing.T) {
	leak.Check(t)
	other, err := dtlssrtp.GenerateCertificate("sip:mallory@example.test")
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := dtlssrtp.CertificateFingerprint(other, dtlssrtp.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	for _, wrongOn := range []string{"client", "server", "client-after"} {
		t.Run(wrongOn, func(t *testing.T) {
			cfg := mediastream.Config{LocalAddr: loop4}
			a := newSide(t, flowmanager.Config{}, cfg) // client
			b := newSide(t, flowmanager.Config{}, cfg) // server
			connect(t, a.s, a.t, b.s, b.t)
			fa, fb := fingerprintOf(t, a.m), fingerprintOf(t, b.m)
			pinning := a
			switch wrongOn {
			case "client":
				fb = wrong
			case "server":
				fa, pinning = wrong, b
			}
			if wrongOn != "client-after" {
				a.s.SetRemoteFingerprint(fb)
			}
			b.s.SetRemoteFingerprint(fa)
			b.s.StartDTLS(dtlssrtp.Server)
			a.s.StartDTLS(dtlssrtp.Client)
			if wrongOn == "client-after" {
				deadline := time.Now().Add(10 * time.Second)
				for a.s.RTP().DTLSSuite() == 0 {
					if time.Now().After(deadline) {
						t.Fatal("handshake did not finish")
					}
					time.Sleep(time.Millisecond)
				}
				if err := a.s.SetRemoteFingerprint(wrong); !errors.Is(err, dtlssrtp.ErrFingerprintMismatch) {
					t.Fatalf("late wrong pin: %v", err)
				}
			}
			err := pinning.r.waitError(t, 15*time.Second)
			if !errors.Is(err, dtlssrtp.ErrFingerprintMismatch) {
				t.Fatalf("err = %v, want ErrFingerprintMismatch", err)
			}
			for _, s := range []*mediastream.Stream{a.s, b.s} {
				s.RTP().Write(rtpPacket(1, 60))
			}
			for _, s := range []*mediastream.Stream{a.s, b.s} {
				s.RTP().SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if _, _, err := s.RTP().ReadFrom(make([]byte, 2048)); err == nil {
					t.Fatal("media delivered despite the mismatch")
				}
			}
			if pinning.s.RTP().IsSecure() {
				t.Fatal("the pinning side kept its keys")
			}
		})
	}
}

// A peer that never answers: ErrHandshakeTimeout after the handshake timeout.
func TestDTLSHandshakeTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		silent, err := n.Listen("udp4", netip.MustParseAddrPort("192.0.2.7:5000"))
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		m := memnetManager(t, n)
		r := newRecorder()
		s, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: netip.MustParseAddr("10.0.0.1")}, r)
		if err != nil {
			t.Fatal(err)
		}
		<-r.ready
		s.RTP().SetActiveDestination(netip.MustParseAddrPort("192.0.2.7:5000"))
		start := time.Now()
		if err := s.StartDTLS(dtlssrtp.Client); err != nil {
			t.Fatal(err)
		}
		err = <-r.errs
		if !errors.Is(err, dtlssrtp.ErrHandshakeTimeout) {
			t.Fatalf("err = %v, want ErrHandshakeTimeout", err)
		}
		if d := time.Since(start); d != dtlssrtp.DefaultHandshakeTimeout {
			t.Fatalf("timed out after %v, want %v", d, dtlssrtp.DefaultHandshakeTimeout)
		}
		s.Close()
	})
}

// waitSecure waits (bounded) until every flow of the streams is keyed.
func waitSecure(t testing.TB, streams ...*mediastream.Stream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, s := range streams {
		if _, err := s.WaitKeyed(ctx); err != nil {
			t.Fatalf("stream not keyed: %v", err)
		}
		for _, f := range s.Flows() {
			if !f.IsSecure() {
				t.Fatalf("%v flow not secure after OnKeyed", f.Component())
			}
		}
	}
}

// A re-offer with a new peer (new address, new certificate): the old
// association ends quietly and the new one keys the flows.
func TestDTLSNewAssociationOnNewFingerprint(t *testing.T) {
	leak.Check(t)
	cfg := mediastream.Config{LocalAddr: loop4, RTCP: true}
	a := newSide(t, flowmanager.Config{}, cfg)
	b := newSide(t, flowmanager.Config{}, cfg)
	connect(t, a.s, a.t, b.s, b.t)
	a.s.SetRemoteFingerprint(fingerprintOf(t, b.m))
	b.s.SetRemoteFingerprint(fingerprintOf(t, a.m))
	b.s.StartDTLS(dtlssrtp.Server)
	a.s.StartDTLS(dtlssrtp.Client)
	waitSecure(t, a.s, b.s)
	exchange(t, a.s, a.t, b.s, b.t, 2)

	c := newSide(t, flowmanager.Config{}, cfg)
	connect(t, a.s, a.t, c.s, c.t)
	if err := a.s.SetRemoteFingerprint(fingerprintOf(t, c.m)); err != nil {
		t.Fatalf("new fingerprint in a re-offer: %v", err)
	}
	if a.s.RTP().IsSecure() {
		t.Fatal("keys of the old association kept after the new fingerprint")
	}
	c.s.SetRemoteFingerprint(fingerprintOf(t, a.m))
	c.s.StartDTLS(dtlssrtp.Server)
	a.s.StartDTLS(dtlssrtp.Client)
	waitSecure(t, a.s, c.s)
	exchange(t, a.s, a.t, c.s, c.t, 2)
	select {
	case err := <-a.r.errs:
		t.Fatalf("a reported %v", err)
	default:
	}
}

// Once keyed, an association drops its DTLS state after the linger: media
// keeps flowing with the same keys, and the flows are back to the goroutines
// they had before DTLS.
func TestDTLSStateReleasedAfterLinger(t *testing.T) {
	leak.Check(t)
	cfg := mediastream.Config{LocalAddr: loop4, RTCP: true}
	mcfg := flowmanager.Config{DTLSLinger: 50 * time.Millisecond}
	a := newSide(t, mcfg, cfg)
	b := newSide(t, mcfg, cfg)
	connect(t, a.s, a.t, b.s, b.t)
	a.s.SetRemoteFingerprint(fingerprintOf(t, b.m))
	b.s.SetRemoteFingerprint(fingerprintOf(t, a.m))
	before := runtime.NumGoroutine()
	b.s.StartDTLS(dtlssrtp.Server)
	a.s.StartDTLS(dtlssrtp.Client)
	waitSecure(t, a.s, b.s)
	if runtime.NumGoroutine() <= before {
		t.Fatal("no DTLS goroutines while the state is held")
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines 10 s after the linger, %d before DTLS", runtime.NumGoroutine(), before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	exchange(t, a.s, a.t, b.s, b.t, 3)
	if a.s.RTP().DTLSSuite() != srtp.AEADAES128GCM {
		t.Fatalf("suite after release: %v", a.s.RTP().DTLSSuite())
	}
	select {
	case err := <-a.r.errs:
		t.Fatalf("release reported %v", err)
	case err := <-b.r.errs:
		t.Fatalf("release reported on the peer: %v", err)
	default:
	}
}
