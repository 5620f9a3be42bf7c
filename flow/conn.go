package flow

import (
	"net"
	"net/netip"
	"time"
)

// PacketConn is the datagram socket a flow owns. *net.UDPConn implements it;
// FromPacketConn adapts any net.PacketConn (such as a pion vnet socket).
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	Close() error
}

// FromPacketConn adapts a net.PacketConn to PacketConn. The adapter allocates an
// address per packet; use a *net.UDPConn directly where speed matters.
func FromPacketConn(pc net.PacketConn) PacketConn {
	if u, ok := pc.(*net.UDPConn); ok {
		return u
	}
	return packetConnAdapter{pc}
}

type packetConnAdapter struct{ net.PacketConn }

func (a packetConnAdapter) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, err := a.ReadFrom(b)
	ap, _ := addrPortOf(from)
	return n, ap, err
}

func (a packetConnAdapter) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return a.WriteTo(b, net.UDPAddrFromAddrPort(addr))
}
