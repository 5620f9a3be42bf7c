package flowmanager_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/stun/v2"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/memnet"
	"github.com/reflow-go/reflow/mediastream"
)

// Close racing the allocation: the stream is closed when the server reads
// the signed Allocate, or when it sends the success. In every case the
// server ends with no allocation (the flow deallocates what it may have
// been given) and no goroutine of the flow outlives Close (synctest.Test
// fails on a goroutine left in the bubble).
func TestTURNCloseRacingAllocation(t *testing.T) {
	for _, when := range []string{"request read", "success sent"} {
		t.Run(when, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := memnet.New()
				srv, tap := startMemTURN(t, n, 0)
				defer srv.Close()
				m := memnetManager(t, n)
				var (
					mu     sync.Mutex
					stream *mediastream.Stream
					once   sync.Once
					closed = make(chan struct{})
				)
				closeIt := func() {
					once.Do(func() {
						go func() {
							mu.Lock()
							s := stream
							mu.Unlock()
							s.Close()
							close(closed)
						}()
					})
				}
				tap.mu.Lock()
				if when == "request read" {
					tap.hook = func(m *stun.Message, _ net.Addr) {
						if m.Type.Method == stun.MethodAllocate && m.Contains(stun.AttrMessageIntegrity) {
							closeIt()
						}
					}
				} else {
					tap.writeHook = func(p []byte) {
						if len(p) > 2 && p[0] == 0x01 && p[1] == 0x03 { // Allocate success
							closeIt()
						}
					}
				}
				tap.mu.Unlock()
				mu.Lock()
				s, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: netip.MustParseAddr("10.0.0.1"), NAT: memNAT(0)}, newRecorder())
				stream = s
				mu.Unlock()
				if err != nil {
					t.Fatal(err)
				}
				<-closed
				synctest.Wait()
				if c := srv.AllocationCount(); c != 0 {
					t.Fatalf("%d allocations left on the server after Close", c)
				}
			})
		})
	}
}

// natmode.Config.Timeout bounds the allocation over UDP exactly: a silent
// server gets requests at 0, 0.5, 1.5, 3.5, 7.5 and 15.5 s and the flow
// reports ErrTURNUnreachable at 20 s, saying so.
func TestTURNTimeoutBoundsAllocation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		silent, err := n.Listen("udp4", memServer)
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		var (
			smu   sync.Mutex
			sends []time.Duration
		)
		start := time.Now()
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := silent.ReadFromUDPAddrPort(buf); err != nil {
					return
				}
				smu.Lock()
				sends = append(sends, time.Since(start))
				smu.Unlock()
			}
		}()
		m := memnetManager(t, n)
		nat := memNAT(0)
		nat.Timeout = 20 * time.Second
		r := newRecorder()
		s, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: netip.MustParseAddr("10.0.0.1"), NAT: nat}, r)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		err = <-r.errs
		took := time.Since(start)
		if !errors.Is(err, flow.ErrTURNUnreachable) || took != 20*time.Second || !strings.Contains(err.Error(), "within 20s") {
			t.Fatalf("after %v: %v; want ErrTURNUnreachable at 20s", took, err)
		}
		synctest.Wait()
		smu.Lock()
		defer smu.Unlock()
		want := []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 3500 * time.Millisecond, 7500 * time.Millisecond, 15500 * time.Millisecond}
		if len(sends) != len(want) {
			t.Fatalf("requests at %v, want %v", sends, want)
		}
		for i := range want {
			if sends[i] != want[i] {
				t.Fatalf("requests at %v, want %v", sends, want)
			}
		}
	})
}
