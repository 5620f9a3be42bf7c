package flow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/batchio"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/srtp"
)

// takeSocket takes the socket token from f's reader goroutine: it wakes the
// goroutine (blocked reading) with wake, a datagram from c, and waits for the
// token. The caller then reads the socket itself and gives the token back
// with f.tok <- struct{}{}.
func takeSocket(t *testing.T, f *Flow, c *net.UDPConn, wake []byte) {
	t.Helper()
	f.appWant.Add(1)
	defer f.appWant.Add(-1)
	if _, err := c.WriteToUDPAddrPort(wake, f.LocalTuple().Addr); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.tok:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader goroutine did not yield the socket")
	}
}

// readSingle reads and sorts one datagram as the single-read path does.
func readSingle(t *testing.T, f *Flow) {
	t.Helper()
	pkt := getPacket()
	_ = f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := f.conn.ReadFromUDPAddrPort(pkt.buf[:])
	if err != nil {
		t.Fatal(err)
	}
	pkt.n, pkt.from = n, unmap(from)
	if !f.receive(pkt) {
		putPacket(pkt)
	}
}

// drain returns the media queued on f, reading until a short deadline.
func drain(t *testing.T, f *Flow, want int) [][]byte {
	t.Helper()
	var got [][]byte
	buf := make([]byte, 2048)
	for range want {
		f.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := f.ReadFromAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d packets: %v", len(got), err)
		}
		got = append(got, append([]byte(nil), buf[:n]...))
	}
	return got
}

// A batch holding RTP, SRTCP, STUN, DTLS, garbage, a short packet, SRTP that
// fails authentication, a replay and a stranger's packet is sorted exactly as
// the same datagrams read one at a time: the same media delivered in the same
// order, the same drops counted.
func TestBatchMixedContentAsIfSingle(t *testing.T) {
	leak.Check(t)
	if !batchable(t) {
		if runtime.GOOS == "linux" {
			t.Fatal("no batched I/O on Linux, where recvmmsg/sendmmsg must work")
		}
		t.Skip("no batched I/O on this platform (recvmmsg/sendmmsg are Linux only)")
	}
	k := sdesKeys(t)
	enc, err := srtp.NewEncrypter(k)
	if err != nil {
		t.Fatal(err)
	}
	protect := func(seq uint16) []byte {
		out, err := enc.ProtectRTP(nil, rtpPacket(seq, 100))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	rtcp := make([]byte, 28) // a sender report
	rtcp[0], rtcp[1] = 0x80, 200
	binary.BigEndian.PutUint16(rtcp[2:], 6)
	binary.BigEndian.PutUint32(rtcp[4:], 0x11223344)
	srtcp, err := enc.ProtectRTCP(nil, rtcp)
	if err != nil {
		t.Fatal(err)
	}
	stunReq := make([]byte, 20)
	binary.BigEndian.PutUint16(stunReq, 0x0001)
	binary.BigEndian.PutUint32(stunReq[4:], 0x2112A442)
	s1, s3, s5 := protect(1), protect(3), protect(5)
	badAuth := protect(2)
	badAuth[len(badAuth)-1] ^= 1
	burst := [][]byte{
		s1, stunReq, record(23, 1, "app data"), {0xff, 1, 2, 3, 4, 5, 6, 7, 8},
		badAuth, s3, append([]byte(nil), s1...), srtcp, {0x80, 0, 0}, s5,
	}
	stranger := protect(4)
	wake := []byte{0xff}

	run := func(batched bool) (Stats, [][]byte, int) {
		src, other := listen(t, loop4), listen(t, loop4)
		defer src.Close()
		defer other.Close()
		f := newFlow(t, loop4, Config{})
		if err := f.SetActiveDestination(src.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatal(err)
		}
		if err := f.SetInboundSRTP(k, 0); err != nil {
			t.Fatal(err)
		}
		takeSocket(t, f, src, wake)
		if !batched {
			f.bio = nil
		}
		bc, _ := batchio.New(src)
		ms := make([]batchio.Msg, len(burst))
		for i, b := range burst {
			ms[i] = batchio.Msg{Buf: b, Addr: f.LocalTuple().Addr}
		}
		if n, err := bc.WriteBatch(ms[:5]); n != 5 || err != nil {
			t.Fatal(n, err)
		}
		if _, err := other.WriteToUDPAddrPort(stranger, f.LocalTuple().Addr); err != nil {
			t.Fatal(err)
		}
		if n, err := bc.WriteBatch(ms[5:]); n != len(ms)-5 || err != nil {
			t.Fatal(n, err)
		}
		total, most := len(burst)+2, 0 // the wake-up datagram may still be queued
		f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for read := 0; read < total-1; {
			if batched {
				n, err := f.readBatch()
				if err != nil {
					t.Fatal(err)
				}
				read, most = read+n, max(most, n)
			} else {
				readSingle(t, f)
				read++
			}
			s := f.Stats()
			if s.PacketsIn+s.TotalDropped() == uint64(total) {
				break
			}
		}
		f.conn.SetReadDeadline(time.Time{})
		f.tok <- struct{}{}
		got := drain(t, f, 4)
		return f.Stats(), got, most
	}
	singleStats, single, _ := run(false)
	batchStats, batch, most := run(true)
	if most < 2 {
		t.Errorf("no read returned more than one datagram (most %d)", most)
	}
	if singleStats != batchStats {
		t.Errorf("stats differ:\nsingle %+v\nbatch  %+v", singleStats, batchStats)
	}
	want := [][]byte{rtpPacket(1, 100), rtpPacket(3, 100), rtcp, rtpPacket(5, 100)}
	for i := range want {
		if !bytes.Equal(single[i], want[i]) || !bytes.Equal(batch[i], want[i]) {
			t.Errorf("packet %d: single %x batch %x, want %x", i, single[i], batch[i], want[i])
		}
	}
	d := batchStats.Dropped
	if d[DropUnexpected] != 2 || d[DropUnknown] != 2 || d[DropAuth] != 1 || d[DropReplay] != 1 ||
		d[DropSource] != 1 || d[DropMalformed] != 1 || batchStats.PacketsIn != 4 {
		t.Errorf("unexpected counts: %+v", batchStats)
	}
}

// batchable reports whether flows read and write in batches here.
func batchable(t *testing.T) bool {
	c := listen(t, loop4)
	defer c.Close()
	_, ok := batchio.New(c)
	return ok && batchOS
}

// A lone packet is delivered at once, whether the flow's goroutine or the
// application's reads the socket: a read never waits for a batch to fill.
// Each packet is sent only once the previous one was read, and every read
// has a deadline of 5 s.
func TestBatchLonePacket(t *testing.T) {
	leak.Check(t)
	a, b := pair(t, loop4)
	if b.bio == nil && batchOS {
		t.Fatal("no batched reader on a UDP socket")
	}
	// The application is not reading: the flow's goroutine reads.
	for i := range 3 {
		if _, err := a.Write(rtpPacket(uint16(i), 60)); err != nil {
			t.Fatal(err)
		}
		waitStat(t, b, "lone packet queued", func(s Stats) bool { return s.PacketsIn == uint64(i+1) })
		if p, _ := readOne(t, b); !bytes.Equal(p, rtpPacket(uint16(i), 60)) {
			t.Fatalf("got %x", p)
		}
	}
	// The application reads in a loop and so takes the socket over.
	direct0 := b.stats.direct.Load()
	got := loopReader(b, 50)
	for i := range 50 {
		if _, err := a.Write(rtpPacket(uint16(100+i), 60)); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	if b.stats.direct.Load() == direct0 {
		t.Error("no packet took the direct path")
	}
}

// loopReader reads count packets from f on a goroutine, each with a deadline
// of 5 s, and reports each read's error.
func loopReader(f *Flow, count int) chan error {
	got := make(chan error, count)
	go func() {
		buf := make([]byte, 2048)
		for range count {
			f.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err := f.ReadFromAddrPort(buf)
			got <- err
			if err != nil {
				return
			}
		}
	}()
	return got
}

// waitDirecting waits (bounded) until an application goroutine reads f's socket.
func waitDirecting(t *testing.T, f *Flow) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f.directing.Load() {
		if time.Now().After(deadline) {
			t.Fatal("no application reader on the socket")
		}
		time.Sleep(time.Millisecond)
	}
}

// Close unblocks an application goroutine waiting in a batched read of the
// socket.
func TestBatchCloseUnblocksReader(t *testing.T) {
	leak.Check(t)
	a, b := pair(t, loop4)
	got := loopReader(b, 11)
	for i := range 10 { // until the reader holds the socket
		a.Write(rtpPacket(uint16(i), 60))
		if err := <-got; err != nil {
			t.Fatal(err)
		}
	}
	waitDirecting(t, b)
	b.Close()
	select {
	case err := <-got:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("got %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock the reader")
	}
}

// WriteBatch sends every packet, SRTP-protected, in order, over IPv4 and
// IPv6, more than one system call's worth; it stops at the first packet it
// cannot send and refuses as Write does.
func TestWriteBatch(t *testing.T) {
	leak.Check(t)
	for _, ip := range []netip.Addr{loop4, netip.IPv6Loopback()} {
		t.Run(ip.String(), func(t *testing.T) {
			a, b := pair(t, ip)
			k := sdesKeys(t)
			a.SetOutboundSRTP(k)
			b.SetInboundSRTP(k, 0)
			const count = 2*batchio.MaxBatch + 5
			var pkts [][]byte
			for i := range count {
				pkts = append(pkts, rtpPacket(uint16(i), 50+i))
			}
			if n, err := a.WriteBatch(pkts); n != count || err != nil {
				t.Fatalf("WriteBatch: %d, %v", n, err)
			}
			for i, p := range drain(t, b, count) {
				if !bytes.Equal(p, pkts[i]) {
					t.Fatalf("packet %d: got %x want %x", i, p, pkts[i])
				}
			}
			if s := a.Stats(); s.PacketsOut != count {
				t.Errorf("PacketsOut %d", s.PacketsOut)
			}
			// A packet too large stops the batch; the ones before it are sent.
			bad := [][]byte{rtpPacket(1000, 60), rtpPacket(1001, 60), make([]byte, MaxPacketSize+1), rtpPacket(1002, 60)}
			n, err := a.WriteBatch(bad)
			isFlowError(t, err, ErrPacketTooLarge)
			if n != 2 {
				t.Fatalf("sent %d before the large packet, want 2", n)
			}
			for i, p := range drain(t, b, 2) {
				if !bytes.Equal(p, bad[i]) {
					t.Fatalf("packet %d: got %x", i, p)
				}
			}
		})
	}
	t.Run("refusals", func(t *testing.T) {
		f := newFlow(t, loop4, Config{Secure: true})
		_, err := f.WriteBatch([][]byte{rtpPacket(1, 60)})
		isFlowError(t, err, ErrNoDestination)
		f.SetActiveDestination(netip.MustParseAddrPort("127.0.0.1:9"))
		n, err := f.WriteBatch([][]byte{rtpPacket(1, 60)})
		isFlowError(t, err, ErrNotSecure)
		if n != 0 {
			t.Fatal(n)
		}
		f.Close()
		_, err = f.WriteBatch([][]byte{rtpPacket(1, 60)})
		isFlowError(t, err, ErrClosed)
	})
}

// Bursts of random datagrams, each starting with a byte of every class
// (STUN, DTLS, TURN channel, RTP/RTCP, other), never crash the batched
// reader; each is delivered or counted as dropped, and valid media sent
// after them still arrives.
func TestBatchMalformedBursts(t *testing.T) {
	leak.Check(t)
	src := listen(t, loop4)
	defer src.Close()
	f := newFlow(t, loop4, Config{Latch: true})
	k := sdesKeys(t)
	f.SetInboundSRTP(k, 0)
	bc, ok := batchio.New(src)
	if !ok {
		if runtime.GOOS == "linux" {
			t.Fatal("no batch sender on Linux, where sendmmsg must work")
		}
		t.Skip("no batch sender on this platform (sendmmsg is Linux only)")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	firsts := []byte{0, 1, 3, 20, 22, 23, 63, 64, 79, 0x80, 0x81, 0xc8, 0xff, 100}
	sent := 0
	for range 100 {
		ms := make([]batchio.Msg, batchio.MaxBatch)
		for i := range ms {
			b := make([]byte, rng.IntN(200))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			if len(b) > 0 {
				b[0] = firsts[rng.IntN(len(firsts))]
			}
			if len(b) > 8 && b[0] < 4 { // look like STUN more often
				binary.BigEndian.PutUint32(b[4:], 0x2112A442)
			}
			ms[i] = batchio.Msg{Buf: b, Addr: f.LocalTuple().Addr}
		}
		n, err := bc.WriteBatch(ms)
		if err != nil {
			t.Fatal(err)
		}
		sent += n
		waitStat(t, f, "every datagram sorted", func(s Stats) bool {
			return s.PacketsIn+s.TotalDropped() == uint64(sent)
		})
	}
	enc, _ := srtp.NewEncrypter(k)
	good, _ := enc.ProtectRTP(nil, rtpPacket(7, 80))
	if _, err := src.WriteToUDPAddrPort(good, f.LocalTuple().Addr); err != nil {
		t.Fatal(err)
	}
	if p, _ := readOne(t, f); !bytes.Equal(p, rtpPacket(7, 80)) {
		t.Fatalf("got %x", p)
	}
}

// TestZeroAllocsPerPacketBatch is TestZeroAllocsPerPacket for the batch
// path: WriteBatch of batchio.MaxBatch packets (sendmmsg), read by an
// application reader in a loop (recvmmsg on the direct path, the rest of a
// batch through the queue), in clear and with SDES AEAD_AES_128_GCM. CI runs
// it without -race.
func TestZeroAllocsPerPacketBatch(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	leak.Check(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // see TestZeroAllocsPerPacket
	const batches = 500
	for _, suite := range []srtp.Suite{0, srtp.AEADAES128GCM} {
		a, b := pair(t, loop4)
		if suite != 0 {
			k, _ := srtp.GenerateKeys(suite)
			a.SetOutboundSRTP(k)
			b.SetInboundSRTP(k, 0)
		}
		pkts := make([][]byte, batchio.MaxBatch)
		for i := range pkts {
			pkts[i] = rtpPacket(0, 172)
		}
		buf := make([]byte, 2048)
		var seq uint16
		got := make(chan error)
		next := make(chan bool)
		go func() {
			for <-next {
				var err error
				for range len(pkts) {
					if _, _, err = b.ReadFromAddrPort(buf); err != nil {
						break
					}
				}
				got <- err
			}
		}()
		roundTrip := func() {
			for _, p := range pkts {
				seq++
				binary.BigEndian.PutUint16(p[2:], seq)
			}
			next <- true
			if n, err := a.WriteBatch(pkts); err != nil || n != len(pkts) {
				t.Fatal(n, err)
			}
			if err := <-got; err != nil {
				t.Fatal(err)
			}
		}
		runtime.GC()
		for range 50 {
			roundTrip()
		}
		last, _, clean := cleanWindowMallocs(batches, roundTrip)
		next <- false
		if !clean {
			t.Fatalf("suite %v: a garbage collection in every window", suite)
		}
		// As in TestZeroAllocsPerPacket the count is the whole process's
		// mallocs, the runtime's background work included; an allocation
		// per batch would show as 500 or more, one per packet as 8,000.
		if last > 8 {
			t.Errorf("suite %v: %d allocations in %d packets", suite, last, batches*len(pkts))
		}
		if s := b.Stats(); s.TotalDropped() != 0 {
			t.Errorf("suite %v: drops %+v", suite, s.Dropped)
		}
	}
}
