package flowmanager_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/mediastream"
)

// Two streams on loopback without NAT traversal exchange one RTP packet.
func Example() {
	m, err := flowmanager.New(flowmanager.Config{})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	cfg := mediastream.Config{LocalAddr: netip.MustParseAddr("127.0.0.1"), RTCP: true}
	open := func() (*mediastream.Stream, flow.Tuple) {
		ready := make(chan flow.Tuple, 1)
		s, err := m.NewStream(context.Background(), cfg, mediastream.HandlerFuncs{
			Ready: func(_ *mediastream.Stream, rtp, _ flow.Tuple) { ready <- rtp },
		})
		if err != nil {
			panic(err)
		}
		return s, <-ready
	}
	a, ta := open()
	b, tb := open()
	a.RTP().SetActiveDestination(tb.Addr)
	b.RTP().SetActiveDestination(ta.Addr)

	pkt := []byte{0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 'h', 'i'}
	a.RTP().Write(pkt)
	buf := make([]byte, 1500)
	n, from, err := b.RTP().ReadFromAddrPort(buf)
	fmt.Println(n, from == ta.Addr, err)
	// Output: 14 true <nil>
}
