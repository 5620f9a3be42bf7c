package testserver

import (
	"crypto/tls"
	"crypto/x509"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/pionlog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v2"
	"github.com/pion/transport/v3/vnet"

	"github.com/reflow-go/reflow/internal/stunx"
)

// bind sends a Binding request from pc to server and returns the mapped
// address of the answer.
func bind(t *testing.T, pc net.PacketConn, server net.Addr) netip.AddrPort {
	t.Helper()
	req, err := stunx.NewBindingRequest()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.WriteTo(req.Raw, server); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if from.String() != server.String() {
		t.Fatalf("answer from %v, want %v", from, server)
	}
	res, err := stunx.Decode(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	if res.Type != stun.BindingSuccess || res.TransactionID != req.TransactionID {
		t.Fatalf("answer %v", res)
	}
	if err := stun.Fingerprint.Check(res); err != nil {
		t.Fatal(err)
	}
	mapped, err := stunx.MappedAddress(res)
	if err != nil {
		t.Fatal(err)
	}
	return mapped
}

func TestSTUNAnswersIPv4AndIPv6(t *testing.T) {
	leak.Check(t)
	for _, tc := range []struct{ network, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			srv, err := StartSTUN(tc.network, netip.MustParseAddrPort(tc.addr))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := srv.Close(); err != nil {
					t.Error(err)
				}
			}()
			if srv.Addr.Addr() != netip.MustParseAddrPort(tc.addr).Addr() || srv.Addr.Port() == 0 {
				t.Fatalf("Addr = %v", srv.Addr)
			}
			pc, err := net.ListenPacket(tc.network, tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = pc.Close() }()
			local, _ := addrPort(pc.LocalAddr())
			server := net.UDPAddrFromAddrPort(srv.Addr)

			// Garbage and the GHSA-34rh-wp3j-6cxc packet are ignored.
			for _, junk := range [][]byte{{0x80, 0, 0, 0}, []byte("\x00\x17\x00\x04\x21\x12\xa4\x42abcdefghijkl\x00\x12\x00\x00")} {
				if _, err := pc.WriteTo(junk, server); err != nil {
					t.Fatal(err)
				}
			}
			if got := bind(t, pc, server); got != local {
				t.Fatalf("mapped %v, want %v", got, local)
			}
			if got := bind(t, pc, server); got != local {
				t.Fatalf("mapped %v, want %v", got, local)
			}
			ind, err := stunx.NewBindingIndication()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pc.WriteTo(ind.Raw, server); err != nil {
				t.Fatal(err)
			}
			ctx := testContext(t)
			if err := srv.WaitIndications(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if err := srv.WaitRequests(ctx, 2); err != nil {
				t.Fatal(err)
			}
			if srv.Requests() != 2 || srv.Indications() != 1 {
				t.Fatalf("requests %d indications %d", srv.Requests(), srv.Indications())
			}
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			if err := srv.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

func TestSTUNBadNetwork(t *testing.T) {
	leak.Check(t)
	if _, err := StartSTUN("tcp", netip.MustParseAddrPort("127.0.0.1:0")); err == nil {
		t.Fatal("tcp accepted")
	}
}

func TestSTUNOnVNet(t *testing.T) {
	leak.Check(t)
	lf := pionlog.Factory(nil)
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "0.0.0.0/0", LoggerFactory: lf})
	if err != nil {
		t.Fatal(err)
	}
	serverNet, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{"1.2.3.4"}})
	if err != nil {
		t.Fatal(err)
	}
	clientNet, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{"5.6.7.8"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*vnet.Net{serverNet, clientNet} {
		if err := wan.AddNet(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := wan.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = wan.Stop() }()

	pc, err := serverNet.ListenPacket("udp4", "1.2.3.4:3478")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := StartSTUNOn(pc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Close() }()
	if srv.Addr != netip.MustParseAddrPort("1.2.3.4:3478") {
		t.Fatalf("Addr = %v", srv.Addr)
	}
	cpc, err := clientNet.ListenPacket("udp4", "5.6.7.8:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cpc.Close() }()
	local, _ := addrPort(cpc.LocalAddr())
	if got := bind(t, cpc, net.UDPAddrFromAddrPort(srv.Addr)); got != local {
		t.Fatalf("mapped %v, want %v", got, local)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSilentCountsAndNeverAnswers(t *testing.T) {
	leak.Check(t)
	s, err := StartSilent(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pc.Close() }()
	req, err := stunx.NewBindingRequest()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := pc.WriteTo(req.Raw, net.UDPAddrFromAddrPort(s.Addr)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WaitPackets(testContext(t), 3); err != nil {
		t.Fatal(err)
	}
	if s.Packets() != 3 {
		t.Fatalf("Packets = %d", s.Packets())
	}
	// Close waits for the reader, so an answer, had there been one, would
	// be queued on pc by now: a read with an expired deadline finds none.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, _, err := pc.ReadFrom(make([]byte, 100)); err == nil {
		t.Fatalf("silent socket answered %d bytes", n)
	}
}

func TestSelfSigned(t *testing.T) {
	leak.Check(t)
	ip := netip.MustParseAddr("127.0.0.1")
	cert, pool, err := SelfSigned([]string{"a.reflow.test", "b.reflow.test"}, []netip.Addr{ip, netip.MustParseAddr("::1")})
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	for _, name := range []string{"a.reflow.test", "b.reflow.test", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509VerifyOptions(pool, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509VerifyOptions(pool, "c.reflow.test")); err == nil {
		t.Error("verified for another name")
	}
	if _, _, err := SelfSigned(nil, nil); err == nil {
		t.Error("no names accepted")
	}
	// Usable as a TLS server certificate over a real handshake.
	l, err := tls.Listen("tcp4", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			err = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
		accepted <- err
	}()
	c, err := tls.Dial("tcp4", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "b.reflow.test", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
}

func x509VerifyOptions(pool *x509.CertPool, name string) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: pool, DNSName: name}
}
