package sipp2p_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sipp2p"
	"github.com/reflow-go/reflow/flowmanager"
)

// Two endpoints on loopback: bob listens on UDP and answers, alice calls him
// and hangs up.
func Example() {
	m, _ := flowmanager.New(flowmanager.Config{})
	defer m.Close()
	media := call.MediaConfig{LocalAddr: netip.MustParseAddr("127.0.0.1")}
	ended := make(chan call.Reason, 1)
	bobAgent, _ := call.New(call.Config{Manager: m, Media: media, Handler: call.HandlerFuncs{
		Incoming: func(c *call.Call) {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				c.Ring(ctx)
				c.Accept(ctx)
			}()
		},
		State: func(c *call.Call, from, to call.State, r call.Reason) {
			if to == call.Terminated {
				ended <- r
			}
		},
	}})
	defer bobAgent.Close()
	bob, _ := sipp2p.New(sipp2p.Config{URI: "sip:bob@example.test", Agent: bobAgent})
	defer bob.Close()
	at, err := bob.StartListening(context.Background(), sipp2p.UDP, netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		fmt.Println(err)
		return
	}

	aliceAgent, _ := call.New(call.Config{Manager: m, Media: media})
	defer aliceAgent.Close()
	alice, _ := sipp2p.New(sipp2p.Config{URI: "sip:alice@example.test", Agent: aliceAgent})
	defer alice.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := alice.Call(ctx, "sip:bob@"+at.String(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for c.State() != call.Active && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	st, _ := c.MediaState()
	fmt.Println("active:", st.Security, st.Direction)
	c.Hangup(ctx)
	fmt.Println("bob:", (<-ended).Kind)
	// Output:
	// active: plain sendrecv
	// bob: remote hangup
}

// An application routes incoming calls by the number dialled: the
// Request-URI of the INVITE.
func ExampleInfo() {
	route := func(c *call.Call) {
		info, ok := sipp2p.Info(c)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		switch {
		case strings.HasPrefix(info.RequestURI, "sip:100@"):
			c.Accept(ctx) // the front desk
		default:
			c.Reject(ctx, call.Reason{Kind: call.Unavailable, Code: 404})
		}
		fmt.Println(info.From, "called", info.RequestURI, "via", info.Get("Via"))
	}
	_ = call.HandlerFuncs{Incoming: func(c *call.Call) { go route(c) }}
}
