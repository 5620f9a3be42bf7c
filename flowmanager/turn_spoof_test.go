package flowmanager_test

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"errors"

	"github.com/pion/stun/v2"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/memnet"
	"github.com/reflow-go/reflow/natmode"
)

// forged builds a response as a forger would: typ, transaction id, attributes, FINGERPRINT.
func forged(t testing.TB, typ stun.MessageType, id [stun.TransactionIDSize]byte, setters ...stun.Setter) []byte {
	t.Helper()
	all := append([]stun.Setter{stun.NewTransactionIDSetter(id), typ}, setters...)
	all = append(all, stun.Fingerprint)
	m, err := stun.Build(all...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

func xorAttr(t stun.AttrType, ap netip.AddrPort) stun.Setter {
	return setterFunc(func(m *stun.Message) error {
		a := stun.XORMappedAddress{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
		return a.AddToAs(m, t)
	})
}

type setterFunc func(*stun.Message) error

func (f setterFunc) AddTo(m *stun.Message) error { return f(m) }

var (
	poison     = netip.MustParseAddrPort("127.0.0.99:9")
	wrongKey   = stun.NewLongTermIntegrity("alice", "reflow.test", "not-the-password")
	lifetime60 = rawAttr{stun.AttrLifetime, []byte{0, 0, 0, 60}}
)

// Responses forged from the server's address change nothing: with foreign
// transaction IDs (an off-path forger) they are dropped as unexpected; with
// the right transaction ID but no or a wrong MESSAGE-INTEGRITY (a forger
// that sees the requests) they are dropped as unauthenticated. A forged
// Allocate success does not poison the reflexive or relayed address, forged
// Refresh errors (437) do not end the allocation, and forged Refresh
// successes do not keep a dead server's allocation alive.
func TestTURNSpoofedResponses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		srv, tap := startMemTURN(t, n, 0)
		defer srv.Close()
		var onPath atomic.Int64
		tap.mu.Lock()
		tap.hook = func(m *stun.Message, from net.Addr) {
			switch {
			case m.Type.Method == stun.MethodAllocate && m.Contains(stun.AttrMessageIntegrity):
				// Beat the server's answer to the signed Allocate.
				for _, mi := range []stun.Setter{wrongKey, setterFunc(func(*stun.Message) error { return nil })} {
					tap.inject(forged(t, stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse), m.TransactionID,
						xorAttr(stun.AttrXORMappedAddress, poison), xorAttr(stun.AttrXORRelayedAddress, poison), lifetime60, mi), from)
					onPath.Add(1)
				}
			case m.Type.Method == stun.MethodRefresh:
				tap.inject(forged(t, stun.NewType(stun.MethodRefresh, stun.ClassErrorResponse), m.TransactionID,
					&stun.ErrorCodeAttribute{Code: 437, Reason: []byte("Allocation Mismatch")}), from)
				tap.inject(forged(t, stun.NewType(stun.MethodRefresh, stun.ClassSuccessResponse), m.TransactionID, lifetime60, wrongKey), from)
				tap.inject(forged(t, stun.NewType(stun.MethodRefresh, stun.ClassSuccessResponse), m.TransactionID, lifetime60), from)
				onPath.Add(3)
			}
		}
		tap.mu.Unlock()
		m := memnetManager(t, n)
		s, r := memStream(t, m, memNAT(0))
		defer s.Close()
		f := s.RTP()
		check := func(when string) {
			t.Helper()
			if rt := f.RelayTuple(); rt.Addr.Addr() != memServer.Addr() {
				t.Fatalf("%s: relayed %v", when, rt)
			}
			if rf := f.ReflexiveTuple(); rf.Addr.Addr() != netip.MustParseAddr("10.0.0.1") {
				t.Fatalf("%s: reflexive %v poisoned", when, rf)
			}
			select {
			case err := <-r.errs:
				t.Fatalf("%s: %v", when, err)
			default:
			}
		}
		check("after the allocation")
		if d := f.Stats().Dropped[flow.DropAuth]; d != 2 {
			t.Fatalf("%d forged Allocate successes dropped as unauthenticated, want 2", d)
		}

		// Off-path forgeries with foreign transaction IDs, after the allocation.
		client := net.UDPAddrFromAddrPort(f.LocalTuple().Addr)
		var foreign [stun.TransactionIDSize]byte
		copy(foreign[:], "foreign-txid")
		before := f.Stats().Dropped[flow.DropUnexpected]
		key := stun.NewLongTermIntegrity("alice", "reflow.test", "s3cret") // even signed
		for _, b := range [][]byte{
			forged(t, stun.NewType(stun.MethodRefresh, stun.ClassErrorResponse), foreign, &stun.ErrorCodeAttribute{Code: 437}, key),
			forged(t, stun.NewType(stun.MethodRefresh, stun.ClassErrorResponse), foreign, &stun.ErrorCodeAttribute{Code: 400}),
			forged(t, stun.NewType(stun.MethodRefresh, stun.ClassSuccessResponse), foreign, lifetime60, key),
			forged(t, stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse), foreign, xorAttr(stun.AttrXORMappedAddress, poison),
				xorAttr(stun.AttrXORRelayedAddress, poison), key),
			forged(t, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse), foreign, &stun.ErrorCodeAttribute{Code: 437}),
		} {
			tap.inject(b, client)
		}
		synctest.Wait()
		if d := f.Stats().Dropped[flow.DropUnexpected] - before; d != 5 {
			t.Fatalf("%d of 5 off-path forgeries counted as unexpected drops", d)
		}
		// 20,000 unmatched responses from the server's address: every one is
		// counted as a drop.
		before = f.Stats().Dropped[flow.DropUnexpected]
		for batch := range 100 {
			for i := range 200 {
				copy(foreign[:], fmt.Sprintf("flood%03d%04d", batch, i))
				tap.inject(forged(t, stun.NewType(stun.MethodRefresh, stun.ClassSuccessResponse), foreign, lifetime60), client)
			}
			synctest.Wait() // memnet queues 256 datagrams
		}
		if d := f.Stats().Dropped[flow.DropUnexpected] - before; d != 20000 {
			t.Fatalf("%d of 20000 unmatched responses counted", d)
		}
		// Two minutes of refreshes, each raced by three on-path forgeries.
		authBefore := f.Stats().Dropped[flow.DropAuth]
		onPath.Store(0)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		check("after two minutes of forged refresh answers")
		if got := f.Stats().Dropped[flow.DropAuth] - authBefore; got != uint64(onPath.Load()) || onPath.Load() < 3*7 {
			t.Fatalf("%d of %d on-path forgeries dropped as unauthenticated", got, onPath.Load())
		}
		if al, _ := f.Allocation(); al.Lifetime == 60*time.Second {
			t.Fatalf("a forged LIFETIME was taken: %+v", al)
		}

		// The server dies; forged successes keep answering every Refresh.
		tap.deaf.Store(true)
		died := time.Now()
		err := <-r.errs
		if !errors.Is(err, flow.ErrAllocationLost) || time.Since(died) > natmode.DefaultLiveness {
			t.Fatalf("after %v: %v; want ErrAllocationLost within %v despite forged answers", time.Since(died), err, natmode.DefaultLiveness)
		}
	})
}
