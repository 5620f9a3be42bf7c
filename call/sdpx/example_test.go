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
