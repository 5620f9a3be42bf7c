package flowmanager_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/natmode"
	"github.com/reflow-go/reflow/srtp"
)

var sdesSuites = []srtp.Suite{srtp.AESCM128HMACSHA1_80, srtp.AESCM128HMACSHA1_32, srtp.AES256CMHMACSHA1_80,
	srtp.AES256CMHMACSHA1_32, srtp.AEADAES128GCM, srtp.AEADAES256GCM}

func genKeys(t testing.TB, s srtp.Suite) srtp.Keys {
	t.Helper()
	k, err := srtp.GenerateKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keyPair gives a and b each other's keys: a sends with ka, b with kb.
func keyPair(t testing.TB, a, b *mediastream.Stream, ka, kb srtp.Keys) {
	t.Helper()
	for _, err := range []error{a.SetOutboundSRTP(ka), a.SetInboundSRTP(kb), b.SetOutboundSRTP(kb), b.SetInboundSRTP(ka)} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestSDESExchangeEverySuite(t *testing.T) {
	leak.Check(t)
	m := newManager(t, flowmanager.Config{})
	for _, suite := range sdesSuites {
		for _, rtcp := range []bool{true, false} {
			name := suite.String()
			if !rtcp {
				name += "/rtcp-mux"
			}
			t.Run(name, func(t *testing.T) {
				cfg := mediastream.Config{LocalAddr: loop4, RTCP: rtcp}
				a, ta := readyStream(t, m, cfg)
				b, tb := readyStream(t, m, cfg)
				defer a.Close()
				defer b.Close()
				connect(t, a, ta, b, tb)
				keyPair(t, a, b, genKeys(t, suite), genKeys(t, suite))
				exchange(t, a, ta, b, tb, 5)
				if d := a.RTP().Stats().TotalDropped() + b.RTP().Stats().TotalDropped(); d != 0 {
					t.Fatalf("%d drops on a clean path", d)
				}
			})
		}
	}
}

// SDES over every TURN transport and STUN.
func TestSDESInEveryNATMode(t *testing.T) {
	leak.Check(t)
	srv := startTURN(t, testserver.TURNConfig{})
	m := newManager(t, flowmanager.Config{})
	for _, nat := range []natmode.Config{{Mode: natmode.STUNBinding, Server: srv.UDP},
		turnConfig(srv, natmode.TURNUDP), turnConfig(srv, natmode.TURNTCP), turnConfig(srv, natmode.TURNTLS)} {
		t.Run(nat.Mode.String(), func(t *testing.T) {
			cfg := mediastream.Config{LocalAddr: loop4, RTCP: true, NAT: nat}
			a, ta := readyStream(t, m, cfg)
			b, tb := readyStream(t, m, cfg)
			defer a.Close()
			defer b.Close()
			connect(t, a, ta, b, tb)
			keyPair(t, a, b, genKeys(t, srtp.AEADAES128GCM), genKeys(t, srtp.AESCM128HMACSHA1_80))
			exchange(t, a, ta, b, tb, 3)
		})
	}
}

// Wrong inbound key: nothing is delivered, every packet is counted as an
// authentication failure.
func TestSDESMismatchedKeys(t *testing.T) {
	leak.Check(t)
	m := newManager(t, flowmanager.Config{})
	cfg := mediastream.Config{LocalAddr: loop4, RTCP: true}
	a, ta := readyStream(t, m, cfg)
	b, tb := readyStream(t, m, cfg)
	connect(t, a, ta, b, tb)
	a.SetOutboundSRTP(genKeys(t, srtp.AESCM128HMACSHA1_80))
	b.SetInboundSRTP(genKeys(t, srtp.AESCM128HMACSHA1_80)) // not a's key
	for i := 0; i < 10; i++ {
		a.RTP().Write(rtpPacket(uint16(i), 172))
		a.RTCP().Write(rtcpPacket(1))
	}
	waitDrops(t, b.RTP(), flow.DropAuth, 10)
	waitDrops(t, b.RTCP(), flow.DropAuth, 10)
	b.RTP().SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _, err := b.RTP().ReadFrom(make([]byte, 2048)); err == nil {
		t.Fatalf("delivered %d bytes encrypted with the wrong key", n)
	}
	if s := b.RTP().Stats(); s.PacketsIn != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// waitDrops waits (bounded) until f has counted n drops for reason.
func waitDrops(t testing.TB, f *flow.Flow, reason flow.DropReason, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.Stats().Dropped[reason] < n {
		if time.Now().After(deadline) {
			t.Fatalf("%v drops %d, want %d (stats %+v)", reason, f.Stats().Dropped[reason], n, f.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if got := f.Stats().Dropped[reason]; got != n {
		t.Fatalf("%v drops %d, want exactly %d", reason, got, n)
	}
}

// A raw peer replays and tampers with SRTP packets: replays and tampered
// packets are dropped and counted; the genuine ones are delivered once.
func TestSDESReplayAndTamper(t *testing.T) {
	leak.Check(t)
	m := newManager(t, flowmanager.Config{})
	b, _ := readyStream(t, m, mediastream.Config{LocalAddr: loop4})
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peerAddr := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	b.RTP().SetActiveDestination(peerAddr)
	k := genKeys(t, srtp.AEADAES128GCM)
	b.SetInboundSRTP(k)
	enc, err := srtp.NewEncrypter(k)
	if err != nil {
		t.Fatal(err)
	}
	dst := b.RTP().LocalTuple().Addr
	send := func(seq uint16) []byte {
		w, err := enc.ProtectRTP(nil, rtpPacket(seq, 100))
		if err != nil {
			t.Fatal(err)
		}
		peer.WriteToUDPAddrPort(w, dst)
		return w
	}
	w1 := send(1)
	expectSeq(t, b.RTP(), 1)
	peer.WriteToUDPAddrPort(w1, dst) // replay
	tampered := append([]byte(nil), send(2)...)
	expectSeq(t, b.RTP(), 2)
	tampered[len(tampered)-1] ^= 1
	peer.WriteToUDPAddrPort(tampered, dst) // a replayed index, tampered: still a replay
	send(3)
	expectSeq(t, b.RTP(), 3)
	s := b.RTP().Stats()
	if s.Dropped[flow.DropReplay] != 2 || s.Dropped[flow.DropAuth] != 0 || s.PacketsIn != 3 {
		t.Fatalf("stats %+v", s)
	}
	// A packet tampered on its first arrival fails authentication and does not
	// burn its index: the genuine one is still delivered afterwards.
	w4, _ := enc.ProtectRTP(nil, rtpPacket(4, 100))
	bad := append([]byte(nil), w4...)
	bad[20] ^= 0x80
	peer.WriteToUDPAddrPort(bad, dst)
	peer.WriteToUDPAddrPort(w4, dst)
	expectSeq(t, b.RTP(), 4)
	if s := b.RTP().Stats(); s.Dropped[flow.DropAuth] != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func expectSeq(t testing.TB, f *flow.Flow, seq uint16) {
	t.Helper()
	buf := make([]byte, 2048)
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := f.ReadFromAddrPort(buf)
	if err != nil {
		t.Fatalf("waiting for seq %d: %v", seq, err)
	}
	if got := binary.BigEndian.Uint16(buf[2:]); got != seq || !bytes.Equal(buf[:n], rtpPacket(seq, 100)) {
		t.Fatalf("got seq %d (%d bytes), want %d", got, n, seq)
	}
}

// Re-keying mid-stream: both sides switch keys while media flows; after the
// switch, media flows again with the new keys.
func TestSDESRekey(t *testing.T) {
	leak.Check(t)
	m := newManager(t, flowmanager.Config{})
	cfg := mediastream.Config{LocalAddr: loop4, RTCP: true}
	a, ta := readyStream(t, m, cfg)
	b, tb := readyStream(t, m, cfg)
	connect(t, a, ta, b, tb)
	keyPair(t, a, b, genKeys(t, srtp.AESCM128HMACSHA1_80), genKeys(t, srtp.AESCM128HMACSHA1_80))
	exchange(t, a, ta, b, tb, 3)
	keyPair(t, a, b, genKeys(t, srtp.AEADAES256GCM), genKeys(t, srtp.AEADAES256GCM))
	exchange(t, a, ta, b, tb, 3)
	// Only one side re-keys its outbound: the other drops with auth failures.
	a.SetOutboundSRTP(genKeys(t, srtp.AEADAES256GCM))
	before := b.RTP().Stats().Dropped[flow.DropAuth]
	a.RTP().Write(rtpPacket(50, 100))
	waitDrops(t, b.RTP(), flow.DropAuth, before+1)
}
