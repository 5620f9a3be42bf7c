package mediastream_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/srtp"
)

var loop4 = netip.MustParseAddr("127.0.0.1")

func rtpPacket(seq uint16, marker byte) []byte {
	p := make([]byte, 60)
	p[0] = 0x80
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[8:], 0x01020304)
	for i := 12; i < len(p); i++ {
		p[i] = marker
	}
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A handler that closes its stream while the application closes the same
// stream: neither Close waits for the other (it deadlocked when the outer Close
// waited for the dispatcher that was inside the inner Close).
func TestCloseFromHandlerDuringClose(t *testing.T) {
	leak.Check(t)
	for range 20 {
		entered := make(chan struct{})
		var s *mediastream.Stream
		var innerErr error
		innerDone := make(chan struct{})
		s, err := mediastream.New(ctxT(t), mediastream.Config{LocalAddr: loop4}, mediastream.HandlerFuncs{
			Ready: func(st *mediastream.Stream, _, _ flow.Tuple) {
				close(entered)
				<-st.RTP().Done() // the application's Close has begun
				innerErr = st.Close()
				close(innerDone)
			},
		}, mediastream.Env{})
		if err != nil {
			t.Fatal(err)
		}
		<-entered
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("Close deadlocked with a handler closing the same stream")
		}
		select {
		case <-s.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("Done not closed after the handler returned")
		}
		<-innerDone
		if innerErr != nil {
			t.Fatalf("inner Close: %v", innerErr)
		}
	}
}

// A blocked handler stalls neither media nor Close; Done waits for it.
func TestBlockedHandler(t *testing.T) {
	leak.Check(t)
	release := make(chan struct{})
	entered := make(chan struct{})
	a, err := mediastream.New(ctxT(t), mediastream.Config{LocalAddr: loop4}, mediastream.HandlerFuncs{
		Ready: func(*mediastream.Stream, flow.Tuple, flow.Tuple) { close(entered); <-release },
	}, mediastream.Env{})
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	b, err := mediastream.New(ctxT(t), mediastream.Config{LocalAddr: loop4}, mediastream.HandlerFuncs{}, mediastream.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.RTP().SetActiveDestination(a.RTP().LocalTuple().Addr)
	a.RTP().SetActiveDestination(b.RTP().LocalTuple().Addr)
	a.RTP().SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range 10 {
		b.RTP().Write(rtpPacket(uint16(i), 1))
		if _, _, err := a.RTP().ReadFromAddrPort(make([]byte, 200)); err != nil {
			t.Fatalf("media stalled behind a blocked handler: %v", err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
		t.Fatal("Done closed while a handler call runs")
	default:
	}
	close(release)
	<-a.Done()
}

// secureCase is one order in which an application sets up an SDES stream.
type secureCase struct {
	name  string
	steps []string // "dst", "in", "out"
}

// A stream configured for SDES never delivers or sends clear media, whatever
// the order of destination and keys: the peer sends clear RTP, SRTP under a
// foreign key and SRTP under the right key before, during and after keying;
// only the last kind is ever delivered, and nothing the stream sends is clear.
func TestSecureByDefaultSDES(t *testing.T) {
	leak.Check(t)
	for _, tc := range []secureCase{
		{"dst-in-out", []string{"dst", "in", "out"}},
		{"in-dst-out", []string{"in", "dst", "out"}},
		{"out-in-dst", []string{"out", "in", "dst"}},
		{"dst-out-in", []string{"dst", "out", "in"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			ours, _ := srtp.GenerateKeys(srtp.AESCM128HMACSHA1_80)
			theirs, _ := srtp.GenerateKeys(srtp.AESCM128HMACSHA1_80)
			foreign, _ := srtp.GenerateKeys(srtp.AESCM128HMACSHA1_80)
			s, err := mediastream.New(ctxT(t), mediastream.Config{LocalAddr: loop4, Security: mediastream.SDES, Latch: true},
				mediastream.HandlerFuncs{}, mediastream.Env{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			peerAP := peer.LocalAddr().(*net.UDPAddr).AddrPort()
			to := s.RTP().LocalTuple().Addr
			good, _ := srtp.NewEncrypter(theirs)
			bad, _ := srtp.NewEncrypter(foreign)
			seq := uint16(0)
			sendAll := func() {
				for range 3 {
					seq++
					peer.WriteToUDPAddrPort(rtpPacket(seq, 0xC1), to) // clear
					seq++
					p, _ := bad.ProtectRTP(nil, rtpPacket(seq, 0xF0))
					peer.WriteToUDPAddrPort(p, to)
					seq++
					p, _ = good.ProtectRTP(nil, rtpPacket(seq, 0x60))
					peer.WriteToUDPAddrPort(p, to)
				}
			}
			var writeErrs, wrote int
			wseq := uint16(1000)
			write := func() {
				for range 3 {
					wseq++
					if _, err := s.RTP().Write(rtpPacket(wseq, 0xC1)); err != nil {
						if !errors.Is(err, flow.ErrNotSecure) && !errors.Is(err, flow.ErrNoDestination) {
							t.Fatalf("write: %v", err)
						}
						writeErrs++
					} else {
						wrote++
					}
				}
			}
			sendAll()
			write()
			for _, step := range tc.steps {
				switch step {
				case "dst":
					s.RTP().SetActiveDestination(peerAP)
				case "in":
					if err := s.SetInboundSRTP(theirs); err != nil {
						t.Fatal(err)
					}
				case "out":
					if err := s.SetOutboundSRTP(ours); err != nil {
						t.Fatal(err)
					}
				}
				sendAll()
				write()
			}
			if wrote == 0 {
				t.Fatal("no write succeeded once keyed")
			}
			// What arrived at the peer: all of it SRTP under our key.
			dec, _ := srtp.NewDecrypter(ours, 0)
			buf := make([]byte, 1500)
			for range wrote {
				peer.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := peer.Read(buf)
				if err != nil {
					t.Fatalf("peer read: %v", err)
				}
				if bytes.Contains(buf[:n], bytes.Repeat([]byte{0xC1}, 8)) {
					t.Fatal("clear RTP left a secured stream")
				}
				if _, err := dec.UnprotectRTP(nil, buf[:n]); err != nil {
					t.Fatalf("stream sent something that is not SRTP under its key: %v", err)
				}
			}
			// A final genuine packet marks the end of what was sent.
			seq++
			p, _ := good.ProtectRTP(nil, rtpPacket(seq, 0x7E))
			peer.WriteToUDPAddrPort(p, to)
			s.RTP().SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				n, _, err := s.RTP().ReadFromAddrPort(buf)
				if err != nil {
					t.Fatalf("read: %v (stats %+v)", err, s.RTP().Stats())
				}
				switch buf[n-1] {
				case 0x60:
					continue
				case 0x7E:
				default:
					t.Fatalf("delivered a packet that is not genuine SRTP: % x", buf[:16])
				}
				break
			}
			st := s.RTP().Stats()
			if st.Dropped[flow.DropNotSecure]+st.Dropped[flow.DropAuth] == 0 {
				t.Fatalf("no clear or foreign packet counted as dropped: %+v", st)
			}
		})
	}
}

// OnKeyed arrives once both directions are keyed, once per keying; WaitKeyed
// returns the keys' suite.
func TestKeyedEvent(t *testing.T) {
	leak.Check(t)
	got := make(chan flow.Keyed, 10)
	s, err := mediastream.New(ctxT(t), mediastream.Config{LocalAddr: loop4, RTCP: true, Security: mediastream.SDES},
		mediastream.HandlerFuncs{Keyed: func(_ *mediastream.Stream, k flow.Keyed) { got <- k }}, mediastream.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, _ := srtp.GenerateKeys(srtp.AEADAES128GCM)
	k2, _ := srtp.GenerateKeys(srtp.AESCM128HMACSHA1_32)
	s.SetOutboundSRTP(k)
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.WaitKeyed(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("keyed with one direction only: %v", err)
	}
	s.SetInboundSRTP(k)
	kd, err := s.WaitKeyed(ctxT(t))
	if err != nil || kd.Suite != srtp.AEADAES128GCM || kd.DTLS {
		t.Fatalf("WaitKeyed = %+v, %v", kd, err)
	}
	s.SetInboundSRTP(k) // a re-key of a keyed stream is no new keying
	// Unkeyed, then keyed anew with another suite: the second OnKeyed. Had the
	// re-key above produced one, it would come before this one (calls are ordered).
	s.SetOutboundSRTP(srtp.Keys{})
	s.SetOutboundSRTP(k2)
	for i, want := range []srtp.Suite{srtp.AEADAES128GCM, srtp.AESCM128HMACSHA1_32} {
		select {
		case kd := <-got:
			if kd.Suite != want {
				t.Fatalf("OnKeyed %d: suite %v, want %v", i, kd.Suite, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("OnKeyed %d not called", i)
		}
	}
}

func dtlsEnv(t *testing.T) mediastream.Env {
	t.Helper()
	cert, err := dtlssrtp.GenerateCertificate("test@example.org")
	if err != nil {
		t.Fatal(err)
	}
	return mediastream.Env{DTLS: func() (dtlssrtp.Config, error) { return dtlssrtp.Config{Certificate: cert}, nil }}
}

// StartDTLS checks every flow before it changes any: with a destination on
// the RTP flow only, the client role fails and leaves both flows as they were
// (it keyed RTP and failed on RTCP before).
func TestStartDTLSAtomic(t *testing.T) {
	leak.Check(t)
	s, err := mediastream.New(ctxT(t), mediastream.Config{LocalAddr: loop4, RTCP: true}, mediastream.HandlerFuncs{}, dtlsEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.RTP().SetActiveDestination(netip.MustParseAddrPort("127.0.0.1:9"))
	if err := s.StartDTLS(dtlssrtp.Client); !errors.Is(err, flow.ErrNoDestination) {
		t.Fatalf("StartDTLS with no RTCP destination: %v", err)
	}
	for _, f := range s.Flows() {
		if f.Secure() {
			t.Fatalf("%v flow changed by a StartDTLS that failed", f.Component())
		}
	}
}

// A stream configured for DTLS-SRTP delivers and sends nothing in clear
// before its association is keyed: clear RTP from the peer's address before
// and after the destination is set and after StartDTLS is dropped, and every
// write fails with ErrNotSecure.
func TestSecureByDefaultDTLS(t *testing.T) {
	leak.Check(t)
	s, err := mediastream.New(ctxT(t), mediastream.Config{LocalAddr: loop4, RTCP: true, Security: mediastream.DTLS},
		mediastream.HandlerFuncs{}, dtlsEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peerAP := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	sent := 0
	step := func() {
		for _, f := range s.Flows() {
			peer.WriteToUDPAddrPort(rtpPacket(uint16(sent), 0xC1), f.LocalTuple().Addr)
			sent++
			if _, err := f.Write(rtpPacket(1, 0xC1)); !errors.Is(err, flow.ErrNotSecure) && !errors.Is(err, flow.ErrNoDestination) {
				t.Fatalf("%v write before keys: %v", f.Component(), err)
			}
		}
	}
	step()
	for _, f := range s.Flows() {
		f.SetActiveDestination(peerAP)
	}
	step()
	if err := s.StartDTLS(dtlssrtp.Server); err != nil {
		t.Fatal(err)
	}
	step()
	// Everything sent has been sorted once the flows counted it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var dropped, delivered uint64
		for _, f := range s.Flows() {
			st := f.Stats()
			dropped += st.Dropped[flow.DropNotSecure] + st.Dropped[flow.DropSource]
			delivered += st.PacketsIn
		}
		if delivered != 0 {
			t.Fatalf("%d clear packets delivered", delivered)
		}
		if dropped == uint64(sent) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d clear packets accounted for", dropped, sent)
		}
		time.Sleep(time.Millisecond) // polling a counter, bounded
	}
	// The peer got nothing from the stream (no clear media, and the DTLS
	// server role sends nothing before a ClientHello).
	peer.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := peer.Read(make([]byte, 1500)); err == nil {
		t.Fatalf("the stream sent %d bytes before it was keyed", n)
	}
}
