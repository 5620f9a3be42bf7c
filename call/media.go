package call

import (
	"context"
	"crypto/rand"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/reflow-go/reflow/call/sdpx"
	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/mediastream"
)

// Media adapts one flowmanager stream to the call core: it records the
// stream's readiness and session tuples, and reports its failures to one
// function. A binding that builds its own offers (or a test) can use it
// directly; calls make theirs with OpenMedia.
type Media struct {
	stream *mediastream.Stream
	cancel context.CancelFunc
	ready  chan struct{}
	fail   chan struct{} // closed on the first failure

	tlsID string // our a=tls-id (RFC 8842): one DTLS association per stream
	full  bool   // a full ICE agent (MediaConfig.FullICE), else ICE-lite

	mu         sync.Mutex
	rtp, rtcp  flow.Tuple
	err        error
	onError    func(*Media, error)
	ice        iceCredentials // in force on the stream
	iceRemote  string
	iceRPwd    string
	trickled   []flow.Candidate // remote candidates trickled before ICE started
	trickleEnd bool             // and their end
	// A DTLS start waiting for the path (startDTLS).
	dtlsPending bool
	dtlsRole    dtlssrtp.Role
	dtlsWaitICE bool
	dtlsStarts  int // DTLS associations started (or pending) on the stream
}

// OpenMedia asks m for a stream configured from cfg and returns at once; Wait
// blocks until it is ready. onError (may be nil) receives every failure of
// the stream, before or after ready, on the stream's handler goroutine.
// timeout bounds the NAT setup (zero: 10 s). A stream for cfg.Security SDES
// or DTLS never sends or delivers clear media.
func OpenMedia(m *flowmanager.Manager, cfg MediaConfig, timeout time.Duration, onError func(*Media, error)) (*Media, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tlsID, err := newTLSID()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	md := &Media{cancel: cancel, ready: make(chan struct{}), fail: make(chan struct{}), onError: onError, tlsID: tlsID, full: cfg.FullICE}
	sec := mediastream.Plain
	switch cfg.Security {
	case sdpx.SDES:
		sec = mediastream.SDES
	case sdpx.DTLS:
		sec = mediastream.DTLS
	}
	s, err := m.NewStream(ctx, mediastream.Config{
		LocalAddr: cfg.LocalAddr,
		RTCP:      !cfg.RTCPMux,
		NAT:       cfg.NAT,
		Latch:     cfg.Latch,
		Security:  sec,
	}, streamHandler{md})
	if err != nil {
		cancel()
		return nil, err
	}
	md.mu.Lock()
	md.stream = s
	md.mu.Unlock()
	return md, nil
}

// newTLSID returns a random a=tls-id value (RFC 8842 §4: 20 to 255 of
// ALPHA / DIGIT / "+" / "/" / "-" / "_"; 32 characters, 192 bits).
func newTLSID() (string, error) {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = chars[b[i]&63]
	}
	return string(b), nil
}

// streamHandler receives the stream's events for a Media.
type streamHandler struct{ m *Media }

func (h streamHandler) OnReady(_ *mediastream.Stream, rtp, rtcp flow.Tuple) { h.m.onReady(rtp, rtcp) }
func (h streamHandler) OnError(_ *mediastream.Stream, err error)            { h.m.onFail(err) }

// OnICESelected: the path is known; a waiting DTLS client may start.
func (h streamHandler) OnICESelected(*mediastream.Stream, *flow.Flow, flow.Candidate, flow.Candidate) {
	h.m.tryStartDTLS()
}

// OnSourceChanged: a latching flow learnt where to send.
func (h streamHandler) OnSourceChanged(*mediastream.Stream, *flow.Flow, netip.AddrPort, netip.AddrPort) {
	h.m.tryStartDTLS()
}

// startDTLS starts DTLS-SRTP on the stream in role. A server starts at once
// (it answers the peer's ClientHello). A client's first flight must reach
// a peer that can take it, so it waits for the path: with ICE (waitICE)
// until the peer's nomination selected a pair on every flow (a peer checks
// only once it has our description, so it is then ready for DTLS), else
// until every flow has a destination (from the peer's SDP, or latched).
// A deferred start that fails reaches the media's onError.
func (m *Media) startDTLS(role dtlssrtp.Role, waitICE bool) error {
	m.mu.Lock()
	m.dtlsPending, m.dtlsRole, m.dtlsWaitICE = true, role, waitICE
	m.dtlsStarts++
	m.mu.Unlock()
	return m.startDTLSIfRouted()
}

func (m *Media) tryStartDTLS() {
	if err := m.startDTLSIfRouted(); err != nil {
		m.onFail(err)
	}
}

// startDTLSIfRouted starts a pending DTLS start whose path is known.
func (m *Media) startDTLSIfRouted() error {
	m.mu.Lock()
	if !m.dtlsPending {
		m.mu.Unlock()
		return nil
	}
	role, waitICE := m.dtlsRole, m.dtlsWaitICE
	if role == dtlssrtp.Client {
		for _, f := range m.stream.Flows() {
			if _, _, selected := f.SelectedPair(); waitICE && !selected || !f.ActiveDestination().IsValid() {
				m.mu.Unlock()
				return nil
			}
		}
	}
	m.dtlsPending = false
	m.mu.Unlock()
	return m.stream.StartDTLS(role)
}

// dtlsGeneration counts the DTLS associations started on the stream.
func (m *Media) dtlsGeneration() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dtlsStarts
}

// TLSID returns our a=tls-id for the stream's DTLS association (RFC 8842).
func (m *Media) TLSID() string { return m.tlsID }

func (m *Media) onReady(rtp, rtcp flow.Tuple) {
	m.mu.Lock()
	m.rtp, m.rtcp = rtp, rtcp
	m.mu.Unlock()
	m.cancel()
	close(m.ready)
}

func (m *Media) onFail(err error) {
	m.mu.Lock()
	if m.err == nil {
		m.err = err
		close(m.fail)
	}
	f := m.onError
	m.mu.Unlock()
	if f != nil {
		f(m, err)
	}
}

// Wait blocks until the stream is ready (nil), failed (its error) or ctx ends.
func (m *Media) Wait(ctx context.Context) error {
	select {
	case <-m.ready:
		return nil
	default:
	}
	select {
	case <-m.ready:
		return nil
	case <-m.fail:
		return m.Err()
	case <-ctx.Done():
		return ctx.Err()
	case <-m.stream.Done():
		return ErrClosed
	}
}

// Err returns the stream's first failure, or nil.
func (m *Media) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Tuples returns the session tuples to advertise: RTP, and RTCP (the zero
// Tuple with rtcp-mux). Both are zero before the stream is ready.
func (m *Media) Tuples() (rtp, rtcp flow.Tuple) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rtp, m.rtcp
}

// isReady reports whether the stream's NAT setup is done.
func (m *Media) isReady() bool {
	select {
	case <-m.ready:
		return true
	default:
		return false
	}
}

// trickleDefault is the default destination of a trickle description made
// before any candidate is known (RFC 8840 §4.1.1: IP4 0.0.0.0, port 9).
var trickleDefault = netip.AddrPortFrom(netip.IPv4Unspecified(), 9)

// advertised returns the addresses for c=/m= and a=rtcp: the session
// tuples once the stream is ready (rtcp zero with rtcp-mux); before (a
// trickle description, RFC 8840) each flow's first host candidate, or
// 0.0.0.0:9 for a flow that has none yet.
func (m *Media) advertised() (rtp, rtcp netip.AddrPort) {
	if m.isReady() {
		r, c := m.Tuples()
		return r.Addr, c.Addr
	}
	first := func(f *flow.Flow) netip.AddrPort {
		for _, c := range f.LocalCandidates() {
			if c.Type == flow.CandidateHost {
				return c.Addr
			}
		}
		return trickleDefault
	}
	rtp = first(m.stream.RTP())
	if f := m.stream.RTCP(); f != nil {
		rtcp = first(f)
	}
	return rtp, rtcp
}

// Stream returns the media stream, for RTP/RTCP I/O.
func (m *Media) Stream() *mediastream.Stream { return m.stream }

// Candidates returns our ICE candidates (RFC 8445 §5.1.1) for the stream's
// flows: component 1 for the RTP flow and 2 for the RTCP flow (none with
// rtcp-mux), each with a host candidate for its local address, a
// server-reflexive one for its STUN- or TURN-learnt public address and a
// relayed one for its TURN allocation, as the NAT mode gives them. Host and
// reflexive candidates are left out when the flow reaches its TURN server
// over TCP or TLS (the peer cannot send UDP there).
func (m *Media) Candidates() []sdpx.Candidate {
	if m.full {
		// The full agent's own candidates: what it checks from.
		var out []sdpx.Candidate
		for _, c := range m.stream.LocalCandidates() {
			out = append(out, sdpCandidate(c))
		}
		return out
	}
	var out []sdpx.Candidate
	for _, f := range []*flow.Flow{m.stream.RTP(), m.stream.RTCP()} {
		if f == nil {
			continue
		}
		comp := sdpx.ComponentRTP
		if f.Component() == flow.RTCP {
			comp = sdpx.ComponentRTCP
		}
		var host, refl netip.AddrPort
		if lt := f.LocalTuple(); lt.Transport == flow.UDP && !lt.Addr.Addr().IsUnspecified() {
			host = lt.Addr
			if rt := f.ReflexiveTuple(); rt.Transport == flow.UDP {
				refl = rt.Addr
			}
		}
		out = append(out, sdpx.LocalCandidates(comp, host, refl, f.RelayTuple().Addr)...)
	}
	return out
}

// setICE puts our ICE credentials and the peer's (ufrag and pwd) in force
// on the stream's flows when they changed; zero credentials stop answering
// checks. An empty remote ufrag answers checks from any peer ufrag.
func (m *Media) setICE(ours iceCredentials, remote, remotePwd string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ours.ufrag == "" {
		remote = ""
	}
	if m.ice == ours && m.iceRemote == remote {
		return nil
	}
	if m.ice != ours || remote == "" {
		if err := m.stream.SetICECredentials(ours.ufrag, ours.pwd, remote); err != nil {
			return err
		}
	}
	if remote != "" {
		if err := m.stream.SetRemoteICECredentials(remote, remotePwd); err != nil {
			return err
		}
	}
	m.ice, m.iceRemote = ours, remote
	return nil
}

// offerICE puts our ICE credentials in force for an offer: checks from any
// peer ufrag are answered until the answer names it. Credentials already in
// force are kept. A full agent starts as the controlling one (the offerer,
// RFC 8445 §6.1.1) unless it is the controlled one of a call it answered.
func (m *Media) offerICE(ours iceCredentials, controlling bool) error {
	m.mu.Lock()
	same := m.ice == ours
	m.mu.Unlock()
	if same {
		return nil
	}
	if m.full {
		return m.putICE(ours, sdpx.Media{}, false, controlling)
	}
	return m.setICE(ours, "", "")
}

// putICE puts ICE in force for the peer's description remote: the lite
// responder, or the full agent with the peer's credentials and candidates
// (a=end-of-candidates included). Zero credentials stop ICE.
func (m *Media) putICE(ours iceCredentials, remote sdpx.Media, remoteLite, controlling bool) error {
	if !m.full || ours.ufrag == "" {
		return m.setICE(ours, remote.ICEUfrag, remote.ICEPwd)
	}
	m.mu.Lock()
	changed := m.ice != ours || m.iceRemote != remote.ICEUfrag || m.iceRPwd != remote.ICEPwd
	m.mu.Unlock()
	if changed {
		err := m.stream.StartICE(flow.ICEConfig{LocalUfrag: ours.ufrag, LocalPwd: ours.pwd,
			RemoteUfrag: remote.ICEUfrag, RemotePwd: remote.ICEPwd, Controlling: controlling, RemoteLite: remoteLite})
		if err != nil {
			return err
		}
		if remote.ICEUfrag != "" {
			if err := m.stream.SetRemoteICECredentials(remote.ICEUfrag, remote.ICEPwd); err != nil {
				return err
			}
		}
		m.mu.Lock()
		m.ice, m.iceRemote, m.iceRPwd = ours, remote.ICEUfrag, remote.ICEPwd
		m.mu.Unlock()
	}
	m.mu.Lock()
	early, end := m.trickled, m.trickleEnd
	m.trickled, m.trickleEnd = nil, false
	m.mu.Unlock()
	for _, c := range early {
		_ = m.stream.AddRemoteCandidate(c)
	}
	if end {
		remote.EndOfCandidates = true
	}
	for _, c := range remote.Candidates {
		if c.IsUDP() {
			// Candidates the agent cannot use (a second component with
			// rtcp-mux, an unspecified address) are left out.
			_ = m.stream.AddRemoteCandidate(flowCandidate(c))
		}
	}
	if remote.EndOfCandidates {
		return m.stream.EndOfRemoteCandidates()
	}
	return nil
}

// remoteCandidate gives a trickled candidate of the peer to the full agent,
// or keeps it until the agent starts. ICE-lite needs none.
func (m *Media) remoteCandidate(c sdpx.Candidate) error {
	if !m.full || !c.IsUDP() {
		return nil
	}
	m.mu.Lock()
	if m.ice.ufrag == "" {
		if len(m.trickled) < 64 {
			m.trickled = append(m.trickled, flowCandidate(c))
		}
		m.mu.Unlock()
		return nil
	}
	m.mu.Unlock()
	err := m.stream.AddRemoteCandidate(flowCandidate(c))
	if errors.Is(err, flow.ErrInvalidCandidate) {
		return nil // e.g. an RTCP candidate with rtcp-mux
	}
	return err
}

// remoteEndOfCandidates records the end of the peer's trickled candidates,
// or keeps it until the full agent starts.
func (m *Media) remoteEndOfCandidates() error {
	if !m.full {
		return nil
	}
	m.mu.Lock()
	if m.ice.ufrag == "" {
		m.trickleEnd = true
		m.mu.Unlock()
		return nil
	}
	m.mu.Unlock()
	return m.stream.EndOfRemoteCandidates()
}

// flowCandidate converts an SDP candidate for the flow's agent.
func flowCandidate(c sdpx.Candidate) flow.Candidate {
	t := flow.CandidateHost
	switch c.Type {
	case sdpx.ServerReflexive:
		t = flow.CandidateServerReflexive
	case sdpx.PeerReflexive:
		t = flow.CandidatePeerReflexive
	case sdpx.Relayed:
		t = flow.CandidateRelay
	}
	return flow.Candidate{Foundation: c.Foundation, Component: c.Component, Priority: c.Priority, Addr: c.Addr, Type: t, Related: c.Related}
}

// sdpCandidate converts one of the flow agent's candidates for our SDP.
func sdpCandidate(c flow.Candidate) sdpx.Candidate {
	t := sdpx.Host
	switch c.Type {
	case flow.CandidateServerReflexive:
		t = sdpx.ServerReflexive
	case flow.CandidatePeerReflexive:
		t = sdpx.PeerReflexive
	case flow.CandidateRelay:
		t = sdpx.Relayed
	}
	return sdpx.Candidate{Foundation: c.Foundation, Component: c.Component, Transport: "UDP", Priority: c.Priority, Addr: c.Addr, Type: t, Related: c.Related}
}

// Fingerprint returns our DTLS certificate's fingerprint, for a=fingerprint.
func (m *Media) Fingerprint() dtlssrtp.Fingerprint { return m.stream.Fingerprint() }

// Close closes the stream. It is idempotent.
func (m *Media) Close() error {
	m.cancel()
	err := m.stream.Close()
	if errors.Is(err, mediastream.ErrClosed) {
		return nil
	}
	return err
}
