package stunx

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/pion/stun/v2"
)

// Decode validates b (see Validate) and decodes a copy of it with pion's
// Message.Decode under recover. The returned message owns its bytes; b may be
// reused. A recovered panic gives an error wrapping ErrPanic, a structural
// problem one wrapping ErrMalformed.
func Decode(b []byte) (*stun.Message, error) {
	if err := Validate(b); err != nil {
		return nil, err
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	var derr error
	if err := Safe(func() { derr = m.Decode() }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, derr)
	}
	return m, nil
}

// Safe runs fn and turns a panic inside it into an error wrapping ErrPanic.
// Use it around every pion call that parses network input, such as
// turn.Client.HandleInbound.
func Safe(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("%w: %w", ErrPanic, e)
			} else {
				err = fmt.Errorf("%w: %v", ErrPanic, r)
			}
		}
	}()
	fn()
	return nil
}

// MappedAddress returns the reflexive address in m: XOR-MAPPED-ADDRESS if
// present, else MAPPED-ADDRESS, with an IPv4-mapped IPv6 address unmapped.
// It never panics. When neither attribute is present the error wraps
// stun.ErrAttributeNotFound; a malformed attribute gives an error wrapping
// ErrMalformed (or ErrPanic).
func MappedAddress(m *stun.Message) (netip.AddrPort, error) {
	if m == nil {
		return netip.AddrPort{}, fmt.Errorf("%w: nil message", ErrMalformed)
	}
	var (
		ip   net.IP
		port int
		gerr error
	)
	perr := Safe(func() {
		if m.Contains(stun.AttrXORMappedAddress) {
			var a stun.XORMappedAddress
			gerr = a.GetFrom(m)
			ip, port = a.IP, a.Port
			return
		}
		if m.Contains(stun.AttrMappedAddress) {
			var a stun.MappedAddress
			gerr = a.GetFrom(m)
			ip, port = a.IP, a.Port
			return
		}
		gerr = fmt.Errorf("stunx: no XOR-MAPPED-ADDRESS or MAPPED-ADDRESS: %w", stun.ErrAttributeNotFound)
	})
	if perr != nil {
		return netip.AddrPort{}, perr
	}
	if gerr != nil {
		if errors.Is(gerr, stun.ErrAttributeNotFound) {
			return netip.AddrPort{}, gerr
		}
		return netip.AddrPort{}, fmt.Errorf("%w: %w", ErrMalformed, gerr)
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok || port < 0 || port > 0xFFFF {
		return netip.AddrPort{}, fmt.Errorf("%w: bad address %v port %d", ErrMalformed, ip, port)
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}
