// Command loadtest measures what media streams cost: it sets up N pairs of
// streams (RTP + RTCP flows each), sends 20 ms RTP packets of 172 bytes (G.711
// shape, 50 packets/s) each way plus an RTCP sender report every 5 s, and
// prints a status line every second and a final table: setup time, loss,
// reordering, jitter (RFC 3550 A.8), CPU, RSS and goroutines per stream.
//
// Both ends run in one process (two managers) by default, or in two processes
// that exchange tuples, SDES keys and DTLS fingerprints over a small
// line-delimited JSON control protocol on TCP:
//
//	go run ./examples/loadtest                                 # 1000 pairs, no NAT, no SRTP, 10 s
//	go run ./examples/loadtest -srtp sdes -duration 60s        # SDES AEAD_AES_128_GCM
//	go run ./examples/loadtest -srtp dtls -n 500               # 1000 DTLS-SRTP streams at once
//	go run ./examples/loadtest -nat turn-udp -n 100            # through an in-process TURN server
//	go run ./examples/loadtest -idle -readers=false            # memory/goroutines of idle streams
//	go run ./examples/loadtest -churn 10000 -batch 100         # create/close streams 100 at a time
//	go run ./examples/loadtest -raw                            # the same load on plain UDP sockets (baseline)
//	go run ./examples/loadtest -listen 127.0.0.1:7000 &        # two processes
//	go run ./examples/loadtest -connect 127.0.0.1:7000 -srtp dtls
//
// In two-process mode the connecting side chooses N, the SRTP mode and the
// duration; the listening side follows (DTLS server; its NAT mode is its own
// -nat) and both print their own receive statistics. Ctrl-C ends a run and
// prints the table.
//
// How figures are taken: CPU from getrusage(RUSAGE_SELF), RSS and peak RSS
// from /proc/self/status (VmRSS, VmHWM). "RSS per stream" is (RSS with every
// stream up and idle, after two GCs) minus (RSS of the idle process with its
// managers and certificates made), divided by the streams; it is also given
// split into live heap and goroutine stacks, and after debug.FreeOSMemory.
// Goroutines of the library are the process's count minus the idle baseline
// minus the tool's own readers and senders. Loss, reordering and jitter
// (RFC 3550 A.3 and A.8, 8 kHz clock) are per receiving stream from sequence
// numbers and timestamps; a sender woken late sends the packets it owes with
// their nominal timestamps, so lateness shows as jitter, not as fewer packets.
// With the in-process STUN/TURN server, its CPU, memory and goroutines count
// in the process figures; use -server for a server outside the process.
//
// Pacing: -senders goroutines (default 4) serve all streams on a shared 20 ms
// schedule, offset from each other; each flow has one reader goroutine (the
// library's read blocks), counted as the tool's. -readers=false with -idle
// measures the library alone.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
	"github.com/reflow-go/reflow/srtp"
)

type opts struct {
	n        int
	natName  string
	nat      natmode.Config
	server   string
	user     string
	pass     string
	insecure bool
	local    netip.Addr
	srtpMode string
	suite    string
	suiteID  srtp.Suite
	duration time.Duration
	rtcp     bool
	senders  int
	parallel int
	idle     bool
	readers  bool
	settle   time.Duration
	churn    int
	batch    int
	listen   string
	connect  string
	jsonPath string
	quiet    bool
	verbose  bool
	timeout  time.Duration
	profile  string
	raw      bool
}

func (o *opts) streamConfig() mediastream.Config {
	cfg := mediastream.Config{LocalAddr: o.local, RTCP: o.rtcp, NAT: o.nat}
	switch o.srtpMode { // secured streams never send or deliver clear media
	case "sdes":
		cfg.Security = mediastream.SDES
	case "dtls":
		cfg.Security = mediastream.DTLS
	}
	return cfg
}

func main() {
	o, err := parseFlags()
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func parseFlags() (*opts, error) {
	o := &opts{}
	var local string
	flag.IntVar(&o.n, "n", 1000, "stream pairs (each end a stream with RTP and RTCP flows)")
	flag.StringVar(&o.natName, "nat", "none", "NAT traversal: none, stun, turn-udp, turn-tcp, turn-tls")
	flag.StringVar(&o.server, "server", "", "STUN/TURN server ip:port (default: an in-process server on 127.0.0.1)")
	flag.StringVar(&o.user, "user", "", "TURN username (with -server)")
	flag.StringVar(&o.pass, "pass", "", "TURN password (with -server)")
	flag.BoolVar(&o.insecure, "insecure", false, "do not verify a -server's TLS certificate (testing only)")
	flag.StringVar(&local, "local", "127.0.0.1", "local IP address to bind")
	flag.StringVar(&o.srtpMode, "srtp", "none", "media protection: none, sdes, dtls")
	flag.StringVar(&o.suite, "suite", "AEAD_AES_128_GCM", "SDES crypto suite")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long media flows after setup")
	flag.BoolVar(&o.rtcp, "rtcp", true, "give RTCP its own flow (false: rtcp-mux)")
	flag.IntVar(&o.senders, "senders", 4, "sender goroutines, each serving 1/senders of the streams")
	flag.IntVar(&o.parallel, "parallel", 0, "pairs set up concurrently (0: all at once)")
	flag.BoolVar(&o.idle, "idle", false, "set up the streams, send no media, hold them for -duration and report memory")
	flag.BoolVar(&o.readers, "readers", true, "run a reader goroutine per flow (with -idle: false measures the library alone)")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wait after setup before sampling idle memory")
	flag.IntVar(&o.churn, "churn", 0, "churn mode: create and close this many streams in total")
	flag.IntVar(&o.batch, "batch", 100, "churn mode: streams per batch (pairs of streams, so even)")
	flag.StringVar(&o.listen, "listen", "", "two-process mode: accept the peer's control connection on ip:port")
	flag.StringVar(&o.connect, "connect", "", "two-process mode: connect to the peer's control address ip:port")
	flag.StringVar(&o.jsonPath, "json", "", "also write the final report as JSON to this file (- for stdout)")
	flag.BoolVar(&o.quiet, "q", false, "no status lines")
	flag.BoolVar(&o.verbose, "v", false, "log library warnings to stderr")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "setup timeout")
	flag.BoolVar(&o.raw, "raw", false, "baseline: the same pairs, packets, senders and readers on plain UDP sockets, no library")
	flag.StringVar(&o.profile, "profile", "", "write goroutine and heap profiles (streams up) and a CPU profile (media) into this directory")
	flag.Parse()
	var err error
	if o.local, err = netip.ParseAddr(local); err != nil {
		return nil, fmt.Errorf("-local: %w", err)
	}
	if o.nat.Mode, err = natmode.ParseMode(o.natName); err != nil {
		return nil, fmt.Errorf("-nat: %w", err)
	}
	if err := o.checkSRTP(); err != nil {
		return nil, err
	}
	if o.n < 1 {
		return nil, errors.New("-n must be at least 1")
	}
	if o.batch < 2 || o.batch%2 != 0 {
		return nil, errors.New("-batch must be even and at least 2")
	}
	return o, nil
}

func (o *opts) checkSRTP() error {
	switch o.srtpMode {
	case "none", "dtls":
	case "sdes":
		s, err := srtp.ParseSuite(o.suite)
		if err != nil {
			return fmt.Errorf("-suite: %w", err)
		}
		o.suiteID = s
	default:
		return fmt.Errorf("-srtp %q: want none, sdes or dtls", o.srtpMode)
	}
	return nil
}

// setupNAT fills o.nat's server and credentials, starting an in-process
// STUN/TURN server when no -server is given. The returned function stops it.
func (o *opts) setupNAT() (func(), error) {
	o.nat.Username, o.nat.Password = o.user, o.pass
	if o.nat.Mode == natmode.None {
		return func() {}, nil
	}
	if o.server != "" {
		ap, err := netip.ParseAddrPort(o.server)
		if err != nil {
			return nil, fmt.Errorf("-server: %w", err)
		}
		o.nat.Server = ap
		if o.insecure {
			o.nat.TLSConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in test flag
		}
		return func() {}, nil
	}
	srv, err := testserver.StartTURN(testserver.TURNConfig{Host: o.local})
	if err != nil {
		return nil, fmt.Errorf("in-process TURN server: %w", err)
	}
	o.nat.Server = map[natmode.Mode]netip.AddrPort{natmode.STUNBinding: srv.UDP, natmode.TURNUDP: srv.UDP,
		natmode.TURNTCP: srv.TCP, natmode.TURNTLS: srv.TLS}[o.nat.Mode]
	o.nat.Username, o.nat.Password = testserver.DefaultUsername, testserver.DefaultPassword
	o.nat.RootCAs, o.nat.ServerName = srv.RootCAs, srv.ServerName
	o.printf("in-process STUN/TURN server: udp %s, tcp %s, tls %s\n", srv.UDP, srv.TCP, srv.TLS)
	return func() { srv.Close() }, nil
}

func (o *opts) printf(format string, args ...any) {
	if !o.quiet {
		fmt.Fprintf(os.Stderr, format, args...)
	}
}

func (o *opts) logger() *slog.Logger {
	if !o.verbose {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newManager makes a manager and, for DTLS, its certificate (so that the
// certificate is part of the idle baseline, not of the first stream).
func (o *opts) newManager(aor string) (*flowmanager.Manager, error) {
	m, err := flowmanager.New(flowmanager.Config{Logger: o.logger(), AOR: aor})
	if err != nil {
		return nil, err
	}
	if o.srtpMode == "dtls" {
		if _, err := m.Fingerprint(); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

func run(o *opts) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopNAT, err := o.setupNAT()
	if err != nil {
		return err
	}
	defer stopNAT()
	var r *report
	switch {
	case o.churn > 0:
		r, err = runChurn(ctx, o)
	case o.raw:
		r, err = runRaw(ctx, o)
	case o.listen != "" || o.connect != "":
		r, err = runTwoProcess(ctx, o)
	default:
		r, err = runOneProcess(ctx, o)
	}
	if r != nil {
		r.print(os.Stdout)
		if werr := r.writeJSON(o.jsonPath); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// parseAddrPort parses ip:port.
func parseAddrPort(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, errors.New("missing address")
	}
	return netip.ParseAddrPort(strings.TrimSpace(s))
}

// gcSample collects garbage before sampling, so that RSS reflects live memory
// plus what the runtime kept rather than garbage of the setup.
func gcSample() procSample {
	runtime.GC()
	runtime.GC() // a second cycle empties sync.Pool victim caches
	return sampleProc()
}
