//go:build linux

package batchio

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// arrays are the kernel-facing headers of one system call.
type arrays struct {
	hdrs  [MaxBatch]unix.Mmsghdr
	iovs  [MaxBatch]unix.Iovec
	names [MaxBatch]unix.RawSockaddrInet6
}

var arrayPool = sync.Pool{New: func() any { return new(arrays) }}

// Conn reads and writes batches on one UDP socket. Reads must not run
// concurrently with each other, nor writes with each other; a read and a
// write may.
type Conn struct {
	rc syscall.RawConn
	v6 bool // an AF_INET6 socket: destinations go as sockaddr_in6

	// read state, for the bound callback rfn
	rfn  func(fd uintptr) bool
	rbuf Buffers
	rn   int
	rerr syscall.Errno

	// write state, for the bound callback wfn
	wfn    func(fd uintptr) bool
	wa     *arrays
	wstart int // first header to send
	wlen   int // headers to send
	wn     int // sent by the last call
	werr   syscall.Errno
}

// New returns a batch Conn on c's socket, or false when c has no IPv4 or
// IPv6 socket of the operating system (a simulated one, say).
func New(c syscall.Conn) (*Conn, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, false
	}
	var sa unix.Sockaddr
	var serr error
	if err := rc.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) }); err != nil || serr != nil {
		return nil, false
	}
	b := &Conn{rc: rc}
	switch sa.(type) {
	case *unix.SockaddrInet4:
	case *unix.SockaddrInet6:
		b.v6 = true
	default:
		return nil, false
	}
	b.rfn, b.wfn = b.recv, b.send
	return b, true
}

// ReadBatch waits until the socket is readable, then reads up to MaxBatch
// queued datagrams into the messages from bufs.Buffers, filling N and Addr;
// it returns how many it read (at least one unless err is set).
func (b *Conn) ReadBatch(bufs Buffers) (int, error) {
	b.rbuf, b.rn, b.rerr = bufs, 0, 0
	err := b.rc.Read(b.rfn)
	b.rbuf = nil
	if err != nil {
		return 0, err
	}
	if b.rerr != 0 {
		return 0, b.rerr
	}
	return b.rn, nil
}

// recv is the RawConn.Read callback: one recvmmsg.
func (b *Conn) recv(fd uintptr) bool {
	ms := b.rbuf.Buffers()
	if len(ms) > MaxBatch {
		ms = ms[:MaxBatch]
	}
	if len(ms) == 0 {
		b.rerr = syscall.EINVAL
		return true
	}
	a := arrayPool.Get().(*arrays)
	for i := range ms {
		a.iovs[i].Base = unsafe.SliceData(ms[i].Buf)
		a.iovs[i].SetLen(len(ms[i].Buf))
		h := &a.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&a.names[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		h.Iov = &a.iovs[i]
		h.SetIovlen(1)
		h.Control, h.Controllen, h.Flags = nil, 0, 0
		a.hdrs[i].Len = 0
	}
	var r uintptr
	var e syscall.Errno
	for {
		r, _, e = unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&a.hdrs[0])),
			uintptr(len(ms)), unix.MSG_WAITFORONE, 0, 0)
		if e != syscall.EINTR {
			break
		}
	}
	if e == syscall.EAGAIN {
		clear(a.iovs[:len(ms)]) // drop the references to the caller's buffers
		arrayPool.Put(a)
		b.rbuf.Idle()
		return false // wait in the poller
	}
	if e != 0 {
		clear(a.iovs[:len(ms)])
		arrayPool.Put(a)
		b.rerr = e
		return true
	}
	n := int(r)
	for i := range n {
		ms[i].N = int(a.hdrs[i].Len)
		ms[i].Addr = decode(&a.names[i], a.hdrs[i].Hdr.Namelen)
	}
	clear(a.iovs[:len(ms)])
	arrayPool.Put(a)
	b.rn = n
	return true
}

// decode reads a sockaddr_in or sockaddr_in6; a v4-mapped IPv6 source stays
// mapped (the caller unmaps, as for net.UDPConn).
func decode(sa *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		if n < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}
		}
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
	}
	return netip.AddrPort{}
}

// encode writes ap into sa as the family the socket uses: sockaddr_in6 (v4
// addresses mapped) on an IPv6 socket, sockaddr_in on an IPv4 one.
func encode(sa *unix.RawSockaddrInet6, ap netip.AddrPort, v6 bool) uint32 {
	if !v6 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], ap.Port())
		sa4.Addr = ap.Addr().As4()
		sa4.Zero = [8]uint8{}
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], ap.Port())
	sa.Flowinfo = 0
	sa.Addr = ap.Addr().As16()
	sa.Scope_id = 0
	return unix.SizeofSockaddrInet6
}

// WriteBatch sends ms in order, each to its Addr, MaxBatch per system call,
// waiting while the socket's send buffer is full. An IPv4 socket takes IPv4
// (or v4-mapped) destinations only. It returns how many it sent; err tells
// why it stopped short.
func (b *Conn) WriteBatch(ms []Msg) (int, error) {
	sent := 0
	for sent < len(ms) {
		chunk := ms[sent:]
		if len(chunk) > MaxBatch {
			chunk = chunk[:MaxBatch]
		}
		a := arrayPool.Get().(*arrays)
		var bad error
		for i := range chunk {
			ap := chunk[i].Addr
			if !b.v6 {
				if !ap.Addr().Unmap().Is4() {
					chunk, bad = chunk[:i], syscall.EAFNOSUPPORT
					break
				}
				ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			}
			a.iovs[i].Base = unsafe.SliceData(chunk[i].Buf)
			a.iovs[i].SetLen(len(chunk[i].Buf))
			h := &a.hdrs[i].Hdr
			h.Name = (*byte)(unsafe.Pointer(&a.names[i]))
			h.Namelen = encode(&a.names[i], ap, b.v6)
			h.Iov = &a.iovs[i]
			h.SetIovlen(1)
			h.Control, h.Controllen, h.Flags = nil, 0, 0
			a.hdrs[i].Len = 0
		}
		n, err := b.write(a, len(chunk))
		clear(a.iovs[:len(chunk)])
		arrayPool.Put(a)
		sent += n
		if err != nil {
			return sent, err
		}
		if bad != nil {
			return sent, bad
		}
	}
	return sent, nil
}

// write sends the first count prepared headers of a, all of them unless an
// error stops it.
func (b *Conn) write(a *arrays, count int) (int, error) {
	done := 0
	for done < count {
		b.wa, b.wstart, b.wlen, b.wn, b.werr = a, done, count-done, 0, 0
		err := b.rc.Write(b.wfn)
		b.wa = nil
		if err != nil {
			return done, err
		}
		if b.werr != 0 {
			return done, b.werr
		}
		done += b.wn
	}
	return done, nil
}

// send is the RawConn.Write callback: one sendmmsg.
func (b *Conn) send(fd uintptr) bool {
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.wa.hdrs[b.wstart])),
			uintptr(b.wlen), 0, 0, 0)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait until writable
		case 0:
			b.wn = int(r)
		default:
			b.werr = e
		}
		return true
	}
}
