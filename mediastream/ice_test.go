package mediastream_test

import (
	"testing"
	"time"

	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/mediastream"
)

type iceHandler struct {
	mediastream.HandlerFuncs
	selected chan flow.Candidate
}

func (h iceHandler) OnICESelected(_ *mediastream.Stream, _ *flow.Flow, _, remote flow.Candidate) {
	h.selected <- remote
}

// Two streams with RTCP on their own flows run full ICE with each other:
// both components select a pair, reported through ICEHandler.
func TestStreamICE(t *testing.T) {
	leak.Check(t)
	var s [2]*mediastream.Stream
	var h [2]iceHandler
	var cfg [2]flow.ICEConfig
	for i := range s {
		h[i] = iceHandler{selected: make(chan flow.Candidate, 4)}
		var err error
		s[i], err = mediastream.New(ctxT(t), mediastream.Config{LocalAddr: loop4, RTCP: true}, h[i], mediastream.Env{})
		if err != nil {
			t.Fatal(err)
		}
		defer s[i].Close()
		u, p, err := flow.NewICECredentials()
		if err != nil {
			t.Fatal(err)
		}
		cfg[i] = flow.ICEConfig{LocalUfrag: u, LocalPwd: p, Controlling: i == 0}
	}
	for i := range s {
		j := 1 - i
		cfg[i].RemoteUfrag, cfg[i].RemotePwd = cfg[j].LocalUfrag, cfg[j].LocalPwd
		if err := s[i].StartICE(cfg[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range s {
		cands := s[1-i].LocalCandidates()
		if len(cands) != 2 {
			t.Fatalf("%d local candidates, want 2 (RTP and RTCP host)", len(cands))
		}
		for _, c := range cands {
			if err := s[i].AddRemoteCandidate(c); err != nil {
				t.Fatal(err)
			}
		}
		if err := s[i].EndOfRemoteCandidates(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range s {
		got := map[flow.Component]bool{}
		for range 2 {
			select {
			case r := <-h[i].selected:
				got[flow.Component(r.Component)] = true
			case <-time.After(10 * time.Second):
				t.Fatalf("stream %d: no selection", i)
			}
		}
		if !got[flow.RTP] || !got[flow.RTCP] {
			t.Fatalf("stream %d selected %v", i, got)
		}
		if s[i].RTCP().ActiveDestination() != s[1-i].RTCP().LocalTuple().Addr {
			t.Fatalf("stream %d: RTCP destination %v", i, s[i].RTCP().ActiveDestination())
		}
	}
}
