package coturn

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pion/stun/v2"

	"github.com/reflow-go/reflow/internal/stunx"
	"github.com/reflow-go/reflow/internal/testserver"
)

// Credentials and names the server is configured with.
const (
	Realm      = "reflow.test"
	Username   = "alice"
	Password   = "s3cret"
	ServerName = "turn.reflow.test"
)

// Errors returned by Start.
var (
	// ErrNotInstalled is returned when the turnserver binary is not on PATH;
	// it wraps exec.ErrNotFound.
	ErrNotInstalled = fmt.Errorf("coturn: turnserver not found (install the Debian package coturn): %w", exec.ErrNotFound)
	// ErrNotReady is returned when coturn did not come up; the error text
	// carries the end of its log.
	ErrNotReady = errors.New("coturn: server did not become ready")
)

const (
	attempts        = 5               // whole starts tried with fresh ports
	attemptTimeout  = 5 * time.Second // for one start to become ready
	pollInterval    = 20 * time.Millisecond
	relayPortsCount = 100
)

// Server is a running coturn.
type Server struct {
	// UDP and TCP are the plain listeners (coturn uses one port for both);
	// TLS is the TLS listener.
	UDP, TCP, TLS netip.AddrPort
	// Realm, Username and Password are the long-term credentials.
	Realm, Username, Password string
	// RootCAs trusts the TLS certificate; ServerName is the DNS name in it
	// (it also names 127.0.0.1).
	RootCAs    *x509.CertPool
	ServerName string
	// RelayPorts is the range coturn allocates relays from (min-port,
	// max-port).
	RelayPorts [2]uint16
	// LogFile is coturn's log; Stdout holds its standard output and error.
	LogFile, Stdout string

	bin, conf string
	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{}
	closed    bool
}

// Config configures StartConfig. Zero fields take coturn's defaults.
type Config struct {
	// Dir receives the configuration, certificate, key, logs and user
	// database; it must exist (use a temporary directory).
	Dir string
	// MaxAllocateLifetime, when positive, is coturn's max-allocate-lifetime
	// (whole seconds): the longest allocation lifetime it grants, also to an
	// Allocate without LIFETIME (coturn's default is 600 s, capped at 3600 s).
	MaxAllocateLifetime time.Duration
	// ChannelLifetime, when positive, is coturn's channel-lifetime (default
	// 600 s).
	ChannelLifetime time.Duration
	// PermissionLifetime, when positive, is coturn's permission-lifetime
	// (default 300 s).
	PermissionLifetime time.Duration
	// IPv6 makes coturn listen and relay on ::1 only (IPv6 relays only: an
	// Allocate without REQUESTED-ADDRESS-FAMILY IPv6 is answered 440).
	IPv6 bool
	// RelayIPv6Too adds ::1 as a second relay address to an IPv4 server, so
	// that it can give IPv4 and IPv6 relays (ADDITIONAL-ADDRESS-FAMILY).
	RelayIPv6Too bool
	// DeniedPeers are coturn denied-peer-ip values (an address or a range
	// "a-b"): permissions for them are refused with 403.
	DeniedPeers []string
}

// Start is StartConfig with coturn's defaults and files in dir.
func Start(ctx context.Context, dir string) (*Server, error) {
	return StartConfig(ctx, Config{Dir: dir})
}

// StartConfig writes a configuration, certificate and key into cfg.Dir and
// starts turnserver on free loopback ports, retrying with other ports if
// coturn cannot bind. It returns when coturn answers a STUN Binding request
// over UDP, TCP and TLS (the TLS handshake verified against RootCAs), or
// with an error when ctx ends first. It returns ErrNotInstalled when
// turnserver is not on PATH.
func StartConfig(ctx context.Context, cfg Config) (*Server, error) {
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		return nil, ErrNotInstalled
	}
	certFile, keyFile, pool, err := writeCertificate(cfg.Dir, cfg.IPv6)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i := range attempts {
		s, err := startOnce(ctx, bin, cfg, i, certFile, keyFile, pool)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func writeCertificate(dir string, ipv6 bool) (certFile, keyFile string, pool *x509.CertPool, err error) {
	ip := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if ipv6 {
		ip = netip.IPv6Loopback()
	}
	cert, pool, err := testserver.SelfSigned([]string{ServerName}, []netip.Addr{ip})
	if err != nil {
		return "", "", nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return "", "", nil, fmt.Errorf("coturn: key: %w", err)
	}
	certFile = filepath.Join(dir, "cert.pem")
	keyFile = filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
		return "", "", nil, fmt.Errorf("coturn: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", nil, fmt.Errorf("coturn: %w", err)
	}
	return certFile, keyFile, pool, nil
}

// freePort returns a loopback port that is free for TCP and UDP right now.
func freePort(ip netip.Addr) (uint16, error) {
	fam := "4"
	if ip.Is6() {
		fam = "6"
	}
	for range 20 {
		l, err := net.Listen("tcp"+fam, netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp"+fam, netip.AddrPortFrom(ip, uint16(port)).String())
		_ = l.Close()
		if err != nil {
			continue
		}
		_ = u.Close()
		return uint16(port), nil
	}
	return 0, errors.New("coturn: no free port")
}

func startOnce(ctx context.Context, bin string, cfg Config, attempt int, certFile, keyFile string, pool *x509.CertPool) (*Server, error) {
	loop := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if cfg.IPv6 {
		loop = netip.IPv6Loopback()
	}
	plain, err := freePort(loop)
	if err != nil {
		return nil, err
	}
	secure, err := freePort(loop)
	if err != nil {
		return nil, err
	}
	if secure == plain {
		return nil, errors.New("coturn: the same free port twice")
	}
	// Relays come from below Linux's ephemeral range (32768-60999), so they
	// do not collide with the ports picked above or by other tests.
	minPort := uint16(10000 + rand.IntN(20000))
	dir := cfg.Dir
	s := &Server{
		UDP:        netip.AddrPortFrom(loop, plain),
		TCP:        netip.AddrPortFrom(loop, plain),
		TLS:        netip.AddrPortFrom(loop, secure),
		Realm:      Realm,
		Username:   Username,
		Password:   Password,
		RootCAs:    pool,
		ServerName: ServerName,
		RelayPorts: [2]uint16{minPort, minPort + relayPortsCount - 1},
		LogFile:    filepath.Join(dir, fmt.Sprintf("turnserver-%d.log", attempt)),
		Stdout:     filepath.Join(dir, fmt.Sprintf("turnserver-%d.stdout", attempt)),
		bin:        bin,
	}
	s.conf = filepath.Join(dir, fmt.Sprintf("turnserver-%d.conf", attempt))
	if err := os.WriteFile(s.conf, []byte(s.config(cfg, attempt, certFile, keyFile)), 0o600); err != nil {
		return nil, fmt.Errorf("coturn: %w", err)
	}
	if err := s.run(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// run starts the turnserver process on s's configuration and waits until
// it answers.
func (s *Server) run(ctx context.Context) error {
	out, err := os.OpenFile(s.Stdout, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("coturn: %w", err)
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(s.bin, "-c", s.conf)
	cmd.Dir = filepath.Dir(s.conf)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("coturn: start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	if err := s.waitReady(actx); err != nil {
		return fmt.Errorf("%w on %v / %v: %w\n%s", ErrNotReady, s.UDP, s.TLS, err, s.logTail())
	}
	return nil
}

// Kill kills coturn (SIGKILL: no goodbye to its clients beyond what the
// kernel does for its TCP connections) and waits for it to exit. Restart
// may start it again.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill() // fails only if it has exited already
	<-exited
}

// CPUTime is the CPU time (user and system) the running coturn process
// has used so far; benchmarks take the difference over a run.
func (s *Server) CPUTime() (time.Duration, error) {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0, errors.New("coturn: not running")
	}
	return cpuTime(cmd.Process.Pid)
}

// Restart kills coturn and starts a fresh process (no allocations, new
// nonces) with the same configuration on the same ports.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("coturn: restart: %w", net.ErrClosed)
	}
	s.Kill()
	return s.run(ctx)
}

// config is coturn's configuration file (see turnserver(1)).
func (s *Server) config(cfg Config, attempt int, certFile, keyFile string) string {
	dir := cfg.Dir
	ip := s.UDP.Addr().String()
	lines := []string{
		"listening-ip=" + ip,
		"relay-ip=" + ip,
		fmt.Sprintf("listening-port=%d", s.UDP.Port()),
		fmt.Sprintf("tls-listening-port=%d", s.TLS.Port()),
		fmt.Sprintf("min-port=%d", s.RelayPorts[0]),
		fmt.Sprintf("max-port=%d", s.RelayPorts[1]),
		"lt-cred-mech",
		fmt.Sprintf("user=%s:%s", s.Username, s.Password),
		"realm=" + s.Realm,
		"cert=" + certFile,
		"pkey=" + keyFile,
		"no-dtls",
		"no-rfc5780",
		"allow-loopback-peers",
		"no-multicast-peers",
		"no-cli",
		"fingerprint",
		"log-file=" + s.LogFile,
		"simple-log",
		"verbose",
		"pidfile=" + filepath.Join(dir, fmt.Sprintf("turnserver-%d.pid", attempt)),
		"userdb=" + filepath.Join(dir, fmt.Sprintf("turndb-%d", attempt)),
	}
	if cfg.RelayIPv6Too && !cfg.IPv6 {
		lines = append(lines, "relay-ip=::1")
	}
	for _, d := range cfg.DeniedPeers {
		lines = append(lines, "denied-peer-ip="+d)
	}
	for _, o := range []struct {
		name string
		d    time.Duration
	}{
		{"max-allocate-lifetime", cfg.MaxAllocateLifetime},
		{"channel-lifetime", cfg.ChannelLifetime},
		{"permission-lifetime", cfg.PermissionLifetime},
	} {
		if o.d > 0 {
			lines = append(lines, fmt.Sprintf("%s=%d", o.name, max(1, int(o.d/time.Second))))
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// waitReady polls until coturn answers STUN Binding over UDP, TCP and TLS.
func (s *Server) waitReady(ctx context.Context) error {
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var udpOK, tcpOK, tlsOK bool
	var last error
	for {
		if log, _ := os.ReadFile(s.LogFile); bytes.Contains(log, []byte("Cannot bind")) {
			return errors.New("coturn cannot bind its ports")
		}
		if !udpOK {
			udpOK, last = s.probe(ctx, "udp")
		}
		if udpOK && !tcpOK {
			tcpOK, last = s.probe(ctx, "tcp")
		}
		if tcpOK && !tlsOK {
			tlsOK, last = s.probe(ctx, "tls")
		}
		if tlsOK {
			return nil
		}
		select {
		case <-exited:
			return errors.New("turnserver exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last probe: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// probe sends one Binding request over network and reports whether coturn
// (SOFTWARE "Coturn...") answered it within one poll interval.
func (s *Server) probe(ctx context.Context, network string) (bool, error) {
	d := net.Dialer{Timeout: pollInterval}
	var (
		c   net.Conn
		err error
	)
	switch network {
	case "udp":
		c, err = d.DialContext(ctx, "udp", s.UDP.String())
	case "tcp":
		c, err = d.DialContext(ctx, "tcp", s.TCP.String())
	case "tls":
		td := tls.Dialer{NetDialer: &d, Config: &tls.Config{RootCAs: s.RootCAs, ServerName: s.ServerName, MinVersion: tls.VersionTLS12}}
		c, err = td.DialContext(ctx, "tcp", s.TLS.String())
	}
	if err != nil {
		return false, err
	}
	defer c.Close()
	req, err := stunx.NewBindingRequest()
	if err != nil {
		return false, err
	}
	if err := c.SetDeadline(time.Now().Add(4 * pollInterval)); err != nil {
		return false, err
	}
	if _, err := c.Write(req.Raw); err != nil {
		return false, err
	}
	var b []byte
	if network == "udp" {
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if err != nil {
			return false, err
		}
		b = buf[:n]
	} else {
		hdr := make([]byte, 20)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return false, err
		}
		b = make([]byte, 20+int(binary.BigEndian.Uint16(hdr[2:4])))
		copy(b, hdr)
		if _, err := io.ReadFull(c, b[20:]); err != nil {
			return false, err
		}
	}
	res, err := stunx.Decode(b)
	if err != nil {
		return false, err
	}
	var sw stun.Software
	if res.TransactionID != req.TransactionID || res.Type != stun.BindingSuccess ||
		sw.GetFrom(res) != nil || !strings.HasPrefix(sw.String(), "Coturn") {
		return false, fmt.Errorf("unexpected answer over %s: %v (SOFTWARE %q)", network, res, sw)
	}
	return true, nil
}

// logTail returns the end of coturn's log and output, for error messages.
func (s *Server) logTail() string {
	var b strings.Builder
	for _, f := range []string{s.LogFile, s.Stdout} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "--- %s:\n%s\n", f, data)
	}
	return b.String()
}

// Close kills coturn and waits for it to exit. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.Kill()
	return nil
}
