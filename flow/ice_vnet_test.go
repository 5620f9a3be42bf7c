package flow

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/transport/v3/vnet"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/pionlog"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/natmode"
)

var (
	fullCone       = &vnet.NATType{MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointIndependent}
	portRestricted = &vnet.NATType{MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointAddrPortDependent}
	addrRestricted = &vnet.NATType{MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointAddrDependent}
	symmetric      = &vnet.NATType{MappingBehavior: vnet.EndpointAddrPortDependent, FilteringBehavior: vnet.EndpointAddrPortDependent}
)

// Two flows, each behind its own NAT (pion vnet), with a STUN server on the
// public side: ICE finds a path through server-reflexive candidates (and a
// peer-reflexive one where one NAT is symmetric), with hole punching where
// the NATs filter by address and port.
func TestICEBehindNATs(t *testing.T) {
	leak.Check(t)
	for _, tc := range []struct {
		name string
		a, b *vnet.NATType
	}{
		{"full-cone", fullCone, fullCone},
		{"port-restricted", portRestricted, portRestricted},
		// The symmetric NAT's checks leave from a new port: the peer learns
		// it as peer-reflexive. (Symmetric against port-restricted needs a
		// relay.)
		{"symmetric-vs-address-restricted", symmetric, addrRestricted},
	} {
		t.Run(tc.name, func(t *testing.T) { behindNATs(t, tc.a, tc.b) })
	}
}

func behindNATs(t *testing.T, natA, natB *vnet.NATType) {
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
	lan := func(pub, cidr, ip string, nat *vnet.NATType) *vnet.Net {
		r, err := vnet.NewRouter(&vnet.RouterConfig{StaticIPs: []string{pub}, CIDR: cidr, NATType: nat, LoggerFactory: lf})
		if err != nil {
			t.Fatal(err)
		}
		n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.AddNet(n); err != nil {
			t.Fatal(err)
		}
		if err := wan.AddRouter(r); err != nil {
			t.Fatal(err)
		}
		return n
	}
	netA := lan("5.6.7.8", "192.168.0.0/24", "192.168.0.2", natA)
	netB := lan("9.9.9.9", "10.0.0.0/24", "10.0.0.2", natB)
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

	open := func(n *vnet.Net, ip string) iceFlow {
		pc, err := n.ListenPacket("udp4", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		ev := make(events, 64)
		f, err := New(context.Background(), FromPacketConn(pc), Config{OnEvent: ev.on,
			NAT: natmode.Config{Mode: natmode.STUNBinding, Server: netip.MustParseAddrPort("1.2.3.4:3478"), Keepalive: -1}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		ev.wait(t, EventReady, 10*time.Second)
		return iceFlow{f, ev}
	}
	a, b := open(netA, "192.168.0.2"), open(netB, "10.0.0.2")
	ca, cb := configs(t, true, false)
	start := time.Now()
	startPair(t, a.Flow, b.Flow, ca, cb)
	a.ev.wait(t, EventICESelected, 20*time.Second)
	b.ev.wait(t, EventICESelected, 20*time.Second)
	la, ra, _ := a.SelectedPair()
	lb, rb, _ := b.SelectedPair()
	t.Logf("nominated after %v: a %v %v -> %v %v; b %v %v -> %v %v", time.Since(start),
		la.Type, la.Addr, ra.Type, ra.Addr, lb.Type, lb.Addr, rb.Type, rb.Addr)
	if ra.Addr.Addr() != netip.MustParseAddr("9.9.9.9") || rb.Addr.Addr() != netip.MustParseAddr("5.6.7.8") {
		t.Fatalf("selected remotes %v and %v are not the NATs' public addresses", ra.Addr, rb.Addr)
	}
	for i := uint16(0); i < 3; i++ {
		if _, err := a.Write(rtpPacket(i, 80)); err != nil {
			t.Fatal(err)
		}
		if p, _ := readOne(t, b.Flow); len(p) != 80 {
			t.Fatal("media a->b")
		}
		if _, err := b.Write(rtpPacket(i, 80)); err != nil {
			t.Fatal(err)
		}
		if p, _ := readOne(t, a.Flow); len(p) != 80 {
			t.Fatal("media b->a")
		}
	}
}
