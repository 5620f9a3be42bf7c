package flowmanager_test

import (
	"log/slog"
	"testing"

	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

// lengthSweep sends SRTP-protected RTP of every length from 160 to 180 bytes
// both ways and checks each arrives intact, with no authentication failure:
// a relay that lengthens a packet by ChannelData padding fails it.
func lengthSweep(t *testing.T, a *mediastream.Stream, ta [2]flow.Tuple, b *mediastream.Stream, tb [2]flow.Tuple) {
	t.Helper()
	seq := uint16(1000)
	for size := 160; size <= 180; size++ {
		seq++
		p := rtpPacket(seq, size)
		expect(t, func() error { _, err := a.RTP().Write(p); return err }, b.RTP(), p, ta[0].Addr)
		expect(t, func() error { _, err := b.RTP().Write(p); return err }, a.RTP(), p, tb[0].Addr)
	}
	for _, s := range []*mediastream.Stream{a, b} {
		if st := s.RTP().Stats(); st.Dropped[flow.DropAuth] != 0 || st.Dropped[flow.DropMalformed] != 0 {
			t.Fatalf("drops: %v", st.Dropped)
		}
	}
}

// A server that forwards ChannelData padding over UDP and neither pads nor
// skips padding over TCP/TLS (reTurnServer's framing): SRTP media of every
// length from 160 to 180 bytes, with every suite, arrives intact through it
// over UDP, TCP and TLS, as ChannelData.
func TestTURNNonPaddingServer(t *testing.T) {
	leak.Check(t)
	// The server's warnings (a datagram it could not handle, a packet it
	// found no permission for) go to the test's log, shown if it fails.
	srv := startTURN(t, testserver.TURNConfig{ForwardPadding: true, Logger: testLogger(t, slog.LevelInfo)})
	m := newManager(t, flowmanager.Config{})
	for _, mode := range turnModes {
		for _, suite := range sdesSuites {
			t.Run(mode.String()+"/"+suite.String(), func(t *testing.T) {
				before := srv.ChannelData()
				cfg := mediastream.Config{LocalAddr: loop4, NAT: turnConfig(srv, mode)}
				a, ta := readyStream(t, m, cfg)
				b, tb := readyStream(t, m, cfg)
				defer a.Close()
				defer b.Close()
				connect(t, a, ta, b, tb)
				keyPair(t, a, b, genKeys(t, suite), genKeys(t, suite))
				lengthSweep(t, a, ta, b, tb)
				if srv.ChannelData() == before {
					t.Fatal("no ChannelData reached the server: the sweep did not exercise its framing")
				}
				for _, s := range []*mediastream.Stream{a, b} {
					al, ok := s.RTP().Allocation()
					if !ok || al.UnpaddedChannelData != (mode != natmode.TURNUDP) {
						t.Fatalf("allocation %+v: the non-padding server was not detected", al)
					}
				}
			})
		}
	}
}

// The same sweep against the compliant in-process server (which pads over
// TCP/TLS and over UDP).
func TestTURNLengthSweepCompliantServer(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, testserver.TURNConfig{Logger: testLogger(t, slog.LevelInfo)})
	m := newManager(t, flowmanager.Config{})
	for _, mode := range []natmode.Mode{natmode.TURNUDP, natmode.TURNTCP} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := mediastream.Config{LocalAddr: loop4, NAT: turnConfig(srv, mode)}
			a, ta := readyStream(t, m, cfg)
			b, tb := readyStream(t, m, cfg)
			defer a.Close()
			defer b.Close()
			connect(t, a, ta, b, tb)
			keyPair(t, a, b, genKeys(t, sdesSuites[0]), genKeys(t, sdesSuites[0]))
			lengthSweep(t, a, ta, b, tb)
			if al, _ := a.RTP().Allocation(); al.UnpaddedChannelData {
				t.Fatal("a padding server taken for one that does not pad")
			}
		})
	}
}
