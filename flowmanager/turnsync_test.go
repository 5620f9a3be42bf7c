package flowmanager_test

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/turn/v3"
	"github.com/reflow-go/reflow/internal/memnet"
	"github.com/reflow-go/reflow/internal/pionlog"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

// memRelays allocates TURN relays on an in-memory network.
type memRelays struct {
	n  *memnet.Network
	ip netip.Addr
}

func (g memRelays) Validate() error { return nil }
func (g memRelays) AllocatePacketConn(_ string, port int) (net.PacketConn, net.Addr, error) {
	c, err := g.n.Listen("udp4", netip.AddrPortFrom(g.ip, uint16(port)))
	if err != nil {
		return nil, nil, err
	}
	return c, c.LocalAddr(), nil
}
func (g memRelays) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, net.ErrClosed
}

// countingConn counts the STUN requests a server receives, by method.
type countingConn struct {
	net.PacketConn
	refresh, permission, channel atomic.Int32
}

func (c *countingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(p)
	if err == nil && n >= 20 && p[0] < 4 {
		switch binary.BigEndian.Uint16(p) { // request class, RFC 8656 methods
		case 0x0004:
			if binary.BigEndian.Uint32(p[4:]) == 0x2112A442 {
				c.refresh.Add(1)
			}
		case 0x0008:
			c.permission.Add(1)
		case 0x0009:
			c.channel.Add(1)
		}
	}
	return n, a, err
}

// Refreshes over 30 fake minutes with a 60 s lifetime and the default 30 s
// liveness bound: the allocation is refreshed every 15 s (120 times), the
// active destination's channel binding (and with it the permission) every
// 120 s (15 times after the first ChannelBind), and nothing is reported lost.
func TestTURNRefreshOverThirtyMinutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		pc, err := n.Listen("udp4", netip.MustParseAddrPort("192.0.2.10:3478"))
		if err != nil {
			t.Fatal(err)
		}
		cc := &countingConn{PacketConn: pc}
		key := turn.GenerateAuthKey("alice", "reflow.test", "s3cret")
		srv, err := turn.NewServer(turn.ServerConfig{
			Realm:         "reflow.test",
			LoggerFactory: pionlog.Factory(nil),
			AuthHandler: func(u, _ string, _ net.Addr) ([]byte, bool) {
				return key, u == "alice"
			},
			PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: cc,
				RelayAddressGenerator: memRelays{n, netip.MustParseAddr("192.0.2.10")}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		m := memnetManager(t, n)
		r := newRecorder()
		s, err := m.NewStream(context.Background(), mediastream.Config{
			LocalAddr: netip.MustParseAddr("10.0.0.1"),
			NAT: natmode.Config{Mode: natmode.TURNUDP, Server: netip.MustParseAddrPort("192.0.2.10:3478"),
				Username: "alice", Password: "s3cret", Lifetime: time.Minute, Keepalive: -1},
		}, r)
		if err != nil {
			t.Fatal(err)
		}
		tu := <-r.ready
		if tu[0].Addr.Addr() != netip.MustParseAddr("192.0.2.10") {
			t.Fatalf("relayed %v", tu[0])
		}
		s.RTP().SetActiveDestination(netip.MustParseAddrPort("192.0.2.99:4000"))
		synctest.Wait()
		if got := cc.channel.Load(); got != 1 {
			t.Fatalf("%d ChannelBind after SetActiveDestination, want 1", got)
		}
		time.Sleep(30*time.Minute + time.Second)
		synctest.Wait()
		if got := cc.refresh.Load(); got != 120 {
			t.Errorf("%d allocation refreshes in 30 min, want 120", got)
		}
		if got := cc.channel.Load(); got != 1+15 {
			t.Errorf("%d ChannelBind requests in 30 min, want 16", got)
		}
		if got := cc.permission.Load(); got != 0 {
			t.Errorf("%d CreatePermission requests, want none (ChannelBind installs the permission)", got)
		}
		select {
		case err := <-r.errs:
			t.Fatalf("error during healthy refreshes: %v", err)
		default:
		}
		s.Close()
		synctest.Wait()
		if got := cc.refresh.Load(); got != 121 { // the deallocation: Refresh with LIFETIME 0
			t.Errorf("%d refreshes after Close, want 121 (one deallocation)", got)
		}
	})
}
