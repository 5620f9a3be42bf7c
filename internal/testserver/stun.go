package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/stun/v2"

	"github.com/reflow-go/reflow/internal/stunx"
)

// STUN is a minimal STUN Binding server (RFC 8489) on one UDP socket. It
// answers every well-formed Binding request with a Binding success response
// carrying XOR-MAPPED-ADDRESS (the request's source) and FINGERPRINT, counts
// Binding requests and Binding indications, and ignores everything else.
// It works over IPv4 and IPv6.
type STUN struct {
	// Addr is the address the server receives on.
	Addr netip.AddrPort

	pc          net.PacketConn
	requests    counter
	indications counter
	done        chan struct{}
	closeOnce   sync.Once
	closeErr    error
}

// StartSTUN starts a STUN server on a new UDP socket; network is "udp4" or
// "udp6" and addr usually has port 0, e.g. 127.0.0.1:0 or [::1]:0.
func StartSTUN(network string, addr netip.AddrPort) (*STUN, error) {
	if network != "udp4" && network != "udp6" {
		return nil, fmt.Errorf("testserver: STUN network %q, want udp4 or udp6", network)
	}
	pc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("testserver: STUN listener: %w", err)
	}
	s, err := StartSTUNOn(pc)
	if err != nil {
		_ = pc.Close()
	}
	return s, err
}

// StartSTUNOn starts a STUN server on pc, for example a pion vnet
// connection. The server owns pc from then on: Close closes it.
func StartSTUNOn(pc net.PacketConn) (*STUN, error) {
	addr, err := addrPort(pc.LocalAddr())
	if err != nil {
		return nil, err
	}
	s := &STUN{Addr: addr, pc: pc, done: make(chan struct{})}
	go s.serve()
	return s, nil
}

// addrPort converts a UDP net.Addr (also one from vnet) to netip.AddrPort.
func addrPort(a net.Addr) (netip.AddrPort, error) {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("testserver: address %v: %w", a, err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func (s *STUN) serve() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return // closed: a UDP read fails for no other reason
		}
		m, err := stunx.Decode(buf[:n])
		if err != nil || m.Type.Method != stun.MethodBinding {
			continue
		}
		switch m.Type.Class {
		case stun.ClassIndication:
			s.indications.add()
		case stun.ClassRequest:
			s.requests.add()
			src, err := addrPort(from)
			if err != nil {
				continue
			}
			res, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
				&stun.XORMappedAddress{IP: src.Addr().AsSlice(), Port: int(src.Port())}, stun.Fingerprint)
			if err != nil {
				continue
			}
			_, _ = s.pc.WriteTo(res.Raw, from)
		}
	}
}

// Requests returns how many Binding requests the server has received.
func (s *STUN) Requests() int { return s.requests.value() }

// Indications returns how many Binding indications the server has received.
func (s *STUN) Indications() int { return s.indications.value() }

// WaitRequests returns when Requests is at least n, or with ctx's error.
func (s *STUN) WaitRequests(ctx context.Context, n int) error { return s.requests.wait(ctx, n) }

// WaitIndications returns when Indications is at least n, or with ctx's
// error.
func (s *STUN) WaitIndications(ctx context.Context, n int) error {
	return s.indications.wait(ctx, n)
}

// Close closes the socket and waits for the server goroutine. It is
// idempotent.
func (s *STUN) Close() error {
	s.closeOnce.Do(func() {
		if err := s.pc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.closeErr = err
		}
		<-s.done
	})
	return s.closeErr
}

// Silent is a UDP socket that reads everything and never answers: a STUN or
// TURN server that does not respond.
type Silent struct {
	// Addr is the address the socket receives on.
	Addr netip.AddrPort

	pc        net.PacketConn
	packets   counter
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// StartSilent opens a silent UDP socket on addr (usually port 0); the
// address family picks udp4 or udp6.
func StartSilent(addr netip.AddrPort) (*Silent, error) {
	pc, err := net.ListenUDP(network("udp", addr.Addr()), net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("testserver: silent listener: %w", err)
	}
	ap, err := addrPort(pc.LocalAddr())
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	s := &Silent{Addr: ap, pc: pc, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 65536)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			s.packets.add()
		}
	}()
	return s, nil
}

// Packets returns how many datagrams the socket has received.
func (s *Silent) Packets() int { return s.packets.value() }

// WaitPackets returns when Packets is at least n, or with ctx's error.
func (s *Silent) WaitPackets(ctx context.Context, n int) error { return s.packets.wait(ctx, n) }

// Close closes the socket and waits for its reader. It is idempotent.
func (s *Silent) Close() error {
	s.closeOnce.Do(func() {
		if err := s.pc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.closeErr = err
		}
		<-s.done
	})
	return s.closeErr
}
