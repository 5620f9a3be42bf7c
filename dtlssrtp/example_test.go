package dtlssrtp_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/srtp"
)

func ExampleParseFingerprint() {
	fp, err := dtlssrtp.ParseFingerprint(
		"a=fingerprint:SHA-1 4a:ad:b9:b1:3f:82:18:3b:54:02:12:df:3e:5d:49:6b:19:e5:7c:ab")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(fp.Hash, len(fp.Value))
	fmt.Println(fp)
	fmt.Println(fp.Attribute())

	_, err = dtlssrtp.ParseFingerprint("sha-256 4A:AD:B9")
	fmt.Println(err)
	// Output:
	// sha-1 20
	// sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB
	// a=fingerprint:sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB
	// dtlssrtp: invalid fingerprint: sha-256 value has 3 bytes, want 32
}

func ExampleCertificateFingerprint() {
	cert, err := dtlssrtp.GenerateCertificate("sip:alice@example.com")
	if err != nil {
		log.Fatal(err)
	}
	fp, err := dtlssrtp.CertificateFingerprint(cert, dtlssrtp.SHA256)
	if err != nil {
		log.Fatal(err)
	}
	// fp.Attribute() goes into our SDP; the peer pins it.
	fmt.Println(cert.Leaf.Subject.CommonName, fp.Hash, fp.Matches(cert.Certificate[0]))
	// Output: sip:alice@example.com sha-256 true
}

func ExampleSetup_Answer() {
	for _, offer := range []string{"actpass", "active", "passive", "holdconn"} {
		o, _ := dtlssrtp.ParseSetup(offer)
		a, _ := o.Answer()
		fmt.Printf("offer %-8s -> answer %s\n", o, a)
	}
	// Output:
	// offer actpass  -> answer active
	// offer active   -> answer passive
	// offer passive  -> answer active
	// offer holdconn -> answer holdconn
}

func ExampleIsClient() {
	// We offered actpass and the answer said passive: we start the handshake.
	client, err := dtlssrtp.IsClient(dtlssrtp.SetupActpass, dtlssrtp.SetupPassive)
	fmt.Println(client, err)
	role, _ := dtlssrtp.RoleFor(dtlssrtp.SetupPassive, dtlssrtp.SetupActive)
	fmt.Println(role)
	_, err = dtlssrtp.IsClient(dtlssrtp.SetupActive, dtlssrtp.SetupActive)
	fmt.Println(err)
	// Output:
	// true <nil>
	// server
	// dtlssrtp: invalid setup role: local active, remote active
}

// udpConn turns a UDP socket into a net.Conn to one peer (a flow's DTLS
// endpoint plays this part in reflow).
type udpConn struct {
	*net.UDPConn
	peer *net.UDPAddr
}

func (c udpConn) Read(b []byte) (int, error) {
	for {
		n, from, err := c.ReadFromUDP(b)
		if err != nil || from.String() == c.peer.String() {
			return n, err
		}
	}
}
func (c udpConn) Write(b []byte) (int, error) { return c.WriteToUDP(b, c.peer) }
func (c udpConn) RemoteAddr() net.Addr        { return c.peer }

// Two endpoints that exchanged fingerprints and setup roles in SDP run the
// handshake and end up with matching SRTP keys.
func ExampleHandshake() {
	alice, _ := dtlssrtp.GenerateCertificate("sip:alice@example.com")
	bob, _ := dtlssrtp.GenerateCertificate("sip:bob@example.com")
	aliceFP, _ := dtlssrtp.CertificateFingerprint(alice, dtlssrtp.SHA256)
	bobFP, _ := dtlssrtp.CertificateFingerprint(bob, dtlssrtp.SHA256)

	sa, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	sb, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	ca := udpConn{sa, sb.LocalAddr().(*net.UDPAddr)}
	cb := udpConn{sb, sa.LocalAddr().(*net.UDPAddr)}

	// Bob answered Alice's a=setup:actpass with a=setup:active, so Bob is
	// the DTLS client. Each side pins the other's a=fingerprint.
	done := make(chan *dtlssrtp.Session)
	go func() {
		var v dtlssrtp.Verifier
		_ = v.SetFingerprint(aliceFP)
		s, err := dtlssrtp.Handshake(context.Background(), cb, dtlssrtp.Client,
			dtlssrtp.Config{Certificate: bob}, &v)
		if err != nil {
			log.Fatal(err)
		}
		done <- s
	}()
	var v dtlssrtp.Verifier
	_ = v.SetFingerprint(bobFP)
	alices, err := dtlssrtp.Handshake(context.Background(), ca, dtlssrtp.Server,
		dtlssrtp.Config{Certificate: alice, Suites: []srtp.Suite{srtp.AESCM128HMACSHA1_80}}, &v)
	if err != nil {
		log.Fatal(err)
	}
	bobs := <-done

	aLocal, _ := alices.Keys()
	_, bRemote := bobs.Keys()
	fmt.Println("suite:", alices.Suite(), bobs.Suite())
	fmt.Println("verified:", v.Verified())
	fmt.Println("alice's send key is bob's receive key:", bytes.Equal(aLocal.Key, bRemote.Key) && bytes.Equal(aLocal.Salt, bRemote.Salt))

	// Close sends close_notify; the peer's Session ends with ErrPeerClosed.
	bobs.Close()
	<-alices.Done()
	fmt.Println("alice sees:", alices.Err())
	alices.Close()
	// Output:
	// suite: AES_CM_128_HMAC_SHA1_80 AES_CM_128_HMAC_SHA1_80
	// verified: true
	// alice's send key is bob's receive key: true
	// alice sees: dtlssrtp: peer closed the association (close_notify)
}
