package webterminal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pion/stun/v2"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/call/sdpx"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/internal/leak"
)

type rawAttr struct {
	typ stun.AttrType
	val []byte
}

func (a rawAttr) AddTo(m *stun.Message) error { m.Add(a.typ, a.val); return nil }

// The binding speaks ICE-lite even when the agent's default has ICE off: a
// WebRTC core (a full ICE agent, played here with stun/v2 and Core.Send)
// offers, gets an answer with a=ice-lite, credentials and candidates, checks
// our host candidate with USE-CANDIDATE, and then receives our RTP on that
// address.
func TestCoreMediaICE(t *testing.T) {
	leak.Check(t)
	answers := make(chan string, 1)
	core, addr := startCore(t, CoreConfig{OnMessage: func(_ string, _ Mode, in bool, m *pb.WebTerminalMessage) {
		if in && m.GetAnswer() != nil {
			answers <- m.GetAnswer().GetSdp()
		}
	}})
	b := dial(t, addr, "200", Pipe, "accept")
	if b.Agent().MediaConfig().ICE {
		t.Fatal("agent default has ICE on")
	}
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	peer := sock.LocalAddr().(*net.UDPAddr).AddrPort()
	offer := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n"+
		"a=rtcp-mux\r\na=ice-ufrag:core\r\na=ice-pwd:corepasswordcorepassword\r\n"+
		"a=candidate:1 1 udp 2130706431 %s %d typ host\r\na=sendrecv\r\n", peer.Addr(), peer.Port())
	id := uuid.NewString()
	if n := core.Send("200", &pb.WebTerminalMessage{CallId: id, Message: &pb.WebTerminalMessage_Offer{
		Offer: &pb.Offer{Sdp: offer, Msisdn: "100"}}}); n != 1 {
		t.Fatalf("sent to %d streams", n)
	}
	answer := recv(t, answers, "Answer")
	in := recv(t, b.rec.incoming, "incoming")
	if in.State() != call.Active || in.ID() != id {
		t.Fatalf("incoming %s %v, want %s active", in.ID(), in.State(), id)
	}
	d, err := sdpx.Parse([]byte(answer))
	if err != nil {
		t.Fatal(err)
	}
	m := d.Media[0]
	// WebRTC requires rtcp-mux, so the answer multiplexes even though the
	// agent's default gives RTCP its own flow: one component, one candidate.
	if !d.ICELite || m.CheckICE() != nil || !m.ICE() || !m.RTCPMux || len(m.Candidates) != 1 || m.Candidates[0].Addr != m.RTP {
		t.Fatalf("answer without ICE-lite and rtcp-mux:\n%s", answer)
	}
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(m.ICEUfrag+":core"),
		rawAttr{stun.AttrPriority, binary.BigEndian.AppendUint32(nil, 1845501695)},
		rawAttr{stun.AttrICEControlling, make([]byte, 8)}, rawAttr{stun.AttrUseCandidate, nil},
		stun.NewShortTermIntegrity(m.ICEPwd), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sock.WriteToUDPAddrPort(req.Raw, m.Candidates[0].Addr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	sock.SetReadDeadline(time.Now().Add(testTimeout))
	n, err := sock.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	res := &stun.Message{Raw: buf[:n]}
	if err := res.Decode(); err != nil || res.Type != stun.BindingSuccess || res.TransactionID != req.TransactionID {
		t.Fatalf("response %v (%v)", res, err)
	}
	if err := stun.NewShortTermIntegrity(m.ICEPwd).Check(res); err != nil {
		t.Fatalf("integrity: %v", err)
	}
	// The success response may leave before the nomination takes effect:
	// until it has, the stream has no destination (c=0.0.0.0 gives no
	// default with ICE) and writes fail with flow.ErrNoDestination. Wait for
	// our RTP at the nominated address, then check the destination.
	s := in.Stream()
	pkt := []byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 42, 'w', 't'}
	for i := 0; ; i++ {
		if _, err := s.RTP().Write(pkt); err != nil && !errors.Is(err, flow.ErrNoDestination) {
			t.Fatal(err)
		}
		sock.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := sock.Read(buf)
		if err == nil && n == len(pkt) && buf[0] == 0x80 {
			break
		}
		if i == 100 {
			t.Fatal("no RTP at the nominated address")
		}
	}
	if got := s.RTP().ActiveDestination(); got != netip.AddrPortFrom(peer.Addr(), peer.Port()) {
		t.Errorf("destination %v", got)
	}
}
