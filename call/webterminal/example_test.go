package webterminal_test

import (
	"context"
	"fmt"
	"net"

	"github.com/reflow-go/reflow/call/webterminal"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
	"google.golang.org/grpc"
)

// sdpOnly is a Media that makes fixed SDP, enough to show the signalling.
type sdpOnly struct{}

func (sdpOnly) Offer(context.Context) (string, error)          { return "v=0 (offer)", nil }
func (sdpOnly) Answer(context.Context, string) (string, error) { return "v=0 (answer)", nil }
func (sdpOnly) SetAnswer(context.Context, string) error        { return nil }
func (sdpOnly) Close() error                                   { return nil }

// A core on loopback and two terminals; 100 calls 200, who answers.
func Example() {
	core, _ := webterminal.NewCore(webterminal.CoreConfig{})
	defer core.Close()
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := grpc.NewServer()
	pb.RegisterWebTerminalServer(srv, core)
	go srv.Serve(lis)
	defer srv.Stop()

	ctx := context.Background()
	media := func(context.Context, *webterminal.Call) (webterminal.Media, error) { return sdpOnly{}, nil }
	alice, _ := webterminal.Dial(ctx, webterminal.Config{Target: lis.Addr().String(), MSISDN: "100", Mode: webterminal.MultiPipe, Media: media})
	defer alice.Close()
	bob, _ := webterminal.Dial(ctx, webterminal.Config{Target: lis.Addr().String(), MSISDN: "200", Media: media,
		Handler: webterminal.HandlerFuncs{Incoming: func(c *webterminal.Call) { c.Accept(ctx) }}})
	defer bob.Close()

	c, err := alice.Call(ctx, "200")
	if err != nil {
		fmt.Println(err)
		return
	}
	<-c.Established()
	fmt.Println("call to", c.Peer(), c.State())
	c.Hangup(ctx)
	<-c.Done()
	fmt.Println(c.Err())
	// Output:
	// call to 200 active
	// webterminal: local hangup
}
