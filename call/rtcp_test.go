package call

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/mediastream"
)

// pump hands every packet read from s to r until stop is closed.
func pump(s *mediastream.Stream, r *Reporter, stop <-chan struct{}, wg *sync.WaitGroup, seen func([]byte)) {
	wg.Go(func() {
		buf := make([]byte, 1500)
		f := s.RTP()
		for {
			select {
			case <-stop:
				return
			default:
			}
			f.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			n, _, err := f.ReadFromAddrPort(buf)
			if err != nil {
				if errors.Is(err, mediastream.ErrClosed) {
					return
				}
				continue
			}
			r.Received(buf[:n])
			if seen != nil {
				seen(buf[:n])
			}
		}
	})
}

// RTCP reports over SRTCP with rtcp-mux: a sends RTP with every fifth
// packet missing; b's receiver reports tell a the loss (about 20 %), and
// a's sender report answered by b's LSR/DLSR gives a the round-trip time.
// b's reports carry its CNAME.
func TestReporter(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	mc := MediaConfig{Security: sdpx.SDES, RTCPMux: true}
	p := newPair(t, mc, mc)
	ca, cb := p.connect(t, ctx)
	ra, err := NewReporter(ca.Stream(), ReporterConfig{SSRC: 0x1111, ClockRate: 8000, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rb, err := NewReporter(cb.Stream(), ReporterConfig{ClockRate: 8000, CNAME: "b@test", Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() { close(stop); wg.Wait() }()
	cname := make(chan string, 1)
	pump(ca.Stream(), ra, stop, &wg, func(b []byte) {
		if b[1] < 192 || b[1] > 223 {
			return
		}
		pkts, _ := rtcp.Unmarshal(b)
		for _, p := range pkts {
			if sd, ok := p.(*rtcp.SourceDescription); ok && len(sd.Chunks) > 0 && len(sd.Chunks[0].Items) > 0 {
				select {
				case cname <- sd.Chunks[0].Items[0].Text:
				default:
				}
			}
		}
	})
	pump(cb.Stream(), rb, stop, &wg, nil)

	pkt := make([]byte, 12+160)
	pkt[0] = 0x80
	binary.BigEndian.PutUint32(pkt[8:], 0x1111)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for seq := uint16(1); ; seq++ {
		if seq%5 != 0 { // every fifth is "lost"
			binary.BigEndian.PutUint16(pkt[2:], seq)
			binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*40)
			if _, err := ca.Stream().RTP().Write(pkt); err != nil {
				t.Fatal(err)
			}
			ra.Sent(pkt)
		}
		st := ra.Stats()
		if st.RTT > 0 && st.PeerFractionLost > 0 && seq > 100 {
			if st.PeerFractionLost < 0.1 || st.PeerFractionLost > 0.3 || st.RTT > time.Second {
				t.Errorf("a's view: %+v", st)
			}
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("no loss or RTT from the reports: a %+v, b %+v", ra.Stats(), rb.Stats())
		}
	}
	if sb := rb.Stats(); sb.Received == 0 || sb.Lost == 0 || sb.SentReports == 0 {
		t.Errorf("b's view: %+v", sb)
	}
	select {
	case c := <-cname:
		if c != "b@test" {
			t.Errorf("CNAME %q", c)
		}
	case <-ctx.Done():
		t.Error("no SDES from b")
	}
	if _, err := NewReporter(ca.Stream(), ReporterConfig{}); !errors.Is(err, ErrReporterConfig) {
		t.Errorf("no clock rate: %v", err)
	}
}
