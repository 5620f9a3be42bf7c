package testserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v2"
	"github.com/pion/turn/v3"
	"github.com/reflow-go/reflow/internal/pionlog"

	"github.com/reflow-go/reflow/internal/stunx"
)

// Defaults of TURNConfig.
const (
	DefaultRealm      = "reflow.test"
	DefaultUsername   = "alice"
	DefaultPassword   = "s3cret"
	DefaultServerName = "turn.reflow.test"
)

// TURNConfig configures StartTURN. Zero fields take the documented defaults.
type TURNConfig struct {
	// Realm is the long-term credential realm; default "reflow.test".
	Realm string
	// Users maps user names to passwords; default {"alice": "s3cret"}.
	Users map[string]string
	// Host is the address the UDP, TCP and TLS listeners bind (each on a
	// port of its own chosen by the system); default 127.0.0.1.
	Host netip.Addr
	// RelayAddress is the address relays are allocated on; default Host,
	// which must then not be unspecified. pion/turn/v3 relays over IPv4 only.
	RelayAddress netip.Addr
	// ChannelBindTimeout is the channel binding lifetime, passed to pion
	// (0: pion's default of 10 minutes).
	ChannelBindTimeout time.Duration
	// MaxLifetime, when positive, caps the lifetime the server grants in
	// Allocate and Refresh responses, like coturn's max-allocate-lifetime.
	// pion/turn/v3 grants the client's LIFETIME if it is below one hour and
	// 10 minutes without one, and its client never sends one; so the
	// server's input is rewritten: an authenticated Allocate or Refresh
	// request without LIFETIME or with a larger non-zero one gets
	// LIFETIME=MaxLifetime and is re-signed with the user's key before pion
	// reads it. Whole seconds, at least 1 s, at most 1 h. The pion client then
	// refreshes every MaxLifetime/2.
	MaxLifetime time.Duration
	// Logger receives pion's logs (Trace at slog.LevelDebug-4); nil discards.
	Logger *slog.Logger
	// ForwardPadding makes the server frame ChannelData the way reSIProcate's
	// reTurnServer does: over UDP it relays a ChannelData message's padding
	// to the peer as if it were data (RFC 8656 §12.5 lets a client pad over
	// UDP, and then the peer gets a longer packet); over TCP and TLS it does
	// not pad the ChannelData it sends and does not skip the padding of what
	// it receives (a client that pads breaks the connection at its first
	// unaligned frame).
	ForwardPadding bool
}

// TURN is a running pion/turn/v3 server with long-term authentication and
// UDP, TCP and TLS listeners. It also answers STUN Binding requests.
type TURN struct {
	// UDP, TCP and TLS are the listener addresses; they stay the same
	// across Restart.
	UDP, TCP, TLS netip.AddrPort
	// Realm is the credential realm.
	Realm string
	// RootCAs trusts the TLS listener's self-signed certificate.
	RootCAs *x509.CertPool
	// ServerName is the DNS name in the certificate ("turn.reflow.test");
	// the certificate also names "localhost" and Host as an IP address.
	ServerName string

	cfg         TURNConfig
	cert        tls.Certificate
	keys        map[string][]byte
	maxLifetime uint32
	log         logging.LoggerFactory
	refreshes   counter
	channelData counter

	mu     sync.Mutex
	inst   *turnInstance // nil after a failed Restart and after Close
	closed bool
}

// turnInstance is one pion server and the sockets it runs on.
type turnInstance struct {
	srv *turn.Server
	tr  *tracker
}

// StartTURN starts a TURN server as configured.
func StartTURN(cfg TURNConfig) (*TURN, error) {
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if len(cfg.Users) == 0 {
		cfg.Users = map[string]string{DefaultUsername: DefaultPassword}
	}
	if !cfg.Host.IsValid() {
		cfg.Host = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if !cfg.RelayAddress.IsValid() {
		cfg.RelayAddress = cfg.Host
	}
	if cfg.RelayAddress.IsUnspecified() {
		return nil, errors.New("testserver: RelayAddress must be a concrete address (set it when Host is unspecified)")
	}
	cert, pool, err := SelfSigned([]string{DefaultServerName, "localhost"}, []netip.Addr{cfg.Host})
	if err != nil {
		return nil, err
	}
	t := &TURN{
		Realm:       cfg.Realm,
		RootCAs:     pool,
		ServerName:  DefaultServerName,
		cfg:         cfg,
		cert:        cert,
		keys:        make(map[string][]byte, len(cfg.Users)),
		maxLifetime: lifetimeSeconds(cfg.MaxLifetime),
		log:         pionlog.Factory(cfg.Logger),
	}
	for u, p := range cfg.Users {
		t.keys[u] = turn.GenerateAuthKey(u, cfg.Realm, p)
	}
	anyPort := netip.AddrPortFrom(cfg.Host, 0)
	inst, udp, tcp, tlsAddr, err := t.start(anyPort, anyPort, anyPort)
	if err != nil {
		return nil, err
	}
	t.inst, t.UDP, t.TCP, t.TLS = inst, udp, tcp, tlsAddr
	return t, nil
}

// Restart stops the server, dropping every allocation and closing every TCP
// and TLS connection, and starts a fresh one (new nonce key, no state) on
// the same three addresses. It fails if an address cannot be bound again;
// the TURN is then stopped but Close must still be called.
func (t *TURN) Restart() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("testserver: restart: %w", net.ErrClosed)
	}
	var err error
	if t.inst != nil {
		err = t.inst.close()
		t.inst = nil
	}
	inst, _, _, _, serr := t.start(t.UDP, t.TCP, t.TLS)
	if serr != nil {
		return errors.Join(err, serr)
	}
	t.inst = inst
	return err
}

// AllocationCount returns the number of allocations the current server
// holds.
func (t *TURN) AllocationCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inst == nil {
		return 0
	}
	return t.inst.srv.AllocationCount()
}

// WaitAllocations polls until AllocationCount equals n or ctx ends.
func (t *TURN) WaitAllocations(ctx context.Context, n int) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if t.AllocationCount() == n {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("testserver: %d allocations, waiting for %d: %w", t.AllocationCount(), n, ctx.Err())
		}
	}
}

// Refreshes returns how many Refresh requests the server has received on all
// listeners since StartTURN (across restarts; unauthenticated first tries,
// deallocations and UDP retransmissions included).
func (t *TURN) Refreshes() int { return t.refreshes.value() }

// ChannelData returns how many ChannelData messages the server has received
// from clients on all listeners since StartTURN.
func (t *TURN) ChannelData() int { return t.channelData.value() }

// WaitRefreshes returns when Refreshes is at least n, or with ctx's error.
func (t *TURN) WaitRefreshes(ctx context.Context, n int) error { return t.refreshes.wait(ctx, n) }

// Close stops the server: it closes every socket, including the TCP and TLS
// connections pion/turn/v3 leaves open on its own, and returns once pion's
// goroutines have all seen that and its allocation table is empty. They end
// right after (pion offers no way to join them), so a goroutine-leak check
// should poll briefly. Close is idempotent.
func (t *TURN) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if t.inst == nil {
		return nil
	}
	err := t.inst.close()
	t.inst = nil
	return err
}

func (in *turnInstance) close() error {
	err := in.srv.Close()
	if serr := in.tr.shutdown(); serr != nil {
		return errors.Join(err, serr)
	}
	// Every relay is closed and its reader has seen the error; each reader
	// then deletes its allocation from pion's table (under the table's lock,
	// which pion's own cleanup holds meanwhile) and returns. pion offers no
	// other way to wait for those goroutines.
	deadline := time.NewTimer(shutdownTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for in.srv.AllocationCount() != 0 {
		select {
		case <-tick.C:
		case <-deadline.C:
			return errors.Join(err, errShutdownTimeout)
		}
	}
	return err
}

func network(proto string, a netip.Addr) string {
	if a.Is4() || a.Is4In6() {
		return proto + "4"
	}
	return proto + "6"
}

// start binds the three listeners and starts a pion server on them.
func (t *TURN) start(udpAddr, tcpAddr, tlsAddr netip.AddrPort) (*turnInstance, netip.AddrPort, netip.AddrPort, netip.AddrPort, error) {
	var (
		none   netip.AddrPort
		tr     = newTracker()
		opened []func() // close a listening socket and mark its reader done
	)
	fail := func(err error) (*turnInstance, netip.AddrPort, netip.AddrPort, netip.AddrPort, error) {
		for _, f := range opened {
			f()
		}
		return nil, none, none, none, errors.Join(err, tr.shutdown())
	}
	register := func(c io.Closer) func() {
		done, _ := tr.add(c) // cannot fail: tr is new
		opened = append(opened, func() { _ = c.Close(); done() })
		return done
	}

	pc, err := net.ListenUDP(network("udp", udpAddr.Addr()), net.UDPAddrFromAddrPort(udpAddr))
	if err != nil {
		return fail(fmt.Errorf("testserver: TURN UDP listener: %w", err))
	}
	pcDone := register(pc)
	tcpL, err := net.ListenTCP(network("tcp", tcpAddr.Addr()), net.TCPAddrFromAddrPort(tcpAddr))
	if err != nil {
		return fail(fmt.Errorf("testserver: TURN TCP listener: %w", err))
	}
	tcpDone := register(tcpL)
	tlsL, err := net.ListenTCP(network("tcp", tlsAddr.Addr()), net.TCPAddrFromAddrPort(tlsAddr))
	if err != nil {
		return fail(fmt.Errorf("testserver: TURN TLS listener: %w", err))
	}
	tlsDone := register(tlsL)

	gen := &relayGenerator{ip: t.cfg.RelayAddress, tr: tr}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{t.cert}, MinVersion: tls.VersionTLS12}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:              t.cfg.Realm,
		LoggerFactory:      t.log,
		ChannelBindTimeout: t.cfg.ChannelBindTimeout,
		AuthHandler: func(username, _ string, _ net.Addr) ([]byte, bool) {
			key, ok := t.keys[username]
			return key, ok
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            &trackedPacketConn{PacketConn: pc, done: pcDone, inspect: t.inspect},
			RelayAddressGenerator: gen,
		}},
		ListenerConfigs: []turn.ListenerConfig{
			{
				Listener: &framingListener{
					Listener:      &trackedListener{Listener: tcpL, tr: tr, done: tcpDone},
					inspect:       t.inspect,
					onChannelData: t.channelData.add,
					noPad:         t.cfg.ForwardPadding,
				},
				RelayAddressGenerator: gen,
			},
			{
				Listener: &framingListener{
					Listener:      tls.NewListener(&trackedListener{Listener: tlsL, tr: tr, done: tlsDone}, tlsConf),
					inspect:       t.inspect,
					onChannelData: t.channelData.add,
					noPad:         t.cfg.ForwardPadding,
				},
				RelayAddressGenerator: gen,
			},
		},
	})
	if err != nil {
		// pion may have started readers on some sockets already; they leave
		// when the sockets close, the others never started.
		return fail(fmt.Errorf("testserver: TURN server: %w", err))
	}
	return &turnInstance{srv: srv, tr: tr},
		pc.LocalAddr().(*net.UDPAddr).AddrPort(),
		tcpL.Addr().(*net.TCPAddr).AddrPort(),
		tlsL.Addr().(*net.TCPAddr).AddrPort(), nil
}

// inspect looks at every STUN message a client sends: it counts Refresh
// requests and applies MaxLifetime. It returns a replacement or nil.
func (t *TURN) inspect(b []byte) []byte {
	if len(b) >= 4 && b[0] >= 0x40 && b[0] <= 0x4F {
		t.channelData.add()
	}
	if t.cfg.ForwardPadding && len(b) >= 4 && b[0] >= 0x40 && b[0] <= 0x4F {
		if l := int(b[2])<<8 | int(b[3]); len(b) > 4+l { // relay the padding too
			out := append([]byte(nil), b...)
			out[2], out[3] = byte((len(b)-4)>>8), byte(len(b)-4)
			return out
		}
		return nil
	}
	if !stunx.IsSTUN(b) {
		return nil
	}
	m, err := stunx.Decode(b)
	if err != nil || m.Type.Class != stun.ClassRequest {
		return nil
	}
	switch m.Type.Method {
	case stun.MethodRefresh:
		t.refreshes.add()
	case stun.MethodAllocate:
	default:
		return nil
	}
	if t.maxLifetime == 0 {
		return nil
	}
	return capLifetime(m, t.maxLifetime, t.cfg.Realm, t.keys)
}

// relayGenerator allocates UDP relays on one address and tracks them.
type relayGenerator struct {
	ip netip.Addr
	tr *tracker
}

var errNoTCPRelay = errors.New("testserver: TCP relays (RFC 6062) are not supported")

func (g *relayGenerator) Validate() error { return nil }

func (g *relayGenerator) AllocatePacketConn(_ string, requestedPort int) (net.PacketConn, net.Addr, error) {
	if requestedPort < 0 || requestedPort > 0xFFFF {
		return nil, nil, fmt.Errorf("testserver: relay port %d", requestedPort)
	}
	pc, err := net.ListenUDP(network("udp", g.ip), net.UDPAddrFromAddrPort(netip.AddrPortFrom(g.ip, uint16(requestedPort))))
	if err != nil {
		return nil, nil, err
	}
	done, ok := g.tr.add(pc)
	if !ok {
		_ = pc.Close()
		return nil, nil, fmt.Errorf("testserver: relay during shutdown: %w", net.ErrClosed)
	}
	return &trackedPacketConn{PacketConn: pc, done: done}, pc.LocalAddr(), nil
}

func (g *relayGenerator) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, errNoTCPRelay
}
