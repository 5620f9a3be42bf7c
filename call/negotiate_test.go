package call

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/leak"
)

// A new DTLS association only for a new fingerprint or a new a=tls-id
// (RFC 8842), never for a new address or ICE ufrag (an ICE restart).
func TestNewAssociation(t *testing.T) {
	leak.Check(t)
	fp, err := dtlssrtp.ParseFingerprint("sha-256 " + fakeFingerprint)
	if err != nil {
		t.Fatal(err)
	}
	other := fp
	other.Value = append([]byte(nil), fp.Value...)
	other.Value[0] ^= 1
	base := sdpx.Media{Security: sdpx.DTLS, Fingerprints: []dtlssrtp.Fingerprint{fp}, ICEUfrag: "ufr1", TLSID: "id-one-aaaaaaaaaaaaaaaa"}
	base.RTP = ap("192.0.2.1:4000")
	prev := &negotiated{remote: base, state: MediaState{Security: sdpx.DTLS, RemoteFingerprints: base.Fingerprints, Remote: base.RTP}}
	for _, tc := range []struct {
		name string
		edit func(m *sdpx.Media)
		want bool
	}{
		{"same", func(*sdpx.Media) {}, false},
		{"new address", func(m *sdpx.Media) { m.RTP = ap("192.0.2.9:5000") }, false},
		{"ICE restart", func(m *sdpx.Media) { m.ICEUfrag, m.RTP = "ufr2", ap("192.0.2.9:5000") }, false},
		{"no tls-id now", func(m *sdpx.Media) { m.TLSID, m.RTP = "", ap("192.0.2.9:5000") }, false},
		{"new tls-id", func(m *sdpx.Media) { m.TLSID = "id-two-bbbbbbbbbbbbbbbb" }, true},
		{"new fingerprint", func(m *sdpx.Media) { m.Fingerprints = []dtlssrtp.Fingerprint{other} }, true},
	} {
		m := base
		tc.edit(&m)
		if got := newAssociation(prev, m); got != tc.want {
			t.Errorf("%s: new association %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The call follows its media (issue 14 item 4): when the peer's DTLS
// association closes (close_notify, as a browser's pc.close() sends) and
// no hangup follows, the call ends within PeerCloseGrace with MediaLost
// wrapping dtlssrtp.ErrPeerClosed, and the peer is sent a hangup.
func TestMediaLost(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	mc := MediaConfig{Security: sdpx.DTLS, RTCPMux: true}
	p := newPair(t, mc, mc)
	ca, cb := p.connect(t, ctx)
	bothWays(t, ca, cb)
	if _, err := ca.Stream().WaitKeyed(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cb.Stream().Close() // b's media dies; its signalling says nothing
	r := waitDone(t, ctx, ca)
	took := time.Since(start)
	if r.Kind != MediaLost || !errors.Is(r, dtlssrtp.ErrPeerClosed) {
		t.Fatalf("reason %+v", r)
	}
	if took > PeerCloseGrace+5*time.Second {
		t.Errorf("call ended %v after the peer closed", took)
	}
	t.Logf("peer close to call end: %v", took)
	if r := waitDone(t, ctx, cb); r.Kind != RemoteHangup {
		t.Errorf("peer's reason %+v, want the hangup sent for the lost media", r)
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// The stream errors of a vanished peer end the call with MediaLost at once
// (no grace: no hangup follows them), wrapping the flow's sentinel.
func TestMediaLostICE(t *testing.T) {
	leak.Check(t)
	for _, sentinel := range []error{flow.ErrConsentLost, flow.ErrICEFailed} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		p := newPair(t, MediaConfig{}, MediaConfig{})
		ca, cb := p.connect(t, ctx)
		ca.onMediaError(ca.Media(), &flow.Error{Component: flow.RTP, Op: "ice", Err: sentinel})
		if r := waitDone(t, ctx, ca); r.Kind != MediaLost || !errors.Is(r, sentinel) {
			t.Errorf("%v: reason %+v", sentinel, r)
		}
		if r := waitDone(t, ctx, cb); r.Kind != RemoteHangup {
			t.Errorf("%v: peer's reason %+v", sentinel, r)
		}
		cancel()
	}
}
