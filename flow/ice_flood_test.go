package flow

import (
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v2"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/natmode"
)

// watchConn wraps a flow's socket: it records the TURN requests the flow
// sends to server (with the peer address they name) and, with firewall set,
// drops every datagram to or from anyone but server, so that the flow
// reaches peers only through its relay.
type watchConn struct {
	*net.UDPConn
	server   netip.AddrPort
	firewall bool
	mu       sync.Mutex
	requests []netip.AddrPort // XOR-PEER-ADDRESS of each request (zero if none)
	media    atomic.Int64     // RTP datagrams read from the socket (direct or relayed)
}

// isMedia reports whether a datagram read from the socket carries RTP:
// directly, in ChannelData, or in a Data indication.
func isMedia(b []byte) bool {
	switch {
	case len(b) > 0 && b[0] >= 128 && b[0] <= 191:
		return true
	case len(b) > 4 && b[0] >= 64 && b[0] <= 79:
		return b[4] >= 128 && b[4] <= 191
	case len(b) > 20 && b[0] == 0x00 && b[1] == 0x17: // Data indication
		m := &stun.Message{Raw: append([]byte(nil), b...)}
		if m.Decode() != nil {
			return false
		}
		d, err := m.Get(attrData)
		return err == nil && len(d) > 0 && d[0] >= 128 && d[0] <= 191
	}
	return false
}

func (c *watchConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if to == c.server && len(b) >= 20 && b[0]&0xC1 == 0 && b[1]&0x10 == 0 { // a STUN request
		var peer netip.AddrPort
		m := &stun.Message{Raw: append([]byte(nil), b...)}
		if m.Decode() == nil {
			var x stun.XORMappedAddress
			if x.GetFromAs(m, stun.AttrXORPeerAddress) == nil {
				ip, _ := netip.AddrFromSlice(x.IP)
				peer = netip.AddrPortFrom(ip.Unmap(), uint16(x.Port))
			}
		}
		c.mu.Lock()
		c.requests = append(c.requests, peer)
		c.mu.Unlock()
	} else if c.firewall && to != c.server {
		return len(b), nil
	}
	return c.UDPConn.WriteToUDPAddrPort(b, to)
}

func (c *watchConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := c.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil || !c.firewall || unmap(from) == c.server {
			if err == nil && isMedia(b[:n]) {
				c.media.Add(1)
			}
			return n, from, err
		}
	}
}

func (c *watchConn) turnRequests() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]netip.AddrPort(nil), c.requests...)
}

// A flood of 10,000 unauthenticated and 10,000 wrongly signed checks per
// second (a tenth of that under -race), from 32 source ports, at the host and
// at the relayed candidate of a flow while media flows: every media packet
// that reaches the flow is delivered, no TURN
// transaction is caused, the goroutine count stays flat and the error
// responses stay within the rate limit.
func TestICEFlood(t *testing.T) {
	leak.Check(t)
	srv, err := testserver.StartTURN(testserver.TURNConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, relayed := range []bool{false, true} {
		name := "host"
		if relayed {
			name = "relay"
		}
		t.Run(name, func(t *testing.T) { flood(t, srv, relayed) })
	}
}

func flood(t *testing.T, srv *testserver.TURN, relayed bool) {
	a := newICEFlow(t, Config{})
	wc := &watchConn{UDPConn: listen(t, loop4), server: srv.UDP, firewall: relayed}
	wc.SetReadBuffer(4 << 20)
	cfg := Config{}
	if relayed {
		cfg.NAT = natmode.Config{Mode: natmode.TURNUDP, Server: srv.UDP, Username: testserver.DefaultUsername, Password: testserver.DefaultPassword}
	}
	bev := make(events, 64)
	cfg.OnEvent = bev.on
	bf, err := New(t.Context(), wc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	b := iceFlow{bf, bev}
	if relayed {
		b.ev.wait(t, EventReady, 10*time.Second)
	}
	ca, cb := configs(t, true, false)
	start := time.Now()
	startPair(t, a.Flow, b.Flow, ca, cb)
	a.ev.wait(t, EventICESelected, 10*time.Second)
	b.ev.wait(t, EventICESelected, 10*time.Second)
	t.Logf("pair selected on both sides after %v", time.Since(start))
	target := b.LocalTuple().Addr
	if l, _, _ := b.SelectedPair(); relayed {
		if l.Type != CandidateRelay {
			t.Fatalf("selected local %v, want the relay", l)
		}
		target = b.RelayTuple().Addr
	}

	// The flood: pre-built checks, 100 of each kind per 10 ms.
	// Under the race detector the reader is about ten times slower: the
	// flood is scaled down to 2,000 per second so that it tests the same
	// thing (the reader keeps up) rather than the machine's speed.
	perTick := 100
	if raceEnabled {
		perTick = 10
	}
	var bad []*stun.Message
	for i := 0; i < perTick; i++ {
		bad = append(bad,
			check(t, "nobody:x", ""), // no MESSAGE-INTEGRITY: 400 at most
			check(t, cb.LocalUfrag+":"+ca.LocalUfrag, "a-wrong-password-0123456789")) // 401 at most
	}
	var flooders []*net.UDPConn
	for i := 0; i < 32; i++ {
		c := listen(t, loop4)
		defer c.Close()
		flooders = append(flooders, c)
	}
	const dur = 1500 * time.Millisecond
	g0 := runtime.NumGoroutine()
	reqs0 := len(wc.turnRequests())
	stats0 := b.Stats()

	var received atomic.Int64
	rdone := make(chan struct{})
	go func() { // b's application reads media
		defer close(rdone)
		buf := make([]byte, 2048)
		next := uint16(0)
		for {
			b.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _, err := b.ReadFromAddrPort(buf)
			if err != nil {
				return
			}
			if n == 80 && binary.BigEndian.Uint16(buf[2:]) >= next {
				next = binary.BigEndian.Uint16(buf[2:]) + 1
				received.Add(1)
			}
		}
	}()
	fdone := make(chan struct{})
	go func() {
		defer close(fdone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for end := time.Now().Add(dur); time.Now().Before(end); <-tick.C {
			for i, m := range bad {
				flooders[i%len(flooders)].WriteToUDPAddrPort(m.Raw, target)
			}
		}
	}()
	maxG := g0
	sent := 0
	for end := time.Now().Add(dur); time.Now().Before(end); sent++ {
		if _, err := a.Write(rtpPacket(uint16(sent), 80)); err != nil {
			t.Fatal(err)
		}
		maxG = max(maxG, runtime.NumGoroutine())
		time.Sleep(2 * time.Millisecond) // pacing of the media source, not synchronisation
	}
	<-fdone
	// Media after the flood proves the path still works; then stop reading.
	for i := 0; i < 10; i++ {
		a.Write(rtpPacket(uint16(sent), 80))
		sent++
	}
	deadline := time.Now().Add(5 * time.Second)
	for received.Load() < int64(sent) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.SetReadDeadline(time.Now())
	<-rdone
	st := b.Stats()
	errors := 0
	buf := make([]byte, 1500)
	for _, c := range flooders {
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		for {
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				break
			}
			errors++
		}
	}
	checks := st.Dropped[DropAuth] - stats0.Dropped[DropAuth]
	t.Logf("dropped %v", st.Dropped)
	t.Logf("media datagrams read by the flow's socket: %d", wc.media.Load())
	t.Logf("%s: %d checks refused, %d error responses, media %d/%d delivered, goroutines %d -> max %d, TURN requests during the flood %d",
		map[bool]string{false: "host", true: "relay"}[relayed], checks, errors, received.Load(), sent, g0, maxG, len(wc.turnRequests())-reqs0)
	// Every media datagram that reached the flow's socket is delivered. Over
	// the host path that is every packet sent; through the relay the
	// in-process TURN server (pion, on the same two loaded cores as the
	// flood) may lose a few before they reach the flow.
	if received.Load() != wc.media.Load() {
		t.Errorf("media: %d delivered of %d that reached the socket", received.Load(), wc.media.Load())
	}
	if (!relayed && received.Load() != int64(sent)) || received.Load() < int64(sent)*9/10 {
		t.Errorf("media: %d of %d delivered", received.Load(), sent)
	}
	if checks < uint64(perTick*50) {
		t.Errorf("only %d bad checks reached the flow", checks)
	}
	if limit := errorBurst + int(dur/errorInterval) + 10; errors > limit {
		t.Errorf("%d error responses, limit %d", errors, limit)
	}
	if maxG > g0+4 {
		t.Errorf("goroutines grew from %d to %d", g0, maxG)
	}
	for _, p := range wc.turnRequests()[reqs0:] {
		for _, c := range flooders {
			if p == netip.MustParseAddrPort(c.LocalAddr().String()) {
				t.Errorf("a TURN request names flooder %v", p)
			}
		}
	}
	if n := len(wc.turnRequests()) - reqs0; n > 2 {
		t.Errorf("%d TURN requests during the flood", n)
	}
	if _, r, _ := b.SelectedPair(); r.Addr != a.LocalTuple().Addr {
		t.Errorf("selected remote changed to %v", r.Addr)
	}
}
