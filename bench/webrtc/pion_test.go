package webrtcbench

// The pion/webrtc side. v4/pion_test.go is this file with the imports moved to
// pion/webrtc/v4, dtls/v3 and ice/v4 (the API used here is the same).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v3"
)

// pionPeers holds an API configured like our streams: host candidates only, on
// loopback, UDP4, no mDNS, AEAD_AES_128_GCM first (our default suite), the
// default codecs and interceptors (what webrtc.NewPeerConnection gives), and a
// certificate per side made beforehand.
type pionPeers struct {
	api          *webrtc.API
	certA, certB webrtc.Certificate
}

func newPionPeers(b *testing.B) *pionPeers {
	b.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		b.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		b.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	p := &pionPeers{api: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))}
	for _, c := range []*webrtc.Certificate{&p.certA, &p.certB} {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		cert, err := webrtc.GenerateCertificate(k)
		if err != nil {
			b.Fatal(err)
		}
		*c = *cert
	}
	return p
}

// pionPair is two PeerConnections, a sending one audio track to b.
type pionPair struct {
	a, b  *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	got   chan struct{} // closed by the first packet b reads
	done  chan struct{} // closed when b's reader ends
}

// pair connects two PeerConnections by a complete (non-trickle) offer/answer;
// every packet b receives counts in rx.
func (p *pionPeers) pair(b *testing.B, rx *counter) *pionPair {
	b.Helper()
	pp := &pionPair{got: make(chan struct{}), done: make(chan struct{})}
	var err error
	if pp.a, err = p.api.NewPeerConnection(webrtc.Configuration{Certificates: []webrtc.Certificate{p.certA}}); err != nil {
		b.Fatal(err)
	}
	if pp.b, err = p.api.NewPeerConnection(webrtc.Configuration{Certificates: []webrtc.Certificate{p.certB}}); err != nil {
		b.Fatal(err)
	}
	pp.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, "audio", "bench")
	if err != nil {
		b.Fatal(err)
	}
	sender, err := pp.a.AddTrack(pp.track)
	if err != nil {
		b.Fatal(err)
	}
	go func() { // read incoming RTCP so that interceptors run, as applications must
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	var once sync.Once
	pp.b.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		defer once.Do(func() { close(pp.done) })
		buf := make([]byte, 1500)
		first := true
		for {
			if _, _, err := t.Read(buf); err != nil {
				return
			}
			if first {
				close(pp.got)
				first = false
			}
			rx.add()
		}
	})
	offer, err := pp.a.CreateOffer(nil)
	if err != nil {
		b.Fatal(err)
	}
	gA := webrtc.GatheringCompletePromise(pp.a)
	if err := pp.a.SetLocalDescription(offer); err != nil {
		b.Fatal(err)
	}
	<-gA
	if err := pp.b.SetRemoteDescription(*pp.a.LocalDescription()); err != nil {
		b.Fatal(err)
	}
	answer, err := pp.b.CreateAnswer(nil)
	if err != nil {
		b.Fatal(err)
	}
	gB := webrtc.GatheringCompletePromise(pp.b)
	if err := pp.b.SetLocalDescription(answer); err != nil {
		b.Fatal(err)
	}
	<-gB
	if err := pp.a.SetRemoteDescription(*pp.b.LocalDescription()); err != nil {
		b.Fatal(err)
	}
	return pp
}

func (pp *pionPair) close() {
	pp.a.Close()
	pp.b.Close()
	select {
	case <-pp.done:
	case <-time.After(2 * time.Second):
	}
}

// benchPionSetup: two PeerConnections from NewPeerConnection to the first RTP
// packet received over DTLS-SRTP.
func benchPionSetup(b *testing.B) {
	p := newPionPeers(b)
	b.ReportAllocs()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		pp := p.pair(b, newCounter())
		total += firstPacket(b, start, func(pkt []byte) { pp.track.Write(pkt) }, pp.got)
		pp.close()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/setup")
}

// benchPionRate: packets/s from one PeerConnection's track to the other's.
func benchPionRate(b *testing.B) {
	p := newPionPeers(b)
	rx := newCounter()
	pp := p.pair(b, rx)
	firstPacket(b, time.Now(), func(pkt []byte) { pp.track.Write(pkt) }, pp.got)
	measureRate(b, func(pkt []byte) error { _, err := pp.track.Write(pkt); return err }, rx)
	pp.close()
}
