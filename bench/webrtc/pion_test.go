package webrtcbench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// pionPeers is a pion/webrtc/v4 API configured like the reflow agents:
// host candidates on 127.0.0.1 only (UDP4, loopback interface, no mDNS),
// AEAD_AES_128_GCM first (the suite reflow negotiates by default; pion's own
// default puts AEAD_AES_256_GCM first), and a certificate per side made
// beforehand. Codecs and interceptors are the defaults webrtc.NewAPI
// registers when given none, i.e. what an application gets from
// webrtc.NewPeerConnection: NACK generator and responder, RTCP sender and
// receiver reports, stats, TWCC sender (which adds a transport-wide
// sequence number header extension to every audio packet) and the simulcast
// header extensions.
type pionPeers struct {
	api          *webrtc.API
	certA, certB webrtc.Certificate
}

func newPionPeers(tb testing.TB) *pionPeers {
	tb.Helper()
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	p := &pionPeers{api: webrtc.NewAPI(webrtc.WithSettingEngine(se))}
	for _, c := range []*webrtc.Certificate{&p.certA, &p.certB} {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		cert, err := webrtc.GenerateCertificate(k)
		if err != nil {
			tb.Fatal(err)
		}
		*c = *cert
	}
	return p
}

// pionCall is two PeerConnections, a sending one PCMU track to b.
type pionCall struct {
	a, b  *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	got   chan struct{} // closed by the first packet b reads
	wg    sync.WaitGroup
}

// prepare makes the two PeerConnections, a's track (with a goroutine that
// reads its RTCP, as applications must for the interceptors to run) and b's
// track reader; every packet b reads counts in rx. Nothing is negotiated.
func (p *pionPeers) prepare(tb testing.TB, rx *counter) *pionCall {
	tb.Helper()
	pc := &pionCall{got: make(chan struct{})}
	var err error
	if pc.a, err = p.api.NewPeerConnection(webrtc.Configuration{Certificates: []webrtc.Certificate{p.certA}}); err != nil {
		tb.Fatal(err)
	}
	if pc.b, err = p.api.NewPeerConnection(webrtc.Configuration{Certificates: []webrtc.Certificate{p.certB}}); err != nil {
		tb.Fatal(err)
	}
	pc.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, "audio", "bench")
	if err != nil {
		tb.Fatal(err)
	}
	sender, err := pc.a.AddTrack(pc.track)
	if err != nil {
		tb.Fatal(err)
	}
	pc.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	})
	var once sync.Once
	pc.b.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		once.Do(func() {
			pc.wg.Go(func() {
				buf := make([]byte, 1500)
				first := true
				for {
					if _, _, err := t.Read(buf); err != nil {
						return
					}
					if first {
						close(pc.got)
						first = false
					}
					rx.add()
				}
			})
		})
	})
	return pc
}

// connect does the complete (non-trickle) offer/answer: the offer and the
// answer are sent once each side has gathered its candidates. ICE checks,
// nomination and DTLS-SRTP follow in the background.
func (pc *pionCall) connect(tb testing.TB) {
	tb.Helper()
	offer, err := pc.a.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	gA := webrtc.GatheringCompletePromise(pc.a)
	if err := pc.a.SetLocalDescription(offer); err != nil {
		tb.Fatal(err)
	}
	<-gA
	if err := pc.b.SetRemoteDescription(*pc.a.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
	answer, err := pc.b.CreateAnswer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	gB := webrtc.GatheringCompletePromise(pc.b)
	if err := pc.b.SetLocalDescription(answer); err != nil {
		tb.Fatal(err)
	}
	<-gB
	if err := pc.a.SetRemoteDescription(*pc.b.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
}

// close closes both PeerConnections and waits for the readers.
func (pc *pionCall) close() {
	pc.a.GracefulClose()
	pc.b.GracefulClose()
	pc.wg.Wait()
}

// setup connects pc and returns once the callee's track has read the first
// RTP packet, with the time from CreateOffer to that packet; the caller
// writes one every 250 µs.
func (pc *pionCall) setup(tb testing.TB) (time.Duration, int) {
	tb.Helper()
	start := time.Now()
	pc.connect(tb)
	return firstPacket(tb, start, func(pkt []byte) { pc.track.Write(pkt) }, pc.got)
}

// benchPionSetup: BenchmarkSetup/pion, the time of setup per call (the
// PeerConnections, the track and the handlers are made before the clock
// starts; ns/op, ms/call); cpu-ms/call is the process's CPU time per whole
// cycle (PeerConnections made, set up, first media, closed).
func benchPionSetup(b *testing.B) {
	p := newPionPeers(b)
	b.ReportAllocs()
	var total time.Duration
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pc := p.prepare(b, newCounter())
		b.StartTimer()
		d, _ := pc.setup(b)
		total += d
		b.StopTimer()
		pc.close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/call")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/call")
}

// pionPath is an established call, a's track to b's.
func pionPath(tb testing.TB) *path {
	tb.Helper()
	rx := newCounter()
	pc := newPionPeers(tb).prepare(tb, rx)
	_, seq := pc.setup(tb)
	return &path{
		write: func(pkt []byte) error { _, err := pc.track.Write(pkt); return err },
		rx:    rx,
		seq:   seq,
		close: pc.close,
	}
}

// benchPionRate: BenchmarkRTPRate/pion.
func benchPionRate(b *testing.B) { measureRate(b, pionPath(b)) }
