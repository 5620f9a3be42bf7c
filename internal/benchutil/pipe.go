// Package benchutil holds the packet-pipe harness shared by the throughput
// benchmarks, so that every path is measured the same way.
package benchutil

import (
	"encoding/binary"
	"testing"
)

// Window bounds the packets in flight, so that no path loses packets and each
// is measured at the rate it can sustain.
const Window = 128

// RTPPacket returns a 172-byte-style RTP packet of size bytes (G.711 shape when 172).
func RTPPacket(seq uint16, size int) []byte {
	p := make([]byte, size)
	p[0], p[1] = 0x80, 0
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[8:], 0x11223344)
	return p
}

// RunPipe sends b.N 172-byte RTP packets with send (each with a fresh
// sequence number, as SRTP replay protection requires) while a goroutine
// receives them with recv, and reports the rate as pkt/s and allocs.
func RunPipe(b *testing.B, send func([]byte) error, recv func([]byte) error) {
	RunPipeBatch(b, 1, func(p [][]byte) error { return send(p[0]) }, recv)
}
