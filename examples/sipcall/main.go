// Command sipcall places a SIP call with real media through the call layer.
//
// With no -listen and no -call it runs two SIP endpoints on loopback: one
// calls the other, both send 20 ms RTP packets for -duration with the chosen
// NAT traversal (-nat) and media protection (-srtp), and the caller hangs
// up. For a NAT mode other than none an in-process STUN/TURN server is
// started unless -server is given.
//
//	go run ./examples/sipcall -nat turn-udp -srtp dtls
//	go run ./examples/sipcall -transport tls -srtp sdes
//	go run ./examples/sipcall -ice -srtp dtls    # ICE-lite SDP, as WebRTC peers need
//
// -listen ip:port waits for calls from a real SIP peer, answers them and
// echoes their RTP back; -call uri calls a real SIP peer, sends silence and
// counts what comes back.
//
//	go run ./examples/sipcall -listen 192.0.2.10:5060 -local 192.0.2.10
//	go run ./examples/sipcall -call sip:echo@192.0.2.20:5060 -local 192.0.2.10
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/call/sipp2p"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

type options struct {
	nat, srtp, transport, local, server, user, pass, listen, target string
	duration                                                        time.Duration
	verbose, ice                                                    bool
}

func main() {
	var o options
	flag.StringVar(&o.nat, "nat", "none", "NAT traversal: none, stun, turn-udp, turn-tcp, turn-tls")
	flag.StringVar(&o.srtp, "srtp", "none", "media protection: none, sdes, dtls")
	flag.StringVar(&o.transport, "transport", "udp", "SIP transport: udp, tcp, tls")
	flag.StringVar(&o.local, "local", "127.0.0.1", "local IP address for SIP and media")
	flag.StringVar(&o.server, "server", "", "STUN/TURN server ip:port (default: in-process server)")
	flag.StringVar(&o.user, "user", "", "TURN username")
	flag.StringVar(&o.pass, "pass", "", "TURN password")
	flag.StringVar(&o.listen, "listen", "", "listen on ip:port for calls from a real peer and echo their media")
	flag.StringVar(&o.target, "call", "", "call this SIP URI instead of the loopback demo")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "how long media flows")
	flag.BoolVar(&o.verbose, "v", false, "log debug output to stderr")
	flag.BoolVar(&o.ice, "ice", false, "ICE-lite: a=ice-lite, ICE credentials and candidates in the SDP; answer connectivity checks")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "sipcall:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	local, err := netip.ParseAddr(o.local)
	if err != nil {
		return fmt.Errorf("-local: %w", err)
	}
	sec := map[string]sdpx.Security{"none": sdpx.Plain, "sdes": sdpx.SDES, "dtls": sdpx.DTLS}
	security, ok := sec[o.srtp]
	if !ok {
		return fmt.Errorf("-srtp: %q is not none, sdes or dtls", o.srtp)
	}
	tr := sipp2p.Transport(o.transport)
	if tr != sipp2p.UDP && tr != sipp2p.TCP && tr != sipp2p.TLS {
		return fmt.Errorf("-transport: %q", o.transport)
	}
	nat, stop, err := natConfig(o)
	if err != nil {
		return err
	}
	defer stop()
	var logger *slog.Logger
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	m, err := flowmanager.New(flowmanager.Config{Logger: logger})
	if err != nil {
		return err
	}
	defer m.Close()
	media := call.MediaConfig{LocalAddr: local, NAT: nat, Security: security, RTCPMux: security == sdpx.DTLS, ICE: o.ice}

	var tlsConf *sipp2p.TLSConfig
	if tr == sipp2p.TLS && o.target == "" {
		cert, pool, err := testserver.SelfSigned(nil, []netip.Addr{local})
		if err != nil {
			return err
		}
		tlsConf = &sipp2p.TLSConfig{Certificate: &cert, RootCAs: pool}
	} else if tr == sipp2p.TLS {
		tlsConf = &sipp2p.TLSConfig{} // system roots, no client certificate
	}

	switch {
	case o.listen != "":
		return serve(o, m, media, tr, tlsConf, logger)
	case o.target != "":
		ep, agent, err := endpoint("sip:sipcall@"+local.String(), m, media, tr, tlsConf, logger, nil)
		if err != nil {
			return err
		}
		defer agent.Close()
		defer ep.Close()
		return talk(ep, o.target, o.duration)
	}
	return loopback(o, m, media, tr, tlsConf, logger, local)
}

// natConfig returns the NAT configuration, starting an in-process server when needed.
func natConfig(o options) (natmode.Config, func(), error) {
	mode, err := natmode.ParseMode(o.nat)
	if err != nil {
		return natmode.Config{}, nil, fmt.Errorf("-nat: %w", err)
	}
	nat := natmode.Config{Mode: mode, Username: o.user, Password: o.pass}
	if mode == natmode.None {
		return nat, func() {}, nil
	}
	if o.server != "" {
		if nat.Server, err = netip.ParseAddrPort(o.server); err != nil {
			return nat, nil, fmt.Errorf("-server: %w", err)
		}
		return nat, func() {}, nil
	}
	srv, err := testserver.StartTURN(testserver.TURNConfig{})
	if err != nil {
		return nat, nil, fmt.Errorf("in-process TURN server: %w", err)
	}
	nat.Server = map[natmode.Mode]netip.AddrPort{natmode.STUNBinding: srv.UDP, natmode.TURNUDP: srv.UDP, natmode.TURNTCP: srv.TCP, natmode.TURNTLS: srv.TLS}[mode]
	nat.Username, nat.Password = testserver.DefaultUsername, testserver.DefaultPassword
	nat.RootCAs, nat.ServerName = srv.RootCAs, srv.ServerName
	fmt.Printf("in-process STUN/TURN server: udp %s, tcp %s, tls %s\n", srv.UDP, srv.TCP, srv.TLS)
	return nat, func() { srv.Close() }, nil
}

// endpoint makes an agent and a SIP endpoint; incoming calls go to onCall.
func endpoint(uri string, m *flowmanager.Manager, media call.MediaConfig, tr sipp2p.Transport, tlsConf *sipp2p.TLSConfig, logger *slog.Logger, onCall func(*call.Call)) (*sipp2p.Endpoint, *call.Agent, error) {
	agent, err := call.New(call.Config{Manager: m, Media: media, Logger: logger, Handler: call.HandlerFuncs{
		Incoming: func(c *call.Call) {
			if onCall != nil {
				go onCall(c)
			}
		},
		State: func(c *call.Call, from, to call.State, r call.Reason) {
			if to == call.Terminated {
				fmt.Printf("%s call %.8s: %s -> %s (%v)\n", c.Direction(), c.ID(), from, to, r)
				return
			}
			fmt.Printf("%s call %.8s: %s -> %s\n", c.Direction(), c.ID(), from, to)
		},
		Media: func(c *call.Call, ms call.MediaState) {
			fmt.Printf("%s call %.8s: media %s -> %s, %s, %s, codecs %v\n", c.Direction(), c.ID(), ms.Local, ms.Remote, ms.Security, ms.Direction, ms.Codecs)
		},
	}})
	if err != nil {
		return nil, nil, err
	}
	ep, err := sipp2p.New(sipp2p.Config{URI: uri, Agent: agent, Transport: tr, TLS: tlsConf, Logger: logger})
	if err != nil {
		agent.Close()
		return nil, nil, err
	}
	return ep, agent, nil
}

// answer rings, accepts and echoes media until the call ends.
func answer(c *call.Call) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Ring(ctx); err != nil {
		return
	}
	if err := c.Accept(ctx); err != nil {
		fmt.Println("accept:", err)
		return
	}
	buf := make([]byte, 1500)
	for {
		s := c.Stream()
		s.RTP().SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _, err := s.RTP().ReadFromAddrPort(buf)
		if errors.Is(err, mediastream.ErrClosed) || c.State() == call.Terminated {
			return
		}
		if err == nil {
			s.RTP().Write(buf[:n])
		}
	}
}

// loopback runs the two-endpoint demo.
func loopback(o options, m *flowmanager.Manager, media call.MediaConfig, tr sipp2p.Transport, tlsConf *sipp2p.TLSConfig, logger *slog.Logger, local netip.Addr) error {
	bob, bobAgent, err := endpoint("sip:bob@"+local.String(), m, media, tr, tlsConf, logger, answer)
	if err != nil {
		return err
	}
	defer bobAgent.Close()
	defer bob.Close()
	alice, aliceAgent, err := endpoint("sip:alice@"+local.String(), m, media, tr, tlsConf, logger, nil)
	if err != nil {
		return err
	}
	defer aliceAgent.Close()
	defer alice.Close()
	ctx := context.Background()
	at, err := bob.StartListening(ctx, tr, netip.AddrPortFrom(local, 0))
	if err != nil {
		return err
	}
	if _, err := alice.StartListening(ctx, tr, netip.AddrPortFrom(local, 0)); err != nil {
		return err
	}
	target := fmt.Sprintf("sip:bob@%s;transport=%s", at, tr)
	fmt.Println("bob listens at", target)
	return talk(alice, target, o.duration)
}

// talk calls target, sends a 20 ms RTP packet stream for d, counts what
// comes back, and hangs up.
func talk(ep *sipp2p.Endpoint, target string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	c, err := ep.Call(ctx, target, nil)
	if err != nil {
		return err
	}
	for c.State() != call.Active {
		select {
		case <-c.Done():
			return c.Reason()
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	s := c.Stream()
	received := make(chan int, 1)
	go func() {
		n, buf := 0, make([]byte, 1500)
		for {
			_, _, err := s.RTP().ReadFromAddrPort(buf)
			if err != nil {
				received <- n
				return
			}
			n++
		}
	}()
	sent := 0
	pkt := make([]byte, 12+160)
	pkt[0], pkt[11] = 0x80, 7
	for i := 0; i < int(d/(20*time.Millisecond)); i++ {
		pkt[2], pkt[3] = byte(i>>8), byte(i)
		ts := uint32(i * 160)
		pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		for j := 12; j < len(pkt); j++ {
			pkt[j] = 0xff // PCMU silence
		}
		if _, err := s.RTP().Write(pkt); err == nil {
			sent++
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-c.Done():
			return c.Reason()
		}
	}
	if err := c.Hangup(ctx); err != nil {
		return err
	}
	n := <-received
	fmt.Printf("sent %d RTP packets, received %d back; call ended: %v\n", sent, n, c.Reason())
	return nil
}

// serve listens for calls from a real peer until interrupted.
func serve(o options, m *flowmanager.Manager, media call.MediaConfig, tr sipp2p.Transport, tlsConf *sipp2p.TLSConfig, logger *slog.Logger) error {
	at, err := netip.ParseAddrPort(o.listen)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	if tr == sipp2p.TLS && (tlsConf == nil || tlsConf.Certificate == nil) {
		return errors.New("-listen with TLS needs a certificate; this example only makes one for the loopback demo")
	}
	ep, agent, err := endpoint("sip:sipcall@"+at.Addr().String(), m, media, tr, tlsConf, logger, answer)
	if err != nil {
		return err
	}
	defer agent.Close()
	defer ep.Close()
	bound, err := ep.StartListening(context.Background(), tr, at)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s %s; Ctrl-C ends\n", tr, bound)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	<-sig
	return nil
}
