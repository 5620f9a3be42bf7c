package flow

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/natmode"
)

var loop4 = netip.MustParseAddr("127.0.0.1")

func listen(t testing.TB, ip netip.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newFlow(t testing.TB, ip netip.Addr, cfg Config) *Flow {
	t.Helper()
	f, err := New(context.Background(), listen(t, ip), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// pair returns two no-NAT flows that have each other as active destination.
func pair(t testing.TB, ip netip.Addr) (*Flow, *Flow) {
	t.Helper()
	a, b := newFlow(t, ip, Config{}), newFlow(t, ip, Config{})
	if err := a.SetActiveDestination(b.LocalTuple().Addr); err != nil {
		t.Fatal(err)
	}
	if err := b.SetActiveDestination(a.LocalTuple().Addr); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func rtpPacket(seq uint16, size int) []byte {
	p := make([]byte, size)
	p[0] = 0x80
	p[1] = 0 // PCMU
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[8:], 0x11223344)
	for i := 12; i < size; i++ {
		p[i] = byte(i + int(seq))
	}
	return p
}

func readOne(t testing.TB, f *Flow) ([]byte, netip.AddrPort) {
	t.Helper()
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, from, err := f.ReadFromAddrPort(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return buf[:n], from
}

func TestExchangeBothWays(t *testing.T) {
	leak.Check(t)
	for _, ip := range []netip.Addr{loop4, netip.IPv6Loopback()} {
		t.Run(ip.String(), func(t *testing.T) {
			a, b := pair(t, ip)
			for i := uint16(0); i < 20; i++ {
				p := rtpPacket(i, 172)
				if _, err := a.Write(p); err != nil {
					t.Fatal(err)
				}
				got, from := readOne(t, b)
				if !bytes.Equal(got, p) || from != a.LocalTuple().Addr {
					t.Fatalf("b got %d bytes from %v, want %d from %v", len(got), from, len(p), a.LocalTuple().Addr)
				}
				if _, err := b.WriteTo(p, a.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				if got, _ := readOne(t, a); !bytes.Equal(got, p) {
					t.Fatal("a got a different packet")
				}
			}
			if s := a.Stats(); s.PacketsOut != 20 || s.PacketsIn != 20 || s.BytesIn != 20*172 || s.TotalDropped() != 0 {
				t.Fatalf("a stats %+v", s)
			}
		})
	}
}

func TestReadDeadline(t *testing.T) {
	leak.Check(t)
	a, b := pair(t, loop4)
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, _, err := b.ReadFrom(make([]byte, 100))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v is not a net.Error timeout", err)
	}
	// A later deadline lets the next packet through.
	b.SetReadDeadline(time.Time{})
	a.Write(rtpPacket(1, 50))
	readOne(t, b)
}

func TestThirdSocketDropped(t *testing.T) {
	leak.Check(t)
	a, b := pair(t, loop4)
	stranger := listen(t, loop4)
	defer stranger.Close()
	for i := 0; i < 5; i++ {
		stranger.WriteToUDPAddrPort(rtpPacket(uint16(i), 100), b.LocalTuple().Addr)
	}
	want := rtpPacket(99, 100)
	a.Write(want) // sent after the strangers' packets: when it arrives, they have been sorted
	got, from := readOne(t, b)
	if !bytes.Equal(got, want) || from != a.LocalTuple().Addr {
		t.Fatalf("got %x from %v", got[:4], from)
	}
	if d := b.Stats().Dropped[DropSource]; d != 5 {
		t.Fatalf("DropSource = %d, want 5", d)
	}
}

func TestLatch(t *testing.T) {
	leak.Check(t)
	b := newFlow(t, loop4, Config{Latch: true})
	peer := listen(t, loop4)
	defer peer.Close()
	peerAddr := netip.MustParseAddrPort(peer.LocalAddr().String())
	peer.WriteToUDPAddrPort(rtpPacket(1, 60), b.LocalTuple().Addr)
	if _, from := readOne(t, b); from != peerAddr {
		t.Fatalf("from %v", from)
	}
	if b.ActiveDestination() != peerAddr {
		t.Fatalf("latched onto %v, want %v", b.ActiveDestination(), peerAddr)
	}
	// Only once: a second source is dropped.
	other := listen(t, loop4)
	defer other.Close()
	other.WriteToUDPAddrPort(rtpPacket(2, 60), b.LocalTuple().Addr)
	peer.WriteToUDPAddrPort(rtpPacket(3, 60), b.LocalTuple().Addr)
	if got, _ := readOne(t, b); binary.BigEndian.Uint16(got[2:]) != 3 {
		t.Fatal("packet from the second source was delivered")
	}
	if b.Stats().Dropped[DropSource] != 1 {
		t.Fatalf("stats %+v", b.Stats())
	}
	// Write goes to the latched address.
	b.Write(rtpPacket(4, 60))
	buf := make([]byte, 100)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := peer.ReadFrom(buf); err != nil || n != 60 {
		t.Fatalf("peer read %d %v", n, err)
	}
}

func TestReadFromSource(t *testing.T) {
	leak.Check(t)
	// A latching flow whose sources take over at once (no silence needed, one
	// packet), so that two sources are delivered.
	b := newFlow(t, loop4, Config{Latch: true, LatchSilence: time.Nanosecond, LatchPackets: 1})
	p1, p2 := listen(t, loop4), listen(t, loop4)
	defer p1.Close()
	defer p2.Close()
	a1 := netip.MustParseAddrPort(p1.LocalAddr().String())
	to := b.LocalTuple().Addr
	p1.WriteToUDPAddrPort(rtpPacket(1, 60), to) // latched
	readOne(t, b)
	// p2 takes over, then p1 again: both sources are delivered, in the
	// order they were sent.
	p2.WriteToUDPAddrPort(rtpPacket(2, 60), to)
	p2.WriteToUDPAddrPort(rtpPacket(3, 60), to)
	p1.WriteToUDPAddrPort(rtpPacket(4, 60), to)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	if _, err := b.ReadFromSource(buf, a1); err != nil {
		t.Fatalf("ReadFromSource: %v", err)
	}
	if seq := binary.BigEndian.Uint16(buf[2:]); seq != 4 {
		t.Fatalf("got seq %d from p1, want 4", seq)
	}
	if d := b.Stats().Dropped[DropFiltered]; d != 2 {
		t.Fatalf("DropFiltered = %d, want 2 (p2's packets)", d)
	}
	// Filtered to a source that sends nothing: the deadline ends the read.
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := b.ReadFromSource(buf, a1); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
}

// isFlowError fails t unless err is an *Error matching want.
func isFlowError(t *testing.T, err, want error) {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) || !errors.Is(err, want) {
		t.Fatalf("error %v (%T), want an *Error matching %v", err, err, want)
	}
}

// Every write error is an *Error matching a sentinel, in every state.
func TestWriteErrorsTyped(t *testing.T) {
	leak.Check(t)
	a := newFlow(t, loop4, Config{Secure: true})
	_, err := a.Write([]byte{0x80, 0})
	isFlowError(t, err, ErrNoDestination)
	_, err = a.WriteToAddrPort(rtpPacket(1, 60), netip.MustParseAddrPort("127.0.0.1:9"))
	isFlowError(t, err, ErrNotSecure)
	_, err = a.WriteToAddrPort(make([]byte, MaxPacketSize+1), netip.MustParseAddrPort("127.0.0.1:9"))
	isFlowError(t, err, ErrPacketTooLarge)
	_, err = a.WriteTo([]byte{1}, &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)})
	isFlowError(t, err, ErrInvalidAddress)
	a.Close()
	_, err = a.Write([]byte{1})
	isFlowError(t, err, net.ErrClosed)
	_, err = a.WriteToAddrPort([]byte{1}, netip.MustParseAddrPort("127.0.0.1:9"))
	isFlowError(t, err, ErrClosed)
}

func TestWriteErrors(t *testing.T) {
	leak.Check(t)
	a := newFlow(t, loop4, Config{})
	if _, err := a.Write([]byte{0x80, 0}); !errors.Is(err, ErrNoDestination) {
		t.Fatalf("Write without destination: %v", err)
	}
	if _, err := a.WriteToAddrPort(make([]byte, MaxPacketSize+1), netip.MustParseAddrPort("127.0.0.1:9")); !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("oversize write: %v", err)
	}
	if err := a.SetActiveDestination(netip.AddrPort{}); !errors.Is(err, ErrInvalidAddress) {
		t.Fatalf("invalid destination: %v", err)
	}
	a.Close()
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.WriteToAddrPort([]byte{1}, netip.MustParseAddrPort("127.0.0.1:9")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if _, _, err := a.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestCloseUnblocksReader(t *testing.T) {
	leak.Check(t)
	a := newFlow(t, loop4, Config{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := a.ReadFrom(make([]byte, 10))
		errc <- err
	}()
	// Close once the reader is blocked in ReadFrom (bounded wait).
	for deadline := time.Now().Add(5 * time.Second); a.appWant.Load() == 0 && !a.directing.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("reader never blocked in ReadFrom")
		}
		runtime.Gosched()
	}
	a.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("err %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrom did not return after Close")
	}
}

func TestQueueOverflowCounted(t *testing.T) {
	leak.Check(t)
	a := newFlow(t, loop4, Config{})
	b := newFlow(t, loop4, Config{QueueLen: 4})
	a.SetActiveDestination(b.LocalTuple().Addr)
	b.SetActiveDestination(a.LocalTuple().Addr)
	for i := 0; i < 10; i++ {
		a.Write(rtpPacket(uint16(i), 100))
	}
	// The queue holds 4; wait until all 10 have been sorted (bounded).
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := b.Stats()
		if s.PacketsIn+s.Dropped[DropQueueFull] == 10 {
			if s.PacketsIn != 4 || s.Dropped[DropQueueFull] != 6 {
				t.Fatalf("stats %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %+v after 5 s", s)
		}
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < 4; i++ {
		if got, _ := readOne(t, b); binary.BigEndian.Uint16(got[2:]) != uint16(i) {
			t.Fatalf("packet %d out of order", i)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	_, err := New(context.Background(), listen(t, loop4), Config{NAT: natmode.Config{Mode: natmode.STUNBinding}})
	if !errors.Is(err, natmode.ErrInvalidConfig) {
		t.Fatalf("err %v", err)
	}
}
