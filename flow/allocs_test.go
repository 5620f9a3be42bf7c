package flow

import (
	"encoding/binary"
	"testing"

	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/srtp"
)

// TestZeroAllocsPerPacket makes the benchmarks' claim a test: writing and
// reading an RTP packet through a flow allocates nothing, in clear and with
// SDES AEAD_AES_128_GCM. CI runs it without -race (.ci/run).
func TestZeroAllocsPerPacket(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector; .ci/run runs this test without -race")
	}
	leak.Check(t)
	for _, suite := range []srtp.Suite{0, srtp.AEADAES128GCM} {
		a, b := pair(t, loop4)
		if suite != 0 {
			k, _ := srtp.GenerateKeys(suite)
			a.SetOutboundSRTP(k)
			b.SetInboundSRTP(k, 0)
		}
		p := rtpPacket(0, 172)
		buf := make([]byte, 2048)
		var seq uint16
		roundTrip := func() {
			seq++
			binary.BigEndian.PutUint16(p[2:], seq)
			if _, err := a.Write(p); err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.ReadFromAddrPort(buf); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 100; i++ { // warm the pools and pion's per-SSRC state
			roundTrip()
		}
		if n := testing.AllocsPerRun(1000, roundTrip); n > 0.05 {
			t.Errorf("suite %v: %.2f allocations per packet", suite, n)
		}
	}
}
