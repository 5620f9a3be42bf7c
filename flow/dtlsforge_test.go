package flow

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/internal/leak"
)

// keyedDTLSPair returns two flows with a verified, keyed DTLS-SRTP
// association (a client, b server), and the channel of a's events.
func keyedDTLSPair(t *testing.T, linger time.Duration) (a, b *Flow, aEvents chan Event) {
	t.Helper()
	aEvents = make(chan Event, 64)
	bEvents := make(chan Event, 64)
	a = newFlow(t, loop4, Config{Secure: true, DTLSLinger: linger, OnEvent: nonReady(aEvents)})
	b = newFlow(t, loop4, Config{Secure: true, DTLSLinger: linger, OnEvent: nonReady(bEvents)})
	a.SetActiveDestination(b.LocalTuple().Addr)
	b.SetActiveDestination(a.LocalTuple().Addr)
	ca, err := dtlssrtp.GenerateCertificate("a@example.org")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := dtlssrtp.GenerateCertificate("b@example.org")
	if err != nil {
		t.Fatal(err)
	}
	fa, _ := dtlssrtp.CertificateFingerprint(ca, dtlssrtp.SHA256)
	fb, _ := dtlssrtp.CertificateFingerprint(cb, dtlssrtp.SHA256)
	a.SetRemoteFingerprint(fb)
	b.SetRemoteFingerprint(fa)
	if err := b.StartDTLS(dtlssrtp.Server, dtlssrtp.Config{Certificate: cb}); err != nil {
		t.Fatal(err)
	}
	if err := a.StartDTLS(dtlssrtp.Client, dtlssrtp.Config{Certificate: ca}); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []chan Event{aEvents, bEvents} {
		select {
		case ev := <-ch:
			if ev.Kind != EventKeyed || !ev.Keyed.DTLS || ev.Keyed.Suite == 0 {
				t.Fatalf("event %+v, want keyed", ev)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("not keyed")
		}
	}
	return a, b, aEvents
}

// Once keyed, records the peer did not protect under the current epoch cannot
// end the association: an epoch-0 alert, close_notify or application-data
// record "from the peer" (UDP sources can be forged off-path) ended it on the
// old code. A flood of them neither ends it nor crowds out media.
func TestForgedDTLSRecordsAfterKeying(t *testing.T) {
	leak.Check(t)
	a, b, aEvents := keyedDTLSPair(t, -1) // keep the DTLS state: the association is live
	forged := [][]byte{
		record(21, 0, "\x02\x28"),                // fatal handshake_failure alert, epoch 0
		record(21, 0, "\x01\x00"),                // close_notify, epoch 0
		record(23, 0, "application data, clear"), // epoch-0 application data
		record(21, 1, "\x01\x00garbage-not-authenticated"),
		record(22, 0, "\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x02\xfe\xfd"), // a stray handshake fragment
	}
	buf := make([]byte, 2048)
	seq := uint64(1000)
	for round := range 300 {
		for _, r := range forged {
			seq++ // fresh sequence numbers: not dropped as replays
			r = append([]byte(nil), r...)
			for i := range 6 {
				r[5+i] = byte(seq >> (8 * (5 - i)))
			}
			b.sendRaw(r, a.LocalTuple().Addr) // from the peer's own address
		}
		p := rtpPacket(uint16(round), 172)
		if _, err := b.Write(p); err != nil {
			t.Fatalf("write %d: %v", round, err)
		}
		a.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := a.ReadFromAddrPort(buf)
		if err != nil {
			t.Fatalf("media %d lost after forged records: %v (stats %+v)", round, err, a.Stats())
		}
		if !bytes.Equal(buf[:n], p) {
			t.Fatalf("media %d differs", round)
		}
	}
	// A last genuine round trip after the flood: had a forged record ended
	// the association, its event would be queued before this packet arrived.
	p := rtpPacket(9999, 172)
	b.Write(p)
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := a.ReadFromAddrPort(buf); err != nil {
		t.Fatalf("media after the flood: %v", err)
	}
	select {
	case ev := <-aEvents:
		t.Fatalf("forged records caused %+v", ev)
	default:
	}
	if !a.IsSecure() {
		t.Fatal("association ended")
	}
	if a.Stats().Dropped[DropUnexpected] == 0 {
		t.Fatal("no forged record counted")
	}
}

func TestStripUnauthenticated(t *testing.T) {
	join := func(rs ...[]byte) []byte { return bytes.Join(rs, nil) }
	alert0 := record(21, 0, "\x02\x28")
	app0 := record(23, 0, "x")
	hs0 := record(22, 0, "hello")
	ccs := record(20, 0, "\x01")
	fin := record(22, 1, "finished")
	alert1 := record(21, 1, "enc")
	for _, c := range []struct{ in, want []byte }{
		{join(alert0, fin), fin},
		{join(hs0, ccs, fin), join(hs0, ccs, fin)},
		{join(app0, alert1), alert1},
		{alert0, nil},
		{append(append([]byte{}, fin...), 21, 0), fin},
	} {
		b := append([]byte(nil), c.in...)
		if n := stripUnauthenticated(b); !bytes.Equal(b[:n], c.want) {
			t.Errorf("strip %x = %x, want %x", c.in, b[:n], c.want)
		}
	}
}

// Concurrent StartDTLS calls leave one association: the others are stopped.
// Before they were serialised, a call could store its association after
// another call had already stopped "the old one", orphaning an association
// that went on retransmitting its own ClientHello. The peer here is a socket
// that counts the distinct ClientHello randoms retransmitted after the calls.
func TestStartDTLSConcurrentNoOrphan(t *testing.T) {
	leak.Check(t)
	cert, err := dtlssrtp.GenerateCertificate("c@example.org")
	if err != nil {
		t.Fatal(err)
	}
	peer := listen(t, loop4)
	defer peer.Close()
	f := newFlow(t, loop4, Config{})
	f.SetActiveDestination(netip.MustParseAddrPort(peer.LocalAddr().String()))
	done := make(chan error, 8)
	for range 8 {
		go func() {
			done <- f.StartDTLS(dtlssrtp.Client, dtlssrtp.Config{Certificate: cert, HandshakeTimeout: time.Minute})
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// The first flights of stopped associations may still be in the socket
	// buffer; pion retransmits a live one's ClientHello after 1 s. Count the
	// randoms of datagrams read from 0.5 s to 2.6 s after the calls.
	start := time.Now()
	randoms := map[string]bool{}
	buf := make([]byte, 2048)
	for {
		peer.SetReadDeadline(start.Add(2600 * time.Millisecond))
		n, err := peer.Read(buf)
		if err != nil {
			break
		}
		if time.Since(start) < 500*time.Millisecond || n < 13+12+2+32 || buf[0] != 22 || buf[13] != 1 {
			continue
		}
		randoms[string(buf[27:59])] = true
	}
	if len(randoms) != 1 {
		t.Fatalf("%d associations retransmitting ClientHellos, want 1", len(randoms))
	}
}
