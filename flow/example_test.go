package flow_test

import (
	"context"
	"fmt"
	"net"

	"github.com/reflow-go/reflow/flow"
)

// A flow on a UDP socket without NAT traversal: ready at once, it exchanges
// RTP with a plain UDP peer and drops a stranger's packet.
func Example() {
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	ready := make(chan struct{})
	f, err := flow.New(context.Background(), sock, flow.Config{
		OnEvent: func(ev flow.Event) {
			if ev.Kind == flow.EventReady {
				close(ready)
			}
		},
	})
	if err != nil {
		panic(err)
	}
	defer f.Close()
	<-ready

	peer, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	stranger, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer stranger.Close()
	f.SetActiveDestination(peer.LocalAddr().(*net.UDPAddr).AddrPort())

	rtp := []byte{0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff}
	to := f.LocalTuple().Addr
	stranger.WriteToUDPAddrPort(rtp, to) // dropped: not the active destination
	peer.WriteToUDPAddrPort(rtp, to)
	buf := make([]byte, 1500)
	n, from, _ := f.ReadFromAddrPort(buf)
	fmt.Println(n, from == peer.LocalAddr().(*net.UDPAddr).AddrPort())
	fmt.Println("dropped from strangers:", f.Stats().Dropped[flow.DropSource])
	// Output:
	// 14 true
	// dropped from strangers: 1
}
