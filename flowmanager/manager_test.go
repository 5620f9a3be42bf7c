package flowmanager_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/memnet"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

func TestTwoStreamsExchange(t *testing.T) {
	leak.Check(t)
	for _, ip := range []netip.Addr{loop4, loop6} {
		network := "udp4"
		if ip.Is6() {
			network = "udp6"
		}
		srv, err := testserver.StartSTUN(network, netip.AddrPortFrom(ip, 0))
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		for _, mode := range []natmode.Mode{natmode.None, natmode.STUNBinding} {
			for _, rtcp := range []bool{true, false} {
				name := ip.String() + "/" + mode.String()
				if rtcp {
					name += "/rtcp"
				} else {
					name += "/rtcp-mux"
				}
				t.Run(name, func(t *testing.T) {
					m := newManager(t, flowmanager.Config{})
					cfg := mediastream.Config{LocalAddr: ip, RTCP: rtcp, NAT: natmode.Config{Mode: mode, Server: srv.Addr}}
					a, ta := readyStream(t, m, cfg)
					b, tb := readyStream(t, m, cfg)
					if ta[0].Addr.Port()%2 != 0 {
						t.Errorf("RTP port %d is odd", ta[0].Addr.Port())
					}
					if rtcp {
						if a.RTCP() == nil || ta[1].Addr.Port() != ta[0].Addr.Port()+1 {
							t.Fatalf("RTCP tuple %v for RTP %v", ta[1], ta[0])
						}
					} else if a.RTCP() != nil || ta[1].IsValid() {
						t.Fatalf("RTCP flow %v / tuple %v with RTCP off", a.RTCP(), ta[1])
					}
					if mode == natmode.STUNBinding && a.RTP().ReflexiveTuple() != ta[0] {
						t.Fatalf("session tuple %v is not the reflexive %v", ta[0], a.RTP().ReflexiveTuple())
					}
					connect(t, a, ta, b, tb)
					exchange(t, a, ta, b, tb, 10)
				})
			}
		}
	}
}

func TestPortAlreadyInUse(t *testing.T) {
	leak.Check(t)
	m := newManager(t, flowmanager.Config{})
	// Find an even port and occupy its RTCP neighbour.
	var hold *net.UDPConn
	var port uint16
	for i := 0; i < 100 && hold == nil; i++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		if p := uint16(c.LocalAddr().(*net.UDPAddr).Port); p%2 == 1 {
			hold, port = c, p-1
		} else {
			c.Close()
		}
	}
	if hold == nil {
		t.Fatal("no odd port found")
	}
	defer hold.Close()
	_, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: loop4, Port: port, RTCP: true}, newRecorder())
	if !errors.Is(err, mediastream.ErrBind) {
		t.Fatalf("err = %v, want ErrBind", err)
	}
	// Its RTP port is free again: without RTCP the same port binds.
	s, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: loop4, Port: port}, newRecorder())
	if err != nil {
		t.Fatalf("port %d without RTCP: %v", port, err)
	}
	s.Close()
	// An odd RTP port is a configuration error (RFC 3550 §11).
	if _, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: loop4, Port: port + 1}, newRecorder()); !errors.Is(err, mediastream.ErrInvalidConfig) {
		t.Fatalf("odd port: %v", err)
	}
}

func TestPortRange(t *testing.T) {
	leak.Check(t)
	// Find four consecutive free ports starting at an even one.
	var lo uint16
	for try := 0; try < 50 && lo == 0; try++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		p := uint16(c.LocalAddr().(*net.UDPAddr).Port) &^ 1
		c.Close()
		if p > 60000 {
			continue
		}
		ok := true
		for q := p; q < p+4; q++ {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(q)})
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok {
			lo = p
		}
	}
	if lo == 0 {
		t.Fatal("no free range found")
	}
	m := newManager(t, flowmanager.Config{PortMin: lo, PortMax: lo + 3})
	cfg := mediastream.Config{LocalAddr: loop4, RTCP: true}
	seen := map[uint16]bool{}
	for i := 0; i < 2; i++ {
		s, err := m.NewStream(context.Background(), cfg, newRecorder())
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		p := s.RTP().LocalTuple().Addr.Port()
		if (p != lo && p != lo+2) || s.RTCP().LocalTuple().Addr.Port() != p+1 || seen[p] {
			t.Fatalf("stream %d got ports %d/%d in range %d-%d", i, p, s.RTCP().LocalTuple().Addr.Port(), lo, lo+3)
		}
		seen[p] = true
	}
	if _, err := m.NewStream(context.Background(), cfg, newRecorder()); !errors.Is(err, mediastream.ErrBind) {
		t.Fatalf("third stream in a two-pair range: %v", err)
	}
	if m.Streams() != 2 {
		t.Fatalf("Streams() = %d", m.Streams())
	}
	m.Close()
	if m.Streams() != 0 {
		t.Fatalf("Streams() after Close = %d", m.Streams())
	}
	if _, err := m.NewStream(context.Background(), cfg, newRecorder()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("NewStream after Close: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := flowmanager.New(flowmanager.Config{PortMin: 5000}); !errors.Is(err, flowmanager.ErrInvalidConfig) {
		t.Fatalf("half a range: %v", err)
	}
	m := newManager(t, flowmanager.Config{})
	for _, cfg := range []mediastream.Config{
		{},
		{LocalAddr: loop4, NAT: natmode.Config{Mode: natmode.STUNBinding}},
		{LocalAddr: loop4, NAT: natmode.Config{Mode: natmode.TURNUDP, Server: netip.MustParseAddrPort("127.0.0.1:3478")}},
	} {
		if _, err := m.NewStream(context.Background(), cfg, newRecorder()); !errors.Is(err, mediastream.ErrInvalidConfig) {
			t.Errorf("config %+v: err %v", cfg, err)
		}
	}
}

// memnetManager returns a manager whose streams live on an in-memory network.
func memnetManager(t testing.TB, n *memnet.Network) *flowmanager.Manager {
	return newManager(t, flowmanager.Config{Listen: func(network string, a netip.AddrPort) (flow.PacketConn, error) {
		return n.Listen(network, a)
	}})
}

// A STUN server that never answers: OnError after the default 10 s timeout,
// with the RFC 8489 retransmission schedule (requests at 0, 0.5, 1.5, 3.5, 7.5 s).
func TestSTUNTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		silent, err := n.Listen("udp4", netip.MustParseAddrPort("192.0.2.1:3478"))
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		got := make(chan time.Duration, 16)
		start := time.Now()
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := silent.ReadFromUDPAddrPort(buf); err != nil {
					return
				}
				got <- time.Since(start)
			}
		}()
		m := memnetManager(t, n)
		r := newRecorder()
		s, err := m.NewStream(context.Background(), mediastream.Config{
			LocalAddr: netip.MustParseAddr("10.0.0.1"),
			NAT:       natmode.Config{Mode: natmode.STUNBinding, Server: netip.MustParseAddrPort("192.0.2.1:3478")},
		}, r)
		if err != nil {
			t.Fatal(err)
		}
		err = <-r.errs
		if elapsed := time.Since(start); elapsed != natmode.DefaultTimeout {
			t.Errorf("error after %v, want %v", elapsed, natmode.DefaultTimeout)
		}
		var fe *flow.Error
		if !errors.Is(err, flow.ErrSTUNTimeout) || !errors.As(err, &fe) || fe.Component != flow.RTP {
			t.Fatalf("err = %v, want an RTP flow error matching ErrSTUNTimeout", err)
		}
		s.Close()
		synctest.Wait()
		want := []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 3500 * time.Millisecond, 7500 * time.Millisecond}
		close(got)
		var at []time.Duration
		for d := range got {
			at = append(at, d)
		}
		if len(at) != len(want) {
			t.Fatalf("requests at %v, want %v", at, want)
		}
		for i := range want {
			if at[i] != want[i] {
				t.Fatalf("requests at %v, want %v", at, want)
			}
		}
	})
}

// With a longer timeout the client gives up after Rc=7 requests and Rm=16 RTOs: 39.5 s.
func TestSTUNRetransmissionLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		m := memnetManager(t, n)
		r := newRecorder()
		start := time.Now()
		s, err := m.NewStream(context.Background(), mediastream.Config{
			LocalAddr: netip.MustParseAddr("10.0.0.1"),
			NAT:       natmode.Config{Mode: natmode.STUNBinding, Server: netip.MustParseAddrPort("192.0.2.1:3478"), Timeout: time.Minute},
		}, r)
		if err != nil {
			t.Fatal(err)
		}
		err = <-r.errs
		if !errors.Is(err, flow.ErrSTUNTimeout) {
			t.Fatalf("err %v", err)
		}
		if elapsed := time.Since(start); elapsed != 39500*time.Millisecond {
			t.Fatalf("gave up after %v, want 39.5s", elapsed)
		}
		s.Close()
	})
}

// Keep-alives: a Binding indication every interval while the stream lives.
func TestSTUNKeepalive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		pc, err := n.Listen("udp4", netip.MustParseAddrPort("192.0.2.1:3478"))
		if err != nil {
			t.Fatal(err)
		}
		srv, err := testserver.StartSTUNOn(pc)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		m := memnetManager(t, n)
		r := newRecorder()
		s, err := m.NewStream(context.Background(), mediastream.Config{
			LocalAddr: netip.MustParseAddr("10.0.0.1"), RTCP: true,
			NAT: natmode.Config{Mode: natmode.STUNBinding, Server: netip.MustParseAddrPort("192.0.2.1:3478"), Keepalive: 20 * time.Second},
		}, r)
		if err != nil {
			t.Fatal(err)
		}
		tu := <-r.ready
		if tu[0].Addr.Addr() != netip.MustParseAddr("10.0.0.1") {
			t.Fatalf("reflexive %v", tu[0])
		}
		time.Sleep(100*time.Second + time.Millisecond) // fake time: 5 intervals
		synctest.Wait()
		if got := srv.Indications(); got != 10 { // 5 per flow
			t.Fatalf("%d keep-alive indications in 100 s from 2 flows, want 10", got)
		}
		s.Close()
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := srv.Indications(); got != 10 {
			t.Fatalf("keep-alives continued after Close: %d", got)
		}
	})
}

// Two flows failing for one reason (the STUN server is silent) reach the
// handler as one error: the root cause, not one per flow.
func TestOneRootCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		pc, err := n.Listen("udp4", netip.MustParseAddrPort("192.0.2.1:3478"))
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close() // a server that never answers
		m := memnetManager(t, n)
		r := newRecorder()
		s, err := m.NewStream(context.Background(), mediastream.Config{
			LocalAddr: netip.MustParseAddr("10.0.0.1"), RTCP: true,
			NAT: natmode.Config{Mode: natmode.STUNBinding, Server: netip.MustParseAddrPort("192.0.2.1:3478"), Timeout: 300 * time.Millisecond},
		}, r)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // fake time: both flows' setups have given up
		synctest.Wait()
		if len(r.errs) != 1 {
			t.Fatalf("%d OnError calls for one cause, want 1", len(r.errs))
		}
		if err := <-r.errs; !errors.Is(err, flow.ErrSTUNTimeout) || s.Err() != err {
			t.Fatalf("error %v, Err %v", err, s.Err())
		}
		s.Close()
	})
}

func TestHandlerOrderAndReentrantClose(t *testing.T) {
	leak.Check(t)
	silent, err := testserver.StartSilent(netip.AddrPortFrom(loop4, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	m := newManager(t, flowmanager.Config{})
	// Both flows fail for the same reason: one OnError, with the root cause
	// (the second flow's timeout is not reported again).
	r := newRecorder()
	s, err := m.NewStream(context.Background(), mediastream.Config{
		LocalAddr: loop4, RTCP: true,
		NAT: natmode.Config{Mode: natmode.STUNBinding, Server: silent.Addr, Timeout: 300 * time.Millisecond},
	}, r)
	if err != nil {
		t.Fatal(err)
	}
	err = r.waitError(t, 10*time.Second)
	var fe *flow.Error
	if !errors.As(err, &fe) || !errors.Is(err, flow.ErrSTUNTimeout) {
		t.Fatalf("error %v", err)
	}
	if s.Err() != err || s.IsReady() {
		t.Fatalf("Err %v IsReady %v", s.Err(), s.IsReady())
	}
	if _, _, werr := s.WaitReady(context.Background()); werr != err {
		t.Fatalf("WaitReady: %v, want %v", werr, err)
	}
	s.Close()
	<-s.Done()
	r.mu.Lock()
	if r.overlap || len(r.events) != 1 {
		t.Fatalf("events %v overlap %v", r.events, r.overlap)
	}
	r.mu.Unlock()

	// Close from inside OnReady returns, and no handler call follows.
	closed := make(chan error, 1)
	var h mediastream.HandlerFuncs
	h.Ready = func(s *mediastream.Stream, _, _ flow.Tuple) { closed <- s.Close() }
	h.Error = func(*mediastream.Stream, error) { t.Error("OnError after Close") }
	s2, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: loop4, RTCP: true}, h)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close in handler: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close inside OnReady did not return")
	}
	<-s2.Done()
	if err := s2.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s2.RTP().Write(rtpPacket(1, 20)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

func TestManagerCloseClosesStreams(t *testing.T) {
	leak.Check(t)
	m, err := flowmanager.New(flowmanager.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var streams []*mediastream.Stream
	for i := 0; i < 5; i++ {
		s, _ := readyStream(t, m, mediastream.Config{LocalAddr: loop4, RTCP: i%2 == 0})
		streams = append(streams, s)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		if _, err := s.RTP().Write(rtpPacket(1, 20)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("a stream is still open after Manager.Close: write %v", err)
		}
	}
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Manager.Done not closed")
	}
	for _, s := range streams {
		select {
		case <-s.Done():
		default:
			t.Fatal("Manager.Done closed before a stream's Done")
		}
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
