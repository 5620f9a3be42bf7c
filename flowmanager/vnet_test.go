package flowmanager_test

import (
	"net/netip"
	"testing"

	"github.com/pion/transport/v3/vnet"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/pionlog"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

// A stream behind a NAT (pion vnet) learns the NAT's public address through
// STUN, and a peer on the public side reaches it there.
func TestSTUNBehindNAT(t *testing.T) {
	leak.Check(t)
	lf := pionlog.Factory(nil)
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "0.0.0.0/0", LoggerFactory: lf})
	if err != nil {
		t.Fatal(err)
	}
	public, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{"1.2.3.4"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := wan.AddNet(public); err != nil {
		t.Fatal(err)
	}
	lan, err := vnet.NewRouter(&vnet.RouterConfig{
		StaticIPs: []string{"5.6.7.8"}, CIDR: "192.168.0.0/24", LoggerFactory: lf,
		NATType: &vnet.NATType{MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointAddrPortDependent},
	})
	if err != nil {
		t.Fatal(err)
	}
	private, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{"192.168.0.2"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := lan.AddNet(private); err != nil {
		t.Fatal(err)
	}
	if err := wan.AddRouter(lan); err != nil {
		t.Fatal(err)
	}
	if err := wan.Start(); err != nil {
		t.Fatal(err)
	}
	defer wan.Stop()

	pc, err := public.ListenPacket("udp4", "1.2.3.4:3478")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := testserver.StartSTUNOn(pc)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	listenOn := func(n *vnet.Net) mediastream.ListenFunc {
		return func(network string, a netip.AddrPort) (flow.PacketConn, error) {
			pc, err := n.ListenPacket(network, a.String())
			if err != nil {
				return nil, err
			}
			return flow.FromPacketConn(pc), nil
		}
	}
	inside := newManager(t, flowmanager.Config{Listen: listenOn(private)})
	outside := newManager(t, flowmanager.Config{Listen: listenOn(public)})
	lanIP := netip.MustParseAddr("192.168.0.2")

	a, ta := readyStream(t, inside, mediastream.Config{LocalAddr: lanIP, RTCP: true,
		NAT: natmode.Config{Mode: natmode.STUNBinding, Server: netip.MustParseAddrPort("1.2.3.4:3478")}})
	if ta[0].Addr.Addr() != netip.MustParseAddr("5.6.7.8") || ta[1].Addr.Addr() != netip.MustParseAddr("5.6.7.8") {
		t.Fatalf("session tuples %v %v, want the NAT's public address 5.6.7.8", ta[0], ta[1])
	}
	if a.RTP().LocalTuple().Addr.Addr() != lanIP {
		t.Fatalf("local tuple %v", a.RTP().LocalTuple())
	}
	b, tb := readyStream(t, outside, mediastream.Config{LocalAddr: netip.MustParseAddr("1.2.3.4"), RTCP: true})
	connect(t, a, ta, b, tb)
	// The inside stream sends first, which opens the NAT's filter for the peer.
	exchange(t, a, ta, b, tb, 5)
}
