package flowmanager_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/stun/v2"
	"github.com/pion/turn/v3"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/memnet"
	"github.com/reflow-go/reflow/internal/pionlog"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
)

var memServer = netip.MustParseAddrPort("192.0.2.10:3478")

// tapConn is a TURN server's socket on a memnet network that sees every
// request the server reads, counts packets both ways, can lose a share of
// them at random, and can be made deaf (the server is then dead to clients).
type tapConn struct {
	net.PacketConn
	in, out   atomic.Int64
	refresh   atomic.Int64
	deaf      atomic.Bool
	mu        sync.Mutex
	loss      float64
	rng       *rand.Rand
	hook      func(m *stun.Message, from net.Addr) // called for each request read
	writeHook func(p []byte)                       // called for each datagram the server sends
	drop      func(m *stun.Message) bool           // requests the server never sees
	refreshC  chan struct{}                        // gets a token per Refresh read
}

func (c *tapConn) lose() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loss > 0 && c.rng.Float64() < c.loss
}

func (c *tapConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, a, err
		}
		if c.lose() {
			continue
		}
		if m, err := (func() (*stun.Message, error) {
			m := &stun.Message{Raw: append([]byte(nil), p[:n]...)}
			return m, m.Decode()
		})(); err == nil && m.Type.Class == stun.ClassRequest {
			if m.Type.Method == stun.MethodRefresh && !c.deaf.Load() {
				c.refresh.Add(1)
				select {
				case c.refreshC <- struct{}{}:
				default:
				}
			}
			c.mu.Lock()
			hook := c.hook
			c.mu.Unlock()
			if hook != nil {
				hook(m, a)
			}
			c.mu.Lock()
			drop := c.drop
			c.mu.Unlock()
			if drop != nil && drop(m) {
				continue
			}
		}
		if c.deaf.Load() {
			continue
		}
		c.in.Add(1)
		return n, a, nil
	}
}

func (c *tapConn) WriteTo(p []byte, a net.Addr) (int, error) {
	if c.deaf.Load() || c.lose() {
		return len(p), nil
	}
	c.mu.Lock()
	hook := c.writeHook
	c.mu.Unlock()
	if hook != nil {
		hook(p)
	}
	c.out.Add(1)
	return c.PacketConn.WriteTo(p, a)
}

// inject sends b to the client as the server, bypassing loss and deafness.
func (c *tapConn) inject(b []byte, to net.Addr) { _, _ = c.PacketConn.WriteTo(b, to) }

// startMemTURN starts a pion TURN server on n at memServer.
func startMemTURN(t testing.TB, n *memnet.Network, loss float64) (*turn.Server, *tapConn) {
	t.Helper()
	pc, err := n.Listen("udp4", memServer)
	if err != nil {
		t.Fatal(err)
	}
	tap := &tapConn{PacketConn: pc, loss: loss, rng: rand.New(rand.NewPCG(1, 2)), refreshC: make(chan struct{}, 1)}
	key := turn.GenerateAuthKey("alice", "reflow.test", "s3cret")
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:         "reflow.test",
		LoggerFactory: pionlog.Factory(nil),
		AuthHandler:   func(u, _ string, _ net.Addr) ([]byte, bool) { return key, u == "alice" },
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: tap,
			RelayAddressGenerator: memRelays{n, memServer.Addr()}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv, tap
}

func memNAT(liveness time.Duration) natmode.Config {
	return natmode.Config{Mode: natmode.TURNUDP, Server: memServer, Username: "alice", Password: "s3cret", Liveness: liveness}
}

// memStream makes a TURN stream on n and waits for it to be ready.
func memStream(t *testing.T, m interface {
	NewStream(context.Context, mediastream.Config, mediastream.Handler) (*mediastream.Stream, error)
}, nat natmode.Config) (*mediastream.Stream, *recorder) {
	t.Helper()
	r := newRecorder()
	s, err := m.NewStream(context.Background(), mediastream.Config{LocalAddr: netip.MustParseAddr("10.0.0.1"), NAT: nat}, r)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.ready:
	case err := <-r.errs:
		t.Fatalf("stream failed: %v", err)
	}
	return s, r
}

// The server dies (stops answering) or restarts right after answering a
// Refresh, the worst moment: ErrAllocationLost is reported within the
// liveness bound, at the default and at the minimum setting.
func TestTURNLivenessDeadServer(t *testing.T) {
	for _, c := range []struct {
		name     string
		liveness time.Duration
		restart  bool
	}{
		{"dead/default", 0, false},
		{"dead/minimum", natmode.MinLiveness, false},
		{"restart/default", 0, true},
		{"restart/minimum", natmode.MinLiveness, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := memnet.New()
				srv, tap := startMemTURN(t, n, 0)
				defer func() { srv.Close() }()
				m := memnetManager(t, n)
				s, r := memStream(t, m, memNAT(c.liveness))
				defer s.Close()
				s.RTP().SetActiveDestination(netip.MustParseAddrPort("192.0.2.99:4000"))
				<-tap.refreshC  // the first probe reached the server
				synctest.Wait() // and its answer reached the flow
				died := time.Now()
				if c.restart {
					srv.Close()
					tap.PacketConn.Close()
					srv, _ = startMemTURN(t, n, 0)
				} else {
					tap.deaf.Store(true)
				}
				err := <-r.errs
				took := time.Since(died)
				bound := c.liveness
				if bound == 0 {
					bound = natmode.DefaultLiveness
				}
				if !errors.Is(err, flow.ErrAllocationLost) {
					t.Fatalf("err = %v, want ErrAllocationLost", err)
				}
				if took > bound || took < bound/2 {
					t.Fatalf("loss reported %v after the server died, want within (%v, %v]", took, bound/2, bound)
				}
				t.Logf("%s: ErrAllocationLost %v after the last answered Refresh: %v", c.name, took, err)
			})
		})
	}
}

// lossSim is how long TestTURNNoFalseLossUnderLoss simulates (fake time);
// REFLOW_LOSS_SIM (a Go duration) lengthens it.
func lossSim(t *testing.T) time.Duration {
	if v := os.Getenv("REFLOW_LOSS_SIM"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	return 10 * time.Minute
}

// 5% random loss each way between client and server: no false
// ErrAllocationLost (nor a permission failure) in the simulated time, at the
// default and the minimum liveness bound. Also reports the traffic the
// allocation costs per minute.
func TestTURNNoFalseLossUnderLoss(t *testing.T) {
	sim := lossSim(t)
	for _, liveness := range []time.Duration{0, natmode.MinLiveness} {
		t.Run(natmode.Config{Liveness: liveness}.LivenessOrDefault().String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := memnet.New()
				srv, tap := startMemTURN(t, n, 0.05)
				defer srv.Close()
				m := memnetManager(t, n)
				s, r := memStream(t, m, memNAT(liveness))
				defer s.Close()
				s.RTP().SetActiveDestination(netip.MustParseAddrPort("192.0.2.99:4000"))
				synctest.Wait()
				in0, out0 := tap.in.Load(), tap.out.Load()
				time.Sleep(sim)
				synctest.Wait()
				select {
				case err := <-r.errs:
					t.Fatalf("false failure under 5%% loss: %v", err)
				default:
				}
				al, ok := s.RTP().Allocation()
				if !ok || al.Lost || al.Refreshes == 0 {
					t.Fatalf("allocation %+v", al)
				}
				perMin := float64(tap.in.Load()-in0+tap.out.Load()-out0) / sim.Minutes()
				t.Logf("liveness %v, %v simulated at 5%% loss: no loss; %.1f packets/min between client and server (after loss), %d refreshes",
					natmode.Config{Liveness: liveness}.LivenessOrDefault(), sim, perMin, al.Refreshes)
			})
		})
	}
}

// The packets per minute an idle allocation (one peer) exchanges with its
// server, with liveness probes at the default and minimum bounds and with
// probing off (refresh at half the lifetime plus 15 s keep-alive indications).
func TestTURNLivenessTraffic(t *testing.T) {
	want := map[time.Duration]float64{0: 8 + 0.5*2, natmode.MinLiveness: 48 + 0.5*2, -1: 4 + 0.2*2 + 0.5*2}
	for _, liveness := range []time.Duration{0, natmode.MinLiveness, -1} {
		t.Run(liveness.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := memnet.New()
				srv, tap := startMemTURN(t, n, 0)
				defer srv.Close()
				m := memnetManager(t, n)
				s, _ := memStream(t, m, memNAT(liveness))
				defer s.Close()
				s.RTP().SetActiveDestination(netip.MustParseAddrPort("192.0.2.99:4000"))
				synctest.Wait()
				in0, out0 := tap.in.Load(), tap.out.Load()
				const span = 60 * time.Minute
				time.Sleep(span)
				synctest.Wait()
				perMin := float64(tap.in.Load()-in0+tap.out.Load()-out0) / span.Minutes()
				t.Logf("liveness %v: %.2f packets/min (requests, answers, indications; ChannelBind refresh included)", liveness, perMin)
				if d := perMin - want[liveness]; d > 0.3 || d < -0.3 {
					t.Fatalf("%.2f packets/min, want %.2f", perMin, want[liveness])
				}
			})
		})
	}
}
