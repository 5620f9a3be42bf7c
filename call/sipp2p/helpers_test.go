package sipp2p

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/mediastream"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a server+client certificate for ip, valid until notAfter.
func (ca *testCA) leaf(t *testing.T, ip netip.Addr, notAfter time.Time) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: ip.String()},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		IPAddresses: []net.IP{ip.AsSlice()},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// ep is an endpoint with its own agent, recording events.
type ep struct {
	*Endpoint
	agent    *call.Agent
	incoming chan *call.Call
	messages chan Message
	mu       sync.Mutex
	states   []State
}

func newManager(t testing.TB) *flowmanager.Manager {
	t.Helper()
	m, err := flowmanager.New(flowmanager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newEP(t testing.TB, cfg Config, media call.MediaConfig) *ep {
	t.Helper()
	m := newManager(t)
	var err error
	if !media.LocalAddr.IsValid() {
		media.LocalAddr = loopback
	}
	e := &ep{incoming: make(chan *call.Call, 4), messages: make(chan Message, 4)}
	e.agent, err = call.New(call.Config{Manager: m, Media: media, Handler: call.HandlerFuncs{
		Incoming: func(c *call.Call) { e.incoming <- c },
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.agent.Close() })
	cfg.Agent = e.agent
	if cfg.URI == "" {
		cfg.URI = "sip:ep@example.test"
	}
	cfg.Handler = HandlerFuncs{
		StateChanged: func(from, to State, err error) {
			e.mu.Lock()
			e.states = append(e.states, to)
			e.mu.Unlock()
		},
		Message: func(m Message) { e.messages <- m },
	}
	e.Endpoint, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Endpoint.Close() })
	return e
}

// listen starts a listener on 127.0.0.1:0 and returns the target URI for it.
func (e *ep) listen(t *testing.T, tr Transport) string {
	t.Helper()
	a, err := e.StartListening(context.Background(), tr, netip.AddrPortFrom(loopback, 0))
	if err != nil {
		t.Fatal(err)
	}
	return "sip:callee@" + a.String() + ";transport=" + string(tr)
}

// answer waits for an incoming call, rings and accepts it.
func (e *ep) answer(t *testing.T, ctx context.Context) *call.Call {
	t.Helper()
	select {
	case c := <-e.incoming:
		if err := c.Ring(ctx); err != nil {
			t.Fatalf("ring: %v", err)
		}
		if err := c.Accept(ctx); err != nil {
			t.Fatalf("accept: %v", err)
		}
		return c
	case <-ctx.Done():
		t.Fatal("no incoming call")
		return nil
	}
}

// waitState waits until c reaches state s.
func waitState(t *testing.T, ctx context.Context, c *call.Call, s call.State) {
	t.Helper()
	for c.State() != s {
		select {
		case <-ctx.Done():
			t.Fatalf("call state %v, want %v", c.State(), s)
		case <-c.Done():
			if s != call.Terminated {
				t.Fatalf("call ended (%v) waiting for %v", c.Reason(), s)
			}
		case <-time.After(5 * time.Millisecond): // bounded poll of a state owned by another goroutine
		}
	}
}

func rtpPacket(seq uint16) []byte {
	return []byte{0x80, 0, byte(seq >> 8), byte(seq), 0, 0, 0, 1, 0, 0, 0, 42, 0xde, 0xad, 0xbe, 0xef}
}

// flows reports whether RTP written on from arrives on to (100 tries of 30 ms).
func flows(from, to *mediastream.Stream) bool {
	buf := make([]byte, 1500)
	for i := range 100 {
		if _, err := from.RTP().Write(rtpPacket(uint16(i))); errors.Is(err, net.ErrClosed) {
			return false
		}
		to.RTP().SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		n, _, err := to.RTP().ReadFromAddrPort(buf)
		if err == nil && n == 16 && buf[12] == 0xde {
			return true
		}
		if errors.Is(err, net.ErrClosed) {
			return false
		}
	}
	return false
}

func bothWays(t *testing.T, a, b *call.Call) {
	t.Helper()
	if !flows(a.Stream(), b.Stream()) {
		t.Error("no RTP from caller to callee")
	}
	if !flows(b.Stream(), a.Stream()) {
		t.Error("no RTP from callee to caller")
	}
}

func waitDone(t *testing.T, ctx context.Context, c *call.Call) call.Reason {
	t.Helper()
	select {
	case <-c.Done():
		return c.Reason()
	case <-ctx.Done():
		t.Fatalf("call did not end (state %v)", c.State())
		return call.Reason{}
	}
}

// proxy is a small stateful SIP proxy recording the requests that pass.
type proxy struct {
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	cli    *sipgo.Client
	addr   netip.AddrPort
	mu     sync.Mutex
	seen   []string
	mangle func(*sip.Response)
	wg     sync.WaitGroup
}

func newProxy(t *testing.T) *proxy {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	cli, _ := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientLogger(quiet))
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ua: ua, srv: srv, cli: cli, addr: pc.LocalAddr().(*net.UDPAddr).AddrPort()}
	srv.OnInvite(p.forward)
	srv.OnMessage(p.forward)
	p.wg.Add(1)
	go func() { defer p.wg.Done(); srv.ServeUDP(pc) }()
	t.Cleanup(func() { pc.Close(); srv.Close(); ua.Close(); p.wg.Wait() })
	return p
}

func (p *proxy) forward(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	p.seen = append(p.seen, req.Method.String()+" "+req.Recipient.Addr())
	mangle := p.mangle
	p.mu.Unlock()
	fwd := req.Clone()
	fwd.SetDestination(req.Recipient.HostPort())
	fwd.SetTransport(req.Transport())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx2, err := p.cli.TransactionRequest(ctx, fwd, sipgo.ClientRequestAddVia)
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 503, "Unreachable", nil))
		return
	}
	defer ctx2.Terminate()
	for {
		select {
		case res := <-ctx2.Responses():
			res = res.Clone()
			res.RemoveHeader("Via")
			res.SetDestination(req.Source()) // the clone still points at the callee
			if mangle != nil && res.IsSuccess() {
				mangle(res)
			}
			tx.Respond(res)
			if !res.IsProvisional() {
				return
			}
		case <-ctx2.Done():
			return
		case <-ctx.Done():
			return
		}
	}
}

func (p *proxy) setMangle(f func(*sip.Response)) {
	p.mu.Lock()
	p.mangle = f
	p.mu.Unlock()
}

func (p *proxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}
