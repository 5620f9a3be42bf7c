package mediastream

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"

	"github.com/reflow-go/reflow/flow"
)

// ListenFunc opens a UDP socket at laddr; network is "udp4" or "udp6".
type ListenFunc func(network string, laddr netip.AddrPort) (flow.PacketConn, error)

func listenUDP(network string, laddr netip.AddrPort) (flow.PacketConn, error) {
	return net.ListenUDP(network, net.UDPAddrFromAddrPort(laddr))
}

// maxPairTries bounds the search for a free even/odd port pair.
const maxPairTries = 64

// bindPair binds the RTP socket on an even port P and, when rtcp is true, the
// RTCP socket on P+1 (RFC 3550 §11), honouring a port range when one is set.
func bindPair(listen ListenFunc, ip netip.Addr, port uint16, rtcp bool, lo, hi uint16) (rtpConn, rtcpConn flow.PacketConn, err error) {
	network := "udp4"
	if ip.Is6() && !ip.Is4In6() {
		network = "udp6"
	}
	try := func(p uint16) (flow.PacketConn, flow.PacketConn, error) {
		a, err := listen(network, netip.AddrPortFrom(ip, p))
		if err != nil {
			return nil, nil, err
		}
		got := uint16(0)
		if ua, ok := a.LocalAddr().(*net.UDPAddr); ok {
			got = uint16(ua.Port)
		}
		if p == 0 && (got%2 != 0 || got == 65534) { // RTP on an even port (RFC 3550 §11)
			a.Close()
			return nil, nil, errOddPort
		}
		if !rtcp {
			return a, nil, nil
		}
		b, err := listen(network, netip.AddrPortFrom(ip, got+1))
		if err != nil {
			a.Close()
			return nil, nil, err
		}
		return a, b, nil
	}
	switch {
	case port != 0:
		if port%2 != 0 {
			return nil, nil, fmt.Errorf("%w: RTP port %d is odd", ErrInvalidConfig, port)
		}
		a, b, err := try(port)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s port %d: %w", ErrBind, ip, port, err)
		}
		return a, b, nil
	case lo != 0 || hi != 0:
		first := lo + lo%2 // even
		if hi < first+1 {
			return nil, nil, fmt.Errorf("%w: port range %d-%d holds no pair", ErrInvalidConfig, lo, hi)
		}
		pairs := int(hi-first+1) / 2
		start := rand.IntN(pairs)
		var last error
		for i := 0; i < pairs; i++ {
			p := first + uint16((start+i)%pairs)*2
			a, b, err := try(p)
			if err == nil {
				return a, b, nil
			}
			last = err
		}
		return nil, nil, fmt.Errorf("%w: no free pair in %d-%d on %s: %w", ErrBind, lo, hi, ip, last)
	default:
		var last error
		for i := 0; i < maxPairTries; i++ {
			a, b, err := try(0)
			if err == nil {
				return a, b, nil
			}
			last = err
		}
		return nil, nil, fmt.Errorf("%w: no free pair on %s after %d tries: %w", ErrBind, ip, maxPairTries, last)
	}
}

var errOddPort = errors.New("odd port")
