// Package batchio reads and writes UDP datagrams in batches: recvmmsg(2) and
// sendmmsg(2) on Linux, through the socket's syscall.RawConn so that Go's
// poller still does the waiting (deadlines and Close work as for any read).
// Elsewhere it does one datagram per call.
//
// Nothing allocates per datagram: the mmsghdr, iovec and sockaddr arrays
// come from a pool for the length of one system call, and the caller's
// buffers are asked for (Buffers) only when the socket is readable, and
// offered back (Idle) before the reader waits, so that an idle socket holds
// no batch memory.
//
// A read never waits for a batch to fill: recvmmsg is called with
// MSG_WAITFORONE on a non-blocking socket, so it returns as soon as one
// datagram is there, with whatever else is already queued behind it.
package batchio

import (
	"net/netip"
)

// MaxBatch is the most datagrams one system call reads or writes.
const MaxBatch = 16

// Msg is one datagram of a batch.
type Msg struct {
	// Buf is the datagram (to write) or the buffer to read into.
	Buf []byte
	// N is the length read (reads only). A datagram longer than Buf is
	// truncated to len(Buf).
	N int
	// Addr is the source (reads) or the destination (writes).
	Addr netip.AddrPort
}

// Buffers supplies the receive buffers of a batch read.
type Buffers interface {
	// Buffers is called each time the socket may be readable; it returns
	// the messages to read into (at most MaxBatch are used), each with
	// its Buf set.
	Buffers() []Msg
	// Idle is called when the socket has nothing to read, before the
	// reader waits: the buffers may be released until the next Buffers.
	Idle()
}
