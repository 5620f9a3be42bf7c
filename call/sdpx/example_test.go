package sdpx_test

import (
	"fmt"
	"net/netip"

	"github.com/reflow-go/reflow/call/sdpx"
)

func Example() {
	offer := sdpx.Session{
		SessionID: 1, Version: 1, Addr: netip.MustParseAddr("192.0.2.1"),
		Media: []sdpx.Line{{
			RTP:    netip.MustParseAddrPort("192.0.2.1:4000"),
			RTCP:   netip.MustParseAddrPort("192.0.2.1:4001"),
			Codecs: sdpx.DefaultCodecs(),
		}},
	}
	b, _ := offer.Marshal()
	d, err := sdpx.Parse(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	m := d.Media[0]
	fmt.Println(m.RTP, m.RTCP, m.Direction, m.Security, m.Codecs)
	// Output: 192.0.2.1:4000 192.0.2.1:4001 sendrecv plain [0 PCMU/8000 8 PCMA/8000 101 telephone-event/8000]
}

func ExampleLocalCandidates() {
	host := netip.MustParseAddrPort("10.0.0.1:5000")
	srflx := netip.MustParseAddrPort("192.0.2.1:6000")
	for _, c := range sdpx.LocalCandidates(sdpx.ComponentRTP, host, srflx, netip.AddrPort{}) {
		fmt.Printf("priority %d: %s %v\n", c.Priority, c.Type, c.Addr)
	}
	c, err := sdpx.ParseCandidate("candidate:1 1 UDP 1694498815 192.0.2.3 45664 typ srflx raddr 10.0.1.1 rport 8998")
	fmt.Println(c.Type, c.Addr, c.Related, err)
	// Output:
	// priority 2130706431: host 10.0.0.1:5000
	// priority 1694498815: srflx 192.0.2.1:6000
	// srflx 192.0.2.3:45664 10.0.1.1:8998 <nil>
}
