package flowmanager_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/pion/stun/v2"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

// zeroPeerDataIndication is the 24-byte Data indication of GHSA-34rh-wp3j-6cxc:
// an XOR-PEER-ADDRESS of length 0, which makes pion/stun/v2 panic.
func zeroPeerDataIndication() []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint16(b[0:], 0x0017) // Data indication
	binary.BigEndian.PutUint16(b[2:], 4)
	binary.BigEndian.PutUint32(b[4:], 0x2112A442)
	copy(b[8:20], "hostile-txid")
	binary.BigEndian.PutUint16(b[20:], 0x0012) // XOR-PEER-ADDRESS, length 0
	return b
}

// dataIndication is a well-formed Data indication claiming to relay payload from peer.
func dataIndication(t testing.TB, peer netip.AddrPort, payload []byte) []byte {
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodData, stun.ClassIndication),
		&xorPeer{peer}, rawAttr{0x0013, payload}, stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

type xorPeer struct{ ap netip.AddrPort }

func (x *xorPeer) AddTo(m *stun.Message) error {
	a := stun.XORMappedAddress{IP: x.ap.Addr().AsSlice(), Port: int(x.ap.Port())}
	return a.AddToAs(m, stun.AttrXORPeerAddress)
}

type rawAttr struct {
	t stun.AttrType
	v []byte
}

func (r rawAttr) AddTo(m *stun.Message) error { m.Add(r.t, r.v); return nil }

// udpProxy stands between a client and a real TURN server: to the client it is
// the server, and it can inject datagrams as the server.
type udpProxy struct {
	front, back *net.UDPConn
	upstream    netip.AddrPort
	mu          sync.Mutex
	client      netip.AddrPort
	wg          sync.WaitGroup
}

func newProxy(t testing.TB, upstream netip.AddrPort) *udpProxy {
	p := &udpProxy{upstream: upstream}
	var err error
	if p.front, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	if p.back, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 4096)
		for {
			n, from, err := p.front.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.client = from
			p.mu.Unlock()
			p.back.WriteToUDPAddrPort(buf[:n], upstream)
		}
	}()
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 4096)
		for {
			n, _, err := p.back.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			c := p.client
			p.mu.Unlock()
			p.front.WriteToUDPAddrPort(buf[:n], c)
		}
	}()
	t.Cleanup(func() { p.front.Close(); p.back.Close(); p.wg.Wait() })
	return p
}

func (p *udpProxy) addr() netip.AddrPort { return p.front.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *udpProxy) inject(b []byte) {
	p.mu.Lock()
	c := p.client
	p.mu.Unlock()
	p.front.WriteToUDPAddrPort(b, c)
}

// The GHSA-34rh-wp3j-6cxc packet, from a stranger and from the "server" the
// flow allocated on, and a spoofed Data indication from a stranger: the
// process survives, the packets are dropped and counted, nothing spoofed is
// delivered, and media from the real peer still flows.
func TestTURNHostilePackets(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, testserver.TURNConfig{})
	proxy := newProxy(t, srv.UDP)
	m := newManager(t, flowmanager.Config{})
	cfg := turnConfig(srv, natmode.TURNUDP)
	cfg.Server = proxy.addr()
	a, ta := readyStream(t, m, mediastream.Config{LocalAddr: loop4, NAT: cfg})
	b, tb := readyStream(t, m, mediastream.Config{LocalAddr: loop4, NAT: turnConfig(srv, natmode.TURNUDP)})
	connect(t, a, ta, b, tb)
	exchange(t, a, ta, b, tb, 2)

	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	local := a.RTP().LocalTuple().Addr
	before := a.RTP().Stats()
	spoof := rtpPacket(999, 60)
	stranger.WriteToUDPAddrPort(zeroPeerDataIndication(), local)
	stranger.WriteToUDPAddrPort(dataIndication(t, tb[0].Addr, spoof), local)
	proxy.inject(zeroPeerDataIndication())
	proxy.inject([]byte{0x40, 0x00, 0x00, 0x08, 1, 2}) // truncated ChannelData
	proxy.inject([]byte{0x40, 0x77, 0x00, 0x02, 1, 2}) // unknown channel

	// Media still flows, and nothing spoofed arrives.
	for i := 0; i < 3; i++ {
		p := rtpPacket(uint16(100+i), 172)
		expect(t, func() error { _, err := b.RTP().Write(p); return err }, a.RTP(), p, tb[0].Addr)
	}
	after := a.RTP().Stats()
	dropped := after.TotalDropped() - before.TotalDropped()
	if dropped < 5 {
		t.Fatalf("%d drops for 5 hostile packets: %+v", dropped, after.Dropped)
	}
	if after.Dropped[flow.DropUnexpected] < before.Dropped[flow.DropUnexpected]+2 {
		t.Fatalf("stranger's packets not counted as unexpected: %+v", after.Dropped)
	}
	if after.Dropped[flow.DropMalformed]+after.Dropped[flow.DropPanic] < before.Dropped[flow.DropMalformed]+2 {
		t.Fatalf("server's malformed packets not counted: %+v", after.Dropped)
	}
}
