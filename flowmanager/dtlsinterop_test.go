package flowmanager_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/dtls/v2/pkg/crypto/selfsign"
	psrtp "github.com/pion/srtp/v3"
	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/mediastream"
)

// A peer built directly on pion/dtls and pion/srtp (not on our flow) talks to
// our stream in the server role: the wire format stands on its own.
func TestDTLSInteropWithPlainPion(t *testing.T) {
	leak.Check(t)
	b := newSide(t, flowmanager.Config{}, mediastream.Config{LocalAddr: loop4})
	raddr := net.UDPAddrFromAddrPort(b.t[0].Addr)
	conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	ours, err := dtlssrtp.CertificateFingerprint(cert, dtlssrtp.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	bFP := fingerprintOf(t, b.m)
	b.s.RTP().SetActiveDestination(conn.LocalAddr().(*net.UDPAddr).AddrPort())
	b.s.SetRemoteFingerprint(ours)
	if err := b.s.StartDTLS(dtlssrtp.Server); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dc, err := dtls.ClientWithContext(ctx, conn, &dtls.Config{
		Certificates:           nil,
		SRTPProtectionProfiles: []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM},
		InsecureSkipVerify:     true,
		ExtendedMasterSecret:   dtls.RequireExtendedMasterSecret,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bFP.Matches(raw[0]) {
				return errors.New("peer certificate does not match the fingerprint")
			}
			return nil
		},
	})
	_ = dc
	if err == nil {
		t.Fatal("handshake without a certificate succeeded; the server must require one")
	}
	// Now properly, with our certificate.
	conn2, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, raddr)
	if err != nil {
		t.Fatal(err)
	}
	b.s.RTP().SetActiveDestination(conn2.LocalAddr().(*net.UDPAddr).AddrPort())
	b.s.StartDTLS(dtlssrtp.Server) // a new association for the new peer address
	drainErrors(b.r)
	mux := newRawMux(conn2)
	dc, err = dtls.ClientWithContext(ctx, mux.dtls, &dtls.Config{
		Certificates:           []tls.Certificate{cert},
		SRTPProtectionProfiles: []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM},
		InsecureSkipVerify:     true,
		ExtendedMasterSecret:   dtls.RequireExtendedMasterSecret,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bFP.Matches(raw[0]) {
				return errors.New("peer certificate does not match the fingerprint")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatalf("pion client handshake: %v", err)
	}
	defer func() { dc.Close(); mux.close() }()
	state := dc.ConnectionState()
	prof, _ := dc.SelectedSRTPProtectionProfile()
	scfg := &psrtp.Config{Profile: psrtp.ProtectionProfile(prof)}
	if err := scfg.ExtractSessionKeysFromDTLS(&state, true); err != nil {
		t.Fatal(err)
	}
	enc, err := psrtp.CreateContext(scfg.Keys.LocalMasterKey, scfg.Keys.LocalMasterSalt, scfg.Profile)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := psrtp.CreateContext(scfg.Keys.RemoteMasterKey, scfg.Keys.RemoteMasterSalt, scfg.Profile)
	if err != nil {
		t.Fatal(err)
	}
	waitSecure(t, b.s)
	// pion -> ours
	want := rtpPacket(1, 172)
	wire, err := enc.EncryptRTP(nil, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn2.Write(wire)
	got, _ := readPlain(t, b.s.RTP())
	if !bytes.Equal(got, want) {
		t.Fatal("our flow did not decrypt pion's SRTP")
	}
	// ours -> pion
	if _, err := b.s.RTP().Write(rtpPacket(2, 172)); err != nil {
		t.Fatal(err)
	}
	select {
	case pkt := <-mux.media:
		plain, err := dec.DecryptRTP(nil, pkt, nil)
		if err != nil {
			t.Fatalf("pion could not decrypt our SRTP: %v", err)
		}
		if !bytes.Equal(plain, rtpPacket(2, 172)) {
			t.Fatal("pion decrypted something else")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the pion peer received no SRTP")
	}
}

// rawMux splits a connected UDP socket of the plain-pion peer: DTLS records to
// a net.Conn for pion/dtls, RTP/RTCP to a channel (RFC 7983).
type rawMux struct {
	conn  *net.UDPConn
	dtls  *muxDTLS
	media chan []byte
	done  chan struct{}
}

type muxDTLS struct {
	*net.UDPConn
	in chan []byte
	m  *rawMux
}

func (d *muxDTLS) Read(p []byte) (int, error) {
	select {
	case b := <-d.in:
		return copy(p, b), nil
	case <-d.m.done:
		return 0, net.ErrClosed
	}
}

func (d *muxDTLS) Close() error { return nil }

func newRawMux(c *net.UDPConn) *rawMux {
	m := &rawMux{conn: c, media: make(chan []byte, 16), done: make(chan struct{})}
	m.dtls = &muxDTLS{UDPConn: c, in: make(chan []byte, 16), m: m}
	go func() {
		defer close(m.done)
		for {
			buf := make([]byte, 2048)
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			switch b := buf[:n]; {
			case b[0] >= 20 && b[0] <= 63:
				select {
				case m.dtls.in <- b:
				default:
				}
			case b[0] >= 128 && b[0] <= 191:
				select {
				case m.media <- b:
				default:
				}
			}
		}
	}()
	return m
}

func (m *rawMux) close() { m.conn.Close(); <-m.done }

func readPlain(t testing.TB, f *flow.Flow) ([]byte, error) {
	t.Helper()
	buf := make([]byte, 2048)
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := f.ReadFromAddrPort(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return buf[:n], nil
}

func drainErrors(r *recorder) {
	for {
		select {
		case <-r.errs:
		default:
			return
		}
	}
}

// A ClientHello from a stranger is ignored by the server role: counted as a
// source drop, no error, and the real peer's handshake then succeeds.
func TestDTLSStrangerClientHelloIgnored(t *testing.T) {
	leak.Check(t)
	cfg := mediastream.Config{LocalAddr: loop4}
	a := newSide(t, flowmanager.Config{}, cfg)
	b := newSide(t, flowmanager.Config{}, cfg)
	connect(t, a.s, a.t, b.s, b.t)
	a.s.SetRemoteFingerprint(fingerprintOf(t, b.m))
	b.s.SetRemoteFingerprint(fingerprintOf(t, a.m))
	b.s.StartDTLS(dtlssrtp.Server)

	stranger, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, net.UDPAddrFromAddrPort(b.t[0].Addr))
	if err != nil {
		t.Fatal(err)
	}
	scert, _ := dtlssrtp.GenerateCertificate("stranger")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = dtlssrtp.Handshake(ctx, stranger, dtlssrtp.Client, dtlssrtp.Config{Certificate: scert}, &dtlssrtp.Verifier{})
	cancel()
	if err == nil {
		t.Fatal("a stranger completed a handshake with the server role")
	}
	if d := b.s.RTP().Stats().Dropped[flow.DropSource]; d == 0 {
		t.Fatal("the stranger's ClientHello was not counted as a source drop")
	}
	select {
	case err := <-b.r.errs:
		t.Fatalf("the stranger caused an error on the server: %v", err)
	default:
	}
	a.s.StartDTLS(dtlssrtp.Client)
	waitSecure(t, a.s, b.s)
	exchange(t, a.s, a.t, b.s, b.t, 2)
}
