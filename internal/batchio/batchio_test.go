//go:build linux

package batchio

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
)

func listen(t testing.TB, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newConn(t testing.TB, c *net.UDPConn) *Conn {
	t.Helper()
	b, ok := New(c)
	if !ok {
		t.Fatal("no batch Conn on a UDP socket")
	}
	return b
}

// bufs is a Buffers that counts its calls.
type bufs struct {
	ms          []Msg
	fills, idle int
	onIdle      func()
}

func newBufs(n int) *bufs {
	b := &bufs{ms: make([]Msg, n)}
	for i := range b.ms {
		b.ms[i].Buf = make([]byte, 2048)
	}
	return b
}

func (b *bufs) Buffers() []Msg { b.fills++; return b.ms }
func (b *bufs) Idle() {
	b.idle++
	if b.onIdle != nil {
		b.onIdle()
	}
}

// Datagrams written in batches arrive in order, with their source, over an
// IPv4 socket, an IPv6 one and a dual-stack one (IPv4 peers v4-mapped);
// more than MaxBatch of them take several calls.
func TestWriteReadBatch(t *testing.T) {
	leak.Check(t)
	for _, c := range []struct{ net, addr, peerNet, peerAddr string }{
		{"udp4", "127.0.0.1:0", "udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0", "udp6", "[::1]:0"},
		{"udp", "[::]:0", "udp4", "127.0.0.1:0"},
	} {
		t.Run(c.net+"/"+c.peerNet, func(t *testing.T) {
			rx, tx := listen(t, c.net, c.addr), listen(t, c.peerNet, c.peerAddr)
			dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
			if c.net == "udp" {
				dst = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), dst.Port())
			}
			src := tx.LocalAddr().(*net.UDPAddr).AddrPort()
			r, w := newConn(t, rx), newConn(t, tx)
			const count = 2*MaxBatch + 3
			out := make([]Msg, count)
			for i := range out {
				out[i] = Msg{Buf: bytes.Repeat([]byte{byte(i)}, 10+i), Addr: dst}
			}
			if n, err := w.WriteBatch(out); n != count || err != nil {
				t.Fatalf("WriteBatch: %d, %v", n, err)
			}
			rx.SetReadDeadline(time.Now().Add(5 * time.Second))
			b := newBufs(MaxBatch)
			got := 0
			for got < count {
				n, err := r.ReadBatch(b)
				if err != nil {
					t.Fatal(err)
				}
				if n < 1 || n > MaxBatch {
					t.Fatalf("read %d", n)
				}
				for _, m := range b.ms[:n] {
					if !bytes.Equal(m.Buf[:m.N], out[got].Buf) {
						t.Fatalf("datagram %d: %x", got, m.Buf[:m.N])
					}
					if m.Addr.Addr().Unmap() != src.Addr() || m.Addr.Port() != src.Port() {
						t.Fatalf("source %v, want %v", m.Addr, src)
					}
					got++
				}
			}
		})
	}
}

// A lone datagram is returned at once (the read does not wait for the batch
// to fill: it would fail at the deadline), and the buffers are offered back
// (Idle) before each wait.
func TestLoneDatagramAndIdle(t *testing.T) {
	leak.Check(t)
	rx, tx := listen(t, "udp4", "127.0.0.1:0"), listen(t, "udp4", "127.0.0.1:0")
	r := newConn(t, rx)
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	b := newBufs(MaxBatch)
	sent := false
	b.onIdle = func() { // the socket is empty: now send one datagram
		if !sent {
			sent = true
			tx.WriteToUDPAddrPort([]byte("lone"), dst)
		}
	}
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := r.ReadBatch(b)
	if err != nil || n != 1 || string(b.ms[0].Buf[:b.ms[0].N]) != "lone" {
		t.Fatalf("read %d, %v", n, err)
	}
	if b.idle != 1 || b.fills != 2 {
		t.Fatalf("Idle %d, Buffers %d; want 1 and 2", b.idle, b.fills)
	}
	// An empty socket: the deadline ends the wait.
	rx.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := r.ReadBatch(newBufs(4)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
}

// Close unblocks a waiting ReadBatch.
func TestCloseUnblocksRead(t *testing.T) {
	leak.Check(t)
	rx := listen(t, "udp4", "127.0.0.1:0")
	r := newConn(t, rx)
	waiting := make(chan struct{})
	b := newBufs(MaxBatch)
	b.onIdle = func() {
		if b.idle == 1 {
			close(waiting)
		}
	}
	done := make(chan error, 1)
	go func() { _, err := r.ReadBatch(b); done <- err }()
	<-waiting
	rx.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("got %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock ReadBatch")
	}
}

// An IPv4 socket refuses an IPv6 destination: the datagrams before it go,
// the call stops there.
func TestWriteBatchWrongFamily(t *testing.T) {
	leak.Check(t)
	rx, tx := listen(t, "udp4", "127.0.0.1:0"), listen(t, "udp4", "127.0.0.1:0")
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	w := newConn(t, tx)
	ms := []Msg{{Buf: []byte("a"), Addr: dst}, {Buf: []byte("b"), Addr: netip.MustParseAddrPort("[::1]:9")}, {Buf: []byte("c"), Addr: dst}}
	n, err := w.WriteBatch(ms)
	if n != 1 || err == nil {
		t.Fatalf("sent %d, %v; want 1 and an error", n, err)
	}
	buf := make([]byte, 10)
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	if k, _, err := rx.ReadFromUDPAddrPort(buf); err != nil || string(buf[:k]) != "a" {
		t.Fatalf("got %q, %v", buf[:k], err)
	}
}

// Neither a batch write nor a batch read allocates.
func TestBatchZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	leak.Check(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one sync.Pool shard
	rx, tx := listen(t, "udp4", "127.0.0.1:0"), listen(t, "udp4", "127.0.0.1:0")
	rx.SetReadBuffer(1 << 20)
	r, w := newConn(t, rx), newConn(t, tx)
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	out := make([]Msg, MaxBatch)
	for i := range out {
		out[i] = Msg{Buf: make([]byte, 172), Addr: dst}
	}
	b := newBufs(MaxBatch)
	rx.SetReadDeadline(time.Now().Add(time.Minute))
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := w.WriteBatch(out); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(out); {
			n, err := r.ReadBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch", allocs)
	}
}
