// Command demo runs two media streams on loopback and exchanges 20 ms RTP
// packets between them for a few seconds, printing their tuples, the packets
// sent and received and the loss.
//
// With no -server it starts an in-process STUN/TURN server on 127.0.0.1, so it
// runs on a fresh machine with nothing else installed:
//
//	go run ./examples/demo                       # no NAT traversal
//	go run ./examples/demo -mode turn-tls        # both streams relayed over TLS
//	go run ./examples/demo -mode turn-udp -server 192.0.2.1:3478 -user u -pass p
//	go run ./examples/demo -server 'turns:turn.example.com:443?transport=tcp' -user u -pass p
//	go run ./examples/demo -mode turn-udp -server turn.example.com -family ipv6 -liveness 10s -user u -pass p
package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type opts struct {
	mode     natmode.Mode
	server   string
	user     string
	pass     string
	insecure bool
	local    string
	duration time.Duration
	rtcp     bool
	verbose  bool
	srtpMode string
	suite    string
	family   natmode.Family
	liveness time.Duration
	name     string
}

func parseFlags() (opts, error) {
	var o opts
	mode := flag.String("mode", "none", "NAT traversal: none, stun, turn-udp, turn-tcp, turn-tls")
	flag.StringVar(&o.server, "server", "", "STUN/TURN server: ip:port, host[:port], or a stun:/turn:/turns: URI (RFC 7065; sets the mode) (default: an in-process server on 127.0.0.1)")
	family := flag.String("family", "default", "TURN relay address family: default, ipv4, ipv6, both")
	flag.DurationVar(&o.liveness, "liveness", 0, "report a dead TURN server within this (0: 30 s; at least 5 s; negative: only at the allocation's end)")
	flag.StringVar(&o.name, "servername", "", "name to verify in the TURN server's TLS certificate (default: the server's host)")
	flag.StringVar(&o.user, "user", "", "TURN username")
	flag.StringVar(&o.pass, "pass", "", "TURN password")
	flag.BoolVar(&o.insecure, "insecure", false, "do not verify the TURN server's TLS certificate (testing only)")
	flag.StringVar(&o.local, "local", "127.0.0.1", "local IP address to bind")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "how long to exchange media")
	flag.BoolVar(&o.rtcp, "rtcp", true, "give RTCP its own flow (false: rtcp-mux)")
	flag.BoolVar(&o.verbose, "v", false, "log library debug output to stderr")
	flag.StringVar(&o.srtpMode, "srtp", "none", "media protection: none, sdes, dtls")
	flag.StringVar(&o.suite, "suite", "AES_CM_128_HMAC_SHA1_80", "SDES crypto suite")
	flag.Parse()
	var err error
	if o.mode, err = natmode.ParseMode(*mode); err != nil {
		return o, err
	}
	for f := natmode.FamilyDefault; f <= natmode.FamilyBoth; f++ {
		if f.String() == *family {
			o.family = f
			return o, nil
		}
	}
	return o, fmt.Errorf("-family %q: want default, ipv4, ipv6 or both", *family)
}

// readyWaiter is a Handler that hands the tuples of OnReady to a channel.
type readyWaiter struct {
	name  string
	ready chan [2]flow.Tuple
	errs  chan error
}

func (w *readyWaiter) OnReady(_ *mediastream.Stream, rtp, rtcp flow.Tuple) {
	w.ready <- [2]flow.Tuple{rtp, rtcp}
}

func (w *readyWaiter) OnError(_ *mediastream.Stream, err error) {
	select {
	case w.errs <- err:
	default:
	}
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	local, err := netip.ParseAddr(o.local)
	if err != nil {
		return fmt.Errorf("-local: %w", err)
	}
	nat := natmode.Config{Mode: o.mode, Username: o.user, Password: o.pass, Family: o.family, Liveness: o.liveness, ServerName: o.name}
	if scheme, _, _ := strings.Cut(o.server, ":"); scheme == "stun" || scheme == "turn" || scheme == "turns" {
		uri, err := natmode.ParseURI(o.server)
		if err != nil {
			return fmt.Errorf("-server: %w", err)
		}
		nat.Mode, nat.Host, nat.Server = uri.Mode, uri.Host, uri.Server
		o.mode = uri.Mode
	}
	if o.mode != natmode.None {
		if o.server == "" {
			srv, err := testserver.StartTURN(testserver.TURNConfig{})
			if err != nil {
				return fmt.Errorf("in-process TURN server: %w", err)
			}
			defer srv.Close()
			nat.Server = map[natmode.Mode]netip.AddrPort{natmode.STUNBinding: srv.UDP, natmode.TURNUDP: srv.UDP, natmode.TURNTCP: srv.TCP, natmode.TURNTLS: srv.TLS}[o.mode]
			nat.Username, nat.Password = testserver.DefaultUsername, testserver.DefaultPassword
			nat.RootCAs, nat.ServerName = srv.RootCAs, srv.ServerName
			fmt.Printf("in-process STUN/TURN server: udp %s, tcp %s, tls %s (realm %s)\n", srv.UDP, srv.TCP, srv.TLS, srv.Realm)
		} else {
			if nat.Host == "" { // not a URI: ip:port, or a host name
				if ap, err := netip.ParseAddrPort(o.server); err == nil {
					nat.Server = ap
				} else {
					nat.Host = o.server
				}
			}
			if err := nat.Validate(); err != nil {
				return fmt.Errorf("-server: %w", err)
			}
			if o.insecure {
				nat.TLSConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in test flag
			}
		}
	}
	var logger *slog.Logger
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// Two managers, as two endpoints would have: each its own DTLS certificate.
	var managers [2]*flowmanager.Manager
	for i, aor := range []string{"sip:a@reflow.test", "sip:b@reflow.test"} {
		m, err := flowmanager.New(flowmanager.Config{Logger: logger, AOR: aor})
		if err != nil {
			return err
		}
		defer m.Close()
		managers[i] = m
	}

	cfg := mediastream.Config{LocalAddr: local, RTCP: o.rtcp, NAT: nat}
	switch o.srtpMode { // secured streams never send or deliver clear media
	case "sdes":
		cfg.Security = mediastream.SDES
	case "dtls":
		cfg.Security = mediastream.DTLS
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var streams [2]*mediastream.Stream
	var tuples [2][2]flow.Tuple
	for i, name := range []string{"A", "B"} {
		w := &readyWaiter{name: name, ready: make(chan [2]flow.Tuple, 1), errs: make(chan error, 1)}
		start := time.Now()
		s, err := managers[i].NewStream(ctx, cfg, w)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		select {
		case tuples[i] = <-w.ready:
		case err := <-w.errs:
			return fmt.Errorf("stream %s: %w", name, err)
		case <-ctx.Done():
			return fmt.Errorf("stream %s: not ready: %w", name, ctx.Err())
		}
		streams[i] = s
		for _, f := range s.Flows() {
			fmt.Printf("stream %s %-4s local %-22s session %-22s reflexive %-22s relay %s\n", name, f.Component(),
				f.LocalTuple(), f.SessionTuple(), f.ReflexiveTuple(), f.RelayTuple())
		}
		fmt.Printf("stream %s ready in %v (mode %s)\n", name, time.Since(start).Round(time.Microsecond), o.mode)
		if al, ok := s.RTP().Allocation(); ok {
			fmt.Printf("stream %s allocation on %v: relays %v, lifetime %v (expires %s)\n", name, al.Server, al.Relayed, al.Lifetime, al.Expires.Format(time.TimeOnly))
		}
	}
	a, b := streams[0], streams[1]
	for i, f := range a.Flows() {
		if err := f.SetActiveDestination(tuples[1][i].Addr); err != nil {
			return err
		}
	}
	for i, f := range b.Flows() {
		if err := f.SetActiveDestination(tuples[0][i].Addr); err != nil {
			return err
		}
	}
	if err := setupSRTP(ctx, o, a, b); err != nil {
		return err
	}
	return exchange(a, b, o.duration)
}

// exchange sends 20 ms RTP packets of 172 bytes both ways for d, and prints
// what each side sent and received.
func exchange(a, b *mediastream.Stream, d time.Duration) error {
	type side struct {
		name     string
		s        *mediastream.Stream
		sent     atomic.Uint64
		received atomic.Uint64
	}
	sides := []*side{{name: "A", s: a}, {name: "B", s: b}}
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	errc := make(chan error, 4)
	for _, sd := range sides {
		sd := sd
		wg.Add(2)
		go func() { // sender: one packet every 20 ms
			defer wg.Done()
			pkt := make([]byte, 172)
			pkt[0], pkt[1] = 0x80, 0 // RTP v2, PCMU
			binary.BigEndian.PutUint32(pkt[8:], uint32(len(sd.name))*0x1000+0x42)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for seq := uint16(0); time.Now().Before(stop); seq++ {
				binary.BigEndian.PutUint16(pkt[2:], seq)
				binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
				if _, err := sd.s.RTP().Write(pkt); err != nil {
					errc <- fmt.Errorf("%s write: %w", sd.name, err)
					return
				}
				sd.sent.Add(1)
				<-tick.C
			}
		}()
		go func() { // receiver
			defer wg.Done()
			buf := make([]byte, 2048)
			f := sd.s.RTP()
			f.SetReadDeadline(stop.Add(500 * time.Millisecond))
			for {
				if _, _, err := f.ReadFromAddrPort(buf); err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						errc <- fmt.Errorf("%s read: %w", sd.name, err)
					}
					return
				}
				sd.received.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		return err
	}
	peer := map[string]*side{"A": sides[1], "B": sides[0]}
	for _, sd := range sides {
		sent := peer[sd.name].sent.Load()
		got := sd.received.Load()
		loss := 0.0
		if sent > 0 {
			loss = 100 * (1 - float64(got)/float64(sent))
		}
		st := sd.s.RTP().Stats()
		fmt.Printf("stream %s: sent %d, received %d of %d (loss %.2f%%), dropped %d\n", sd.name, sd.sent.Load(), got, sent, loss, st.TotalDropped())
	}
	return nil
}
