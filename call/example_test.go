package call_test

import (
	"fmt"
	"net/netip"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/flowmanager"
)

// An agent with DTLS-SRTP media on loopback; a signalling binding such as
// call/sipp2p then places and receives its calls.
func ExampleNew() {
	m, err := flowmanager.New(flowmanager.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	agent, err := call.New(call.Config{
		Manager: m,
		Media:   call.MediaConfig{LocalAddr: netip.MustParseAddr("127.0.0.1"), Security: sdpx.DTLS, RTCPMux: true},
		Handler: call.HandlerFuncs{
			Incoming: func(c *call.Call) { fmt.Println("incoming call from", c.Remote().URI) },
			State:    func(c *call.Call, from, to call.State, r call.Reason) { fmt.Println(from, "->", to, r.Kind) },
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer agent.Close()
	fmt.Println(agent.MediaConfig().Codecs)
	// Output: [0 PCMU/8000 8 PCMA/8000 101 telephone-event/8000]
}
