package dtlssrtp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	psrtp "github.com/pion/srtp/v3"
	"github.com/reflow-go/reflow/srtp"
)

// pinned returns verifiers for client and server, each pinned (sha-256) to
// the other's certificate.
func pinned(t *testing.T) (ccfg, scfg Config, cv, sv *Verifier) {
	alice, bob, _ := testCerts(t)
	ccfg = Config{Certificate: alice}
	scfg = Config{Certificate: bob}
	cv, sv = &Verifier{}, &Verifier{}
	if err := cv.SetFingerprint(mustFP(t, bob, SHA256)); err != nil {
		t.Fatal(err)
	}
	if err := sv.SetFingerprint(mustFP(t, alice, SHA256)); err != nil {
		t.Fatal(err)
	}
	return ccfg, scfg, cv, sv
}

func TestHandshakePinnedBeforeBothRoles(t *testing.T) {
	checkGoroutines(t)
	ccfg, scfg, cv, sv := pinned(t)
	a, b := udpPair(t)
	c, s := handshakePair(t, a, b, ccfg, scfg, cv, sv)
	if c.err != nil || s.err != nil {
		t.Fatalf("client err %v, server err %v", c.err, s.err)
	}
	if c.s.Role() != Client || s.s.Role() != Server {
		t.Errorf("roles %v %v", c.s.Role(), s.s.Role())
	}
	if !cv.Verified() || !sv.Verified() {
		t.Errorf("Verified client=%v server=%v", cv.Verified(), sv.Verified())
	}
	if c.s.Verifier() != cv || s.s.Verifier() != sv {
		t.Error("Session.Verifier is not the given Verifier")
	}
	if !bytes.Equal(c.s.PeerCertificate(), scfg.Certificate.Certificate[0]) ||
		!bytes.Equal(s.s.PeerCertificate(), ccfg.Certificate.Certificate[0]) {
		t.Error("peer certificates differ from the ones used")
	}
	if c.s.Suite() != srtp.AEADAES128GCM || s.s.Suite() != srtp.AEADAES128GCM {
		t.Errorf("suite client %v server %v, want AEAD_AES_128_GCM (default preference)", c.s.Suite(), s.s.Suite())
	}
	if c.s.Err() != nil {
		t.Errorf("Err before end = %v", c.s.Err())
	}
	select {
	case <-c.s.Done():
		t.Fatal("Done closed on a live session")
	default:
	}

	// The client closes: it sends close_notify, the server sees ErrPeerClosed.
	if err := c.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitDone(t, c.s)
	if err := c.s.Err(); !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("client Err after Close = %v, want ErrClosed and net.ErrClosed", err)
	}
	waitDone(t, s.s)
	if err := s.s.Err(); !errors.Is(err, ErrPeerClosed) || !errors.Is(err, io.EOF) {
		t.Errorf("server Err after peer close = %v, want ErrPeerClosed and io.EOF", err)
	}
	if err := s.s.Close(); err != nil {
		t.Errorf("server Close after peer close: %v", err)
	}
	if err := c.s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestHandshakeNilVerifierAndLateFingerprint(t *testing.T) {
	alice, bob, mallory := testCerts(t)
	for _, tc := range []struct {
		name      string
		pin       Fingerprint // set on the server's Verifier after the handshake
		wantMatch bool
	}{
		{"match", mustFP(t, alice, SHA384), true},
		{"mismatch", mustFP(t, mallory, SHA256), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			a, b := udpPair(t)
			c, s := handshakePair(t, a, b, Config{Certificate: alice}, Config{Certificate: bob}, nil, nil)
			if c.err != nil || s.err != nil {
				t.Fatalf("client err %v, server err %v", c.err, s.err)
			}
			sv := s.s.Verifier()
			if sv == nil || sv.Verified() {
				t.Fatalf("Verifier before pin: %v", sv)
			}
			err := sv.SetFingerprint(tc.pin)
			if tc.wantMatch {
				if err != nil || !sv.Verified() {
					t.Fatalf("SetFingerprint = %v, Verified = %v", err, sv.Verified())
				}
				select {
				case <-s.s.Done():
					t.Fatal("session ended after a matching fingerprint")
				default:
				}
				return
			}
			if !errors.Is(err, ErrFingerprintMismatch) {
				t.Fatalf("SetFingerprint = %v, want ErrFingerprintMismatch", err)
			}
			if sv.Verified() {
				t.Error("Verified after mismatch")
			}
			// The session has ended before SetFingerprint returned.
			select {
			case <-s.s.Done():
			default:
				t.Fatal("session still up after a late mismatch")
			}
			if !errors.Is(s.s.Err(), ErrFingerprintMismatch) {
				t.Errorf("Err = %v, want ErrFingerprintMismatch", s.s.Err())
			}
			// The peer learns of it through close_notify.
			waitDone(t, c.s)
			if !errors.Is(c.s.Err(), ErrPeerClosed) {
				t.Errorf("peer Err = %v, want ErrPeerClosed", c.s.Err())
			}
			// A later correct pin does not revive the Verifier.
			if err := sv.SetFingerprint(mustFP(t, alice, SHA256)); !errors.Is(err, ErrFingerprintMismatch) || sv.Verified() {
				t.Errorf("after failure: SetFingerprint = %v, Verified = %v", err, sv.Verified())
			}
		})
	}
}

func TestHandshakeWrongFingerprint(t *testing.T) {
	alice, bob, mallory := testCerts(t)
	for _, tc := range []struct {
		name       string
		clientPins Fingerprint // what the client expects of the server
		serverPins Fingerprint
		badSide    Role // the side whose check fails
	}{
		{"client rejects server", mustFP(t, mallory, SHA256), mustFP(t, alice, SHA256), Client},
		{"server rejects client", mustFP(t, bob, SHA1), mustFP(t, mallory, SHA512), Server},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			cv, sv := &Verifier{}, &Verifier{}
			if err := cv.SetFingerprint(tc.clientPins); err != nil {
				t.Fatal(err)
			}
			if err := sv.SetFingerprint(tc.serverPins); err != nil {
				t.Fatal(err)
			}
			a, b := udpPair(t)
			c, s := handshakePair(t, a, b, Config{Certificate: alice}, Config{Certificate: bob}, cv, sv)
			checker, other := c, s
			if tc.badSide == Server {
				checker, other = s, c
			}
			if checker.s != nil || other.s != nil {
				t.Fatal("a session was established")
			}
			if !errors.Is(checker.err, ErrFingerprintMismatch) || !errors.Is(checker.err, ErrHandshakeFailed) {
				t.Errorf("checking side: %v, want ErrFingerprintMismatch and ErrHandshakeFailed", checker.err)
			}
			if !errors.Is(other.err, ErrFatalAlert) || !errors.Is(other.err, ErrHandshakeFailed) {
				t.Errorf("rejected side: %v, want ErrFatalAlert (bad_certificate) and ErrHandshakeFailed", other.err)
			}
			if errors.Is(other.err, ErrFingerprintMismatch) {
				t.Errorf("rejected side claims its own fingerprint check failed: %v", other.err)
			}
			if !contains(other.err, "BadCertificate") {
				t.Errorf("rejected side's error does not name the alert: %v", other.err)
			}
			t.Logf("checker: %v\nrejected: %v", checker.err, other.err)
		})
	}
}

func TestHandshakeNoCommonSuite(t *testing.T) {
	checkGoroutines(t)
	alice, bob, _ := testCerts(t)
	a, b := udpPair(t)
	c, s := handshakePair(t, a, b,
		Config{Certificate: alice, Suites: []srtp.Suite{srtp.AESCM128HMACSHA1_80}},
		Config{Certificate: bob, Suites: []srtp.Suite{srtp.AEADAES128GCM, srtp.AEADAES256GCM}}, nil, nil)
	for _, r := range []struct {
		name string
		err  error
	}{{"client", c.err}, {"server", s.err}} {
		if !errors.Is(r.err, ErrNoCommonSuite) || !errors.Is(r.err, ErrHandshakeFailed) {
			t.Errorf("%s: %v, want ErrNoCommonSuite and ErrHandshakeFailed", r.name, r.err)
		}
		t.Logf("%s: %v", r.name, r.err)
	}
}

func TestHandshakeNegotiatedSuite(t *testing.T) {
	alice, bob, _ := testCerts(t)
	all := []srtp.Suite{srtp.AEADAES256GCM, srtp.AEADAES128GCM, srtp.AESCM128HMACSHA1_32, srtp.AESCM128HMACSHA1_80}
	for _, tc := range []struct {
		name           string
		client, server []srtp.Suite
		want           srtp.Suite
	}{
		{"client offers only CM_80", []srtp.Suite{srtp.AESCM128HMACSHA1_80}, nil, srtp.AESCM128HMACSHA1_80},
		{"only CM_32", []srtp.Suite{srtp.AESCM128HMACSHA1_32}, all, srtp.AESCM128HMACSHA1_32},
		{"only GCM_256", all[:1], all, srtp.AEADAES256GCM},
		{"client order wins", []srtp.Suite{srtp.AESCM128HMACSHA1_80, srtp.AEADAES128GCM}, nil, srtp.AESCM128HMACSHA1_80},
		{"server subset", all, []srtp.Suite{srtp.AESCM128HMACSHA1_32}, srtp.AESCM128HMACSHA1_32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			a, b := udpPair(t)
			c, s := handshakePair(t, a, b, Config{Certificate: alice, Suites: tc.client},
				Config{Certificate: bob, Suites: tc.server}, nil, nil)
			if c.err != nil || s.err != nil {
				t.Fatalf("client err %v, server err %v", c.err, s.err)
			}
			if c.s.Suite() != tc.want || s.s.Suite() != tc.want {
				t.Fatalf("suite client %v server %v, want %v", c.s.Suite(), s.s.Suite(), tc.want)
			}
			cl, cr := c.s.Keys()
			sl, sr := s.s.Keys()
			for _, k := range []srtp.Keys{cl, cr, sl, sr} {
				if k.Suite != tc.want || len(k.Key) != tc.want.KeyLen() || len(k.Salt) != tc.want.SaltLen() || k.MKI != nil {
					t.Errorf("keys %+v do not fit %v", k, tc.want)
				}
			}
		})
	}
}

// TestKeys checks the exported keys against each other, against pion/srtp's
// own extraction from the same DTLS state, and by an SRTP and SRTCP round
// trip in both directions with pion/srtp contexts.
func TestKeys(t *testing.T) {
	alice, bob, _ := testCerts(t)
	for _, suite := range []srtp.Suite{srtp.AEADAES128GCM, srtp.AEADAES256GCM, srtp.AESCM128HMACSHA1_80, srtp.AESCM128HMACSHA1_32} {
		t.Run(suite.String(), func(t *testing.T) {
			checkGoroutines(t)
			a, b := udpPair(t)
			only := []srtp.Suite{suite}
			c, s := handshakePair(t, a, b, Config{Certificate: alice, Suites: only}, Config{Certificate: bob, Suites: only}, nil, nil)
			if c.err != nil || s.err != nil {
				t.Fatalf("client err %v, server err %v", c.err, s.err)
			}
			cl, cr := c.s.Keys()
			sl, sr := s.s.Keys()
			if !keysEqual(cl, sr) || !keysEqual(cr, sl) {
				t.Fatal("client local != server remote or client remote != server local")
			}
			if keysEqual(cl, cr) {
				t.Fatal("both directions have the same key")
			}
			// Keys returns copies.
			cl2, _ := c.s.Keys()
			cl2.Key[0] ^= 0xff
			if cl3, _ := c.s.Keys(); !keysEqual(cl3, cl) {
				t.Fatal("Keys exposes internal slices")
			}

			// Same result as pion/srtp's ExtractSessionKeysFromDTLS.
			for _, side := range []struct {
				s        *Session
				isClient bool
			}{{c.s, true}, {s.s, false}} {
				pc := psrtp.Config{Profile: psrtp.ProtectionProfile(suite)}
				st := side.s.conn.ConnectionState()
				if err := pc.ExtractSessionKeysFromDTLS(&st, side.isClient); err != nil {
					t.Fatal(err)
				}
				l, r := side.s.Keys()
				if !bytes.Equal(pc.Keys.LocalMasterKey, l.Key) || !bytes.Equal(pc.Keys.LocalMasterSalt, l.Salt) ||
					!bytes.Equal(pc.Keys.RemoteMasterKey, r.Key) || !bytes.Equal(pc.Keys.RemoteMasterSalt, r.Salt) {
					t.Errorf("client=%v: keys differ from pion/srtp's extraction", side.isClient)
				}
			}

			roundTrip(t, cl, sr) // client -> server
			roundTrip(t, sl, cr) // server -> client
		})
	}
}

func keysEqual(a, b srtp.Keys) bool {
	return a.Suite == b.Suite && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Salt, b.Salt) && bytes.Equal(a.MKI, b.MKI)
}

// roundTrip protects RTP and RTCP with enc and unprotects with dec using
// pion/srtp contexts.
func roundTrip(t *testing.T, enc, dec srtp.Keys) {
	t.Helper()
	e, err := psrtp.CreateContext(enc.Key, enc.Salt, psrtp.ProtectionProfile(enc.Suite))
	if err != nil {
		t.Fatal(err)
	}
	d, err := psrtp.CreateContext(dec.Key, dec.Salt, psrtp.ProtectionProfile(dec.Suite),
		psrtp.SRTPReplayProtection(64), psrtp.SRTCPReplayProtection(64))
	if err != nil {
		t.Fatal(err)
	}
	pkt := &rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 4711, Timestamp: 160, SSRC: 0x11223344},
		Payload: bytes.Repeat([]byte{0xd5}, 160),
	}
	plain, err := pkt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ct, err := e.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, pkt.Payload[:16]) {
		t.Fatal("payload not encrypted")
	}
	pt, err := d.DecryptRTP(nil, ct, nil)
	if err != nil {
		t.Fatalf("DecryptRTP: %v", err)
	}
	if !bytes.Equal(pt, plain) {
		t.Fatal("RTP round trip changed the packet")
	}
	if _, err := d.DecryptRTP(nil, ct, nil); err == nil {
		t.Fatal("replayed SRTP packet accepted")
	}
	// A receiver report (RFC 3550 §6.4.2) without report blocks.
	rr := []byte{0x80, 201, 0x00, 0x01, 0x11, 0x22, 0x33, 0x44}
	sct, err := e.EncryptRTCP(nil, rr, nil)
	if err != nil {
		t.Fatal(err)
	}
	rpt, err := d.DecryptRTCP(nil, sct, nil)
	if err != nil {
		t.Fatalf("DecryptRTCP: %v", err)
	}
	if !bytes.Equal(rpt, rr) {
		t.Fatal("RTCP round trip changed the packet")
	}
}

func TestConnClosedUnderSession(t *testing.T) {
	checkGoroutines(t)
	alice, bob, _ := testCerts(t)
	a, b := udpPair(t)
	c, s := handshakePair(t, a, b, Config{Certificate: alice}, Config{Certificate: bob}, nil, nil)
	if c.err != nil || s.err != nil {
		t.Fatalf("client err %v, server err %v", c.err, s.err)
	}
	b.Close() // the flow closes the DTLS endpoint under the server session
	waitDone(t, s.s)
	if err := s.s.Err(); !errors.Is(err, net.ErrClosed) || errors.Is(err, ErrClosed) {
		t.Errorf("Err = %v, want net.ErrClosed but not ErrClosed", err)
	}
	if err := s.s.Close(); err != nil {
		t.Errorf("Close after the conn was closed: %v", err)
	}
	if err := c.s.Close(); err != nil {
		t.Errorf("client Close: %v", err)
	}
}

func TestCloseConcurrent(t *testing.T) {
	checkGoroutines(t)
	alice, bob, _ := testCerts(t)
	a, b := udpPair(t)
	c, s := handshakePair(t, a, b, Config{Certificate: alice}, Config{Certificate: bob}, nil, nil)
	if c.err != nil || s.err != nil {
		t.Fatalf("client err %v, server err %v", c.err, s.err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(2)
		go func() { defer wg.Done(); c.s.Close() }()
		go func() { defer wg.Done(); s.s.Close() }()
	}
	wg.Wait()
	waitDone(t, c.s)
	waitDone(t, s.s)
	// Each side closed itself; whichever close_notify arrived first, both
	// sessions have ended with an error.
	if c.s.Err() == nil || s.s.Err() == nil {
		t.Errorf("Err after Close: %v, %v", c.s.Err(), s.s.Err())
	}
}

func TestWatcherPanicRecovered(t *testing.T) {
	checkGoroutines(t)
	alice, bob, _ := testCerts(t)
	var panics atomic.Int32
	release := make(chan struct{})
	testHookWatchRead = func() {
		// Hold the first reads until both handshakes are done, or the
		// server's close could overtake the client's handshake.
		<-release
		if panics.Add(1) <= 2 {
			panic("boom")
		}
	}
	defer func() { testHookWatchRead = nil }()
	a, b := udpPair(t)
	c, s := handshakePair(t, a, b, Config{Certificate: alice}, Config{Certificate: bob}, nil, nil)
	close(release)
	if c.err != nil || s.err != nil {
		t.Fatalf("client err %v, server err %v", c.err, s.err)
	}
	for _, x := range []*Session{c.s, s.s} {
		waitDone(t, x)
		if !contains(x.Err(), "panic") {
			t.Errorf("Err = %v, want a panic error", x.Err())
		}
		if err := x.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func TestHandshakeConnClosedDuring(t *testing.T) {
	checkGoroutines(t)
	alice, _, _ := testCerts(t)
	a, _ := udpPair(t)
	time.AfterFunc(50*time.Millisecond, func() { a.Close() })
	_, err := Handshake(context.Background(), a, Server, Config{Certificate: alice}, nil)
	if !errors.Is(err, ErrHandshakeFailed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("err = %v, want ErrHandshakeFailed and net.ErrClosed", err)
	}
}

func TestHandshakeInvalidArguments(t *testing.T) {
	checkGoroutines(t)
	alice, _, _ := testCerts(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		role Role
		cfg  Config
		want error
	}{
		{"no certificate", Client, Config{}, ErrNoCertificate},
		{"no private key", Client, Config{Certificate: func() tls.Certificate { c := alice; c.PrivateKey = nil; return c }()}, ErrNoCertificate},
		{"bad role", Role(7), Config{Certificate: alice}, ErrInvalidConfig},
		{"negative timeout", Server, Config{Certificate: alice, HandshakeTimeout: -time.Second}, ErrInvalidConfig},
		{"empty suites", Server, Config{Certificate: alice, Suites: []srtp.Suite{}}, ErrInvalidConfig},
		{"unknown suite", Server, Config{Certificate: alice, Suites: []srtp.Suite{0x0005}}, ErrInvalidConfig},
		{"AES-256-CM not a DTLS profile", Server, Config{Certificate: alice, Suites: []srtp.Suite{srtp.AES256CMHMACSHA1_80}}, ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := udpPair(t)
			_, err := Handshake(ctx, a, tc.role, tc.cfg, nil)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			// Handshake owns the conn: it is closed.
			if _, err := a.Write([]byte{1}); !errors.Is(err, net.ErrClosed) {
				t.Errorf("conn still open after a failed Handshake: %v", err)
			}
		})
	}
	if _, err := Handshake(ctx, nil, Client, Config{Certificate: alice}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil conn: %v", err)
	}
}

// captureHandler records log records.
type captureHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *captureHandler) WithAttrs(attrs []slog.Attr) slog.Handler { return &attrHandler{h, attrs} }
func (h *captureHandler) WithGroup(string) slog.Handler            { return h }

// attrHandler adds attributes to the records it passes on.
type attrHandler struct {
	h     *captureHandler
	attrs []slog.Attr
}

func (a *attrHandler) Enabled(ctx context.Context, l slog.Level) bool { return true }
func (a *attrHandler) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(a.attrs...)
	return a.h.Handle(ctx, r)
}
func (a *attrHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attrHandler{a.h, append(append([]slog.Attr(nil), a.attrs...), attrs...)}
}
func (a *attrHandler) WithGroup(string) slog.Handler { return a }

func TestLoggerRoutesPion(t *testing.T) {
	checkGoroutines(t)
	alice, bob, _ := testCerts(t)
	h := &captureHandler{}
	l := slog.New(h)
	a, b := udpPair(t)
	c, s := handshakePair(t, a, b, Config{Certificate: alice, Logger: l}, Config{Certificate: bob, Logger: l}, nil, nil)
	if c.err != nil || s.err != nil {
		t.Fatalf("client err %v, server err %v", c.err, s.err)
	}
	c.s.Close()
	s.s.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	var pion, ours int
	for _, r := range h.records {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "scope" && a.Value.String() == "dtls" {
				pion++
				if r.Level > slog.LevelDebug {
					t.Errorf("pion logged above debug on a clean handshake: %v %q", r.Level, r.Message)
				}
			}
			if a.Key == "role" {
				ours++
			}
			return true
		})
	}
	if pion == 0 || ours == 0 {
		t.Errorf("records from pion: %d, from this package: %d; want both > 0", pion, ours)
	}
}

func TestEndCause(t *testing.T) {
	checkGoroutines(t)
	for _, tc := range []struct {
		name       string
		closedHere bool
		outAlerts  int
		readErr    error
		want       error
	}{
		{"close_notify answered", true, 1, nil, ErrPeerClosed},
		{"fatal alert", true, 0, nil, ErrFatalAlert},
		{"conn closed", false, 0, net.ErrClosed, net.ErrClosed},
		{"other", false, 0, nil, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &wireConn{closedHere: tc.closedHere, outAlerts: tc.outAlerts, readErr: tc.readErr}
			s := &Session{wire: w}
			if err := s.endCause(); !errors.Is(err, tc.want) {
				t.Errorf("endCause = %v, want %v", err, tc.want)
			}
		})
	}
}
