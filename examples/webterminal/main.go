// Command webterminal runs the gRPC WebRTC terminal API on loopback: it starts
// a core and two terminals (100 on MultiPipe, 200 on Pipe) whose calls run on
// the call core with real DTLS-SRTP media; 100 calls 200 by msisdn, RTP flows
// both ways, 200 transfers the call to its phone, 100 hangs up. Every message
// exchanged is printed, with the ICE-lite part of its SDP (the terminal is the
// WebRTC side: its calls' SDP carries a=ice-lite, credentials and
// candidates, and its flows answer the core's connectivity checks). Each
// terminal's calls are call.Call values of its call core agent, whose
// handler sees them (OnIncoming, OnState with the reason).
//
//	go run ./examples/webterminal
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/call/webterminal"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/mediastream"
	"google.golang.org/grpc"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	core, err := webterminal.NewCore(webterminal.CoreConfig{})
	if err != nil {
		return err
	}
	defer core.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	pb.RegisterWebTerminalServer(srv, core)
	go srv.Serve(lis)
	defer srv.Stop()
	fmt.Println("core listening on", lis.Addr())

	incoming := make(chan *call.Call, 1)
	active := make(chan *call.Call, 2)
	statuses := make(chan webterminal.Status, 4)
	events := call.HandlerFuncs{
		Incoming: func(c *call.Call) { incoming <- c },
		State: func(c *call.Call, from, to call.State, r call.Reason) {
			fmt.Printf("call %s… (%s, peer %s): %v -> %v", c.ID()[:8], c.Direction(), webterminal.Peer(c), from, to)
			if to == call.Terminated {
				fmt.Printf(" (%v)", r)
			}
			fmt.Println()
			if to == call.Active {
				active <- c
			}
		},
	}
	terminal := func(msisdn string, mode webterminal.Mode) (*webterminal.Terminal, func(), error) {
		m, err := flowmanager.New(flowmanager.Config{})
		if err != nil {
			return nil, nil, err
		}
		agent, err := call.New(call.Config{Manager: m, Handler: events, Media: call.MediaConfig{
			LocalAddr: netip.MustParseAddr("127.0.0.1"), Security: sdpx.DTLS, RTCPMux: true}})
		if err != nil {
			m.Close()
			return nil, nil, err
		}
		t, err := webterminal.Dial(ctx, webterminal.Config{
			Target: lis.Addr().String(), MSISDN: msisdn, Mode: mode, Agent: agent,
			Handler: webterminal.HandlerFuncs{
				Message: func(t *webterminal.Terminal, sent bool, msg *pb.WebTerminalMessage) {
					dir := "<-"
					if sent {
						dir = "->"
					}
					fmt.Printf("terminal %s %s core: %s\n", t.MSISDN(), dir, webterminal.Format(msg))
					if sent {
						printICE(msg.GetOffer().GetSdp() + msg.GetAnswer().GetSdp())
					}
				},
				Status: func(_ *webterminal.Terminal, s webterminal.Status) { statuses <- s },
			},
		})
		if err != nil {
			agent.Close()
			m.Close()
			return nil, nil, err
		}
		return t, func() { t.Close(); agent.Close(); m.Close() }, nil
	}
	alice, closeA, err := terminal("100", webterminal.MultiPipe)
	if err != nil {
		return err
	}
	defer closeA()
	bob, closeB, err := terminal("200", webterminal.Pipe)
	if err != nil {
		return err
	}
	defer closeB()

	c, err := alice.Call(ctx, "200")
	if err != nil {
		return err
	}
	in := <-incoming
	if err := in.Ring(ctx); err != nil {
		return err
	}
	if err := in.Accept(ctx); err != nil {
		return err
	}
	for range 2 { // both ends Active
		select {
		case <-active:
		case <-c.Done():
			return c.Reason()
		}
	}
	sa, sb := c.Stream(), in.Stream()
	if err := rtp(sa, sb); err != nil {
		return fmt.Errorf("100 -> 200: %w", err)
	}
	if err := rtp(sb, sa); err != nil {
		return fmt.Errorf("200 -> 100: %w", err)
	}
	fmt.Println("media: RTP flows both ways (DTLS-SRTP)")

	if err := bob.TransferToPhone(ctx, in); err != nil {
		return err
	}
	<-in.Done()
	fmt.Println("200's terminal call ended:", in.Reason(), "- status:", fmt.Sprintf("%+v", <-statuses))
	if err := c.Hangup(ctx); err != nil {
		return err
	}
	fmt.Println("after hangup - status:", fmt.Sprintf("%+v", <-statuses))
	return nil
}

// rtp sends a packet from one stream until the other receives it.
func rtp(from, to *mediastream.Stream) error {
	pkt := []byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 'h', 'i'}
	buf := make([]byte, 1500)
	for range 200 {
		_, _ = from.RTP().Write(pkt)
		to.RTP().SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, _, err := to.RTP().ReadFromAddrPort(buf)
		if err == nil && bytes.Equal(buf[:n], pkt) {
			return nil
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
	return errors.New("no RTP")
}

// printICE prints the ICE-lite attributes of an SDP body we sent.
func printICE(body string) {
	if body == "" {
		return
	}
	d, err := sdpx.Parse([]byte(body))
	if err != nil || len(d.Media) == 0 {
		fmt.Println("    sdp:", err)
		return
	}
	m := d.Media[0]
	fmt.Printf("    ice-lite=%v ice-ufrag=%s, %d candidate(s):\n", d.ICELite, m.ICEUfrag, len(m.Candidates))
	for _, c := range m.Candidates {
		fmt.Println("      a=" + c.String())
	}
}
