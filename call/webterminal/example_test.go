package webterminal_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/webterminal"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
	"github.com/reflow-go/reflow/flowmanager"
	"google.golang.org/grpc"
)

// A core on loopback and two terminals, each on a call core agent of its
// own; 100 calls 200, whose agent's handler answers.
func Example() {
	core, _ := webterminal.NewCore(webterminal.CoreConfig{})
	defer core.Close()
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := grpc.NewServer()
	pb.RegisterWebTerminalServer(srv, core)
	go srv.Serve(lis)
	defer srv.Stop()

	ctx := context.Background()
	fm, _ := flowmanager.New(flowmanager.Config{})
	defer fm.Close()
	agent := func(h call.Handler) *call.Agent {
		a, _ := call.New(call.Config{Manager: fm, Handler: h, Media: call.MediaConfig{LocalAddr: netip.MustParseAddr("127.0.0.1")}})
		return a
	}
	active := make(chan *call.Call, 1)
	alicesAgent := agent(call.HandlerFuncs{State: func(c *call.Call, _, to call.State, _ call.Reason) {
		if to == call.Active {
			active <- c
		}
	}})
	defer alicesAgent.Close()
	bobsAgent := agent(call.HandlerFuncs{Incoming: func(c *call.Call) { go c.Accept(ctx) }})
	defer bobsAgent.Close()

	alice, _ := webterminal.Dial(ctx, webterminal.Config{Target: lis.Addr().String(), MSISDN: "100", Mode: webterminal.MultiPipe, Agent: alicesAgent})
	defer alice.Close()
	bob, _ := webterminal.Dial(ctx, webterminal.Config{Target: lis.Addr().String(), MSISDN: "200", Agent: bobsAgent})
	defer bob.Close()

	c, err := alice.Call(ctx, "200")
	if err != nil {
		fmt.Println(err)
		return
	}
	<-active
	fmt.Println("call to", webterminal.Peer(c), c.State())
	c.Hangup(ctx)
	fmt.Println(c.Reason().Kind)
	// Output:
	// call to 200 active
	// local hangup
}
