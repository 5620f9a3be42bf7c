package flow

import (
	"errors"
	"testing"

	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/srtp"
)

// A keyed flow that has sent and received nothing holds neither SRTP cipher
// state nor a media queue; both appear with the first packet, and media then
// flows both ways. Bad keys are still refused when they are set.
func TestIdleKeyedFlowHoldsLittle(t *testing.T) {
	leak.Check(t)
	a, b := pair(t, loop4)
	k := sdesKeys(t)
	for _, f := range []*Flow{a, b} {
		if err := f.SetOutboundSRTP(k); err != nil {
			t.Fatal(err)
		}
		if err := f.SetInboundSRTP(k, 0); err != nil {
			t.Fatal(err)
		}
		if !f.IsSecure() {
			t.Fatal("not keyed")
		}
		if f.queue.Load() != nil {
			t.Error("an idle flow has a media queue")
		}
		if l := f.tx.Load(); l.e.Load() != nil {
			t.Error("an idle flow has an outbound SRTP context")
		}
		if l := f.rx.Load(); l.d.Load() != nil {
			t.Error("an idle flow has an inbound SRTP context")
		}
	}
	if _, err := a.Write(rtpPacket(1, 80)); err != nil {
		t.Fatal(err)
	}
	readOne(t, b)
	if _, err := b.Write(rtpPacket(2, 80)); err != nil {
		t.Fatal(err)
	}
	readOne(t, a)
	if a.queue.Load() == nil || b.rx.Load().d.Load() == nil || a.tx.Load().e.Load() == nil {
		t.Error("no queue or SRTP contexts after media")
	}

	bad := k
	bad.Key = bad.Key[:3]
	if err := a.SetOutboundSRTP(bad); !errors.Is(err, srtp.ErrKeyLength) {
		t.Errorf("outbound: %v, want ErrKeyLength", err)
	}
	if err := a.SetInboundSRTP(bad, 0); !errors.Is(err, srtp.ErrKeyLength) {
		t.Errorf("inbound: %v, want ErrKeyLength", err)
	}
	if err := a.SetInboundSRTP(k, srtp.MaxReplayWindow+1); !errors.Is(err, srtp.ErrUnsupportedParam) {
		t.Errorf("replay window: %v, want ErrUnsupportedParam", err)
	}
}
