package mediastream_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/mediastream"
)

// A stream made directly (applications normally use flowmanager): its RTP and
// RTCP flows sit on an even/odd port pair.
func ExampleNew() {
	ready := make(chan [2]flow.Tuple, 1)
	s, err := mediastream.New(context.Background(), mediastream.Config{
		LocalAddr: netip.MustParseAddr("127.0.0.1"),
		RTCP:      true,
	}, mediastream.HandlerFuncs{
		Ready: func(_ *mediastream.Stream, rtp, rtcp flow.Tuple) { ready <- [2]flow.Tuple{rtp, rtcp} },
	}, mediastream.Env{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	t := <-ready
	fmt.Println(t[0].Addr.Port()%2 == 0, t[1].Addr.Port() == t[0].Addr.Port()+1)
	// Output: true true
}
