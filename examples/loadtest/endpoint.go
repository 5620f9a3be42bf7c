package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flow"
	"github.com/reflow-go/reflow/flowmanager"
	"github.com/reflow-go/reflow/mediastream"
	"github.com/reflow-go/reflow/srtp"
)

// endpoint is one local stream under test: its setup timing, its sender state
// (owned by one sender goroutine) and its receiver statistics (owned by the
// reader goroutine of its RTP flow).
type endpoint struct {
	idx   int
	ssrc  uint32
	s     *mediastream.Stream
	keys  srtp.Keys // our SDES key (zero without SDES)
	start time.Time

	ready   chan struct{} // closed by OnReady or OnError, whichever comes first
	once    sync.Once
	tuples  [2]flow.Tuple
	errMu   sync.Mutex
	err     error // first failure
	upAt    atomic.Int64
	up      atomic.Bool
	failedN atomic.Uint64 // failures reported after setup

	dtlsStarted atomic.Bool // StartDTLS was called (e.s is set)

	// sender (one sender goroutine)
	seq      uint16
	sent     atomic.Uint64
	rtcpSent atomic.Uint64
	sendErrs atomic.Uint64

	raw [2]*rawConn // -raw: connected UDP sockets instead of a stream

	// receiver (the RTP reader goroutine)
	rx     rxStats
	rtcpIn atomic.Uint64
}

// OnReady implements mediastream.Handler.
func (e *endpoint) OnReady(_ *mediastream.Stream, rtp, rtcp flow.Tuple) {
	e.tuples = [2]flow.Tuple{rtp, rtcp}
	e.once.Do(func() { close(e.ready) })
}

// OnError implements mediastream.Handler.
func (e *endpoint) OnError(_ *mediastream.Stream, err error) {
	e.setErr(err)
	if e.up.Load() {
		e.failedN.Add(1)
	}
	e.once.Do(func() { close(e.ready) })
}

func (e *endpoint) setErr(err error) {
	e.errMu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.errMu.Unlock()
}

func (e *endpoint) failure() error {
	e.errMu.Lock()
	defer e.errMu.Unlock()
	return e.err
}

// markUp records the end of the endpoint's setup.
func (e *endpoint) markUp(t time.Time) {
	if e.up.CompareAndSwap(false, true) {
		e.upAt.Store(int64(t.Sub(e.start)))
	}
}

// setupTime is how long the endpoint took from NewStream to a usable (and, with
// SRTP, secure) media path.
func (e *endpoint) setupTime() time.Duration { return time.Duration(e.upAt.Load()) }

// mediaConn is what media runs on: a *flow.Flow, or a plain UDP socket for
// the -raw baseline.
type mediaConn interface {
	Write(p []byte) (int, error)
	ReadFromAddrPort(p []byte) (int, netip.AddrPort, error)
}

// conns returns the connections media uses: the raw sockets with -raw, else
// the stream's flows (RTCP falls back to RTP with rtcp-mux).
func (e *endpoint) conns() (rtp, rtcp mediaConn) {
	if e.raw[0] != nil {
		return e.raw[0], e.raw[1]
	}
	if e.s.RTCP() == nil {
		return e.s.RTP(), e.s.RTP()
	}
	return e.s.RTP(), e.s.RTCP()
}

// flows returns the endpoint's RTP and RTCP flows (RTCP may be nil).
func (e *endpoint) flows() (rtp, rtcp *flow.Flow) { return e.s.RTP(), e.s.RTCP() }

// secure reports whether every flow of the stream has its SRTP keys.
func (e *endpoint) secure() bool {
	for _, f := range e.s.Flows() {
		if !f.IsSecure() {
			return false
		}
	}
	return true
}

// peerInfo is what the other end of a pair tells us (in SDP, in a real call).
type peerInfo struct {
	RTP, RTCP string // session tuples' addresses, ip:port
	Crypto    string // a=crypto value (SDES)
	FP        string // a=fingerprint value (DTLS)
}

// info describes the endpoint for its peer.
func (e *endpoint) info(fp dtlssrtp.Fingerprint) peerInfo {
	p := peerInfo{RTP: e.tuples[0].Addr.String()}
	if e.tuples[1].IsValid() {
		p.RTCP = e.tuples[1].Addr.String()
	}
	if e.keys.Suite != 0 {
		p.Crypto = srtp.Crypto{Tag: 1, Keys: e.keys}.Value()
	}
	if fp.Hash != "" {
		p.FP = fp.String()
	}
	return p
}

// open creates the stream and, with SDES, our outbound key. It does not wait
// for readiness.
func (e *endpoint) open(ctx context.Context, m *flowmanager.Manager, o *opts) error {
	e.ready = make(chan struct{})
	e.start = time.Now()
	s, err := m.NewStream(ctx, o.streamConfig(), e)
	if err != nil {
		e.setErr(err)
		e.once.Do(func() { close(e.ready) })
		return err
	}
	e.s = s
	if o.srtpMode == "sdes" {
		k, err := srtp.GenerateKeys(o.suiteID)
		if err != nil {
			return err
		}
		e.keys = k
		if err := s.SetOutboundSRTP(k); err != nil {
			return err
		}
	}
	return nil
}

// waitReady waits for OnReady (or a failure).
func (e *endpoint) waitReady(ctx context.Context) error {
	select {
	case <-e.ready:
		return e.failure()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// configure points the endpoint at its peer and keys it: SDES inbound key, or
// the peer's fingerprint and the DTLS handshake in role. Without DTLS the
// endpoint is up when this returns.
func (e *endpoint) configure(p peerInfo, o *opts, role dtlssrtp.Role) error {
	rtpF, rtcpF := e.flows()
	dst, err := parseAddrPort(p.RTP)
	if err != nil {
		return err
	}
	if err := rtpF.SetActiveDestination(dst); err != nil {
		return err
	}
	if rtcpF != nil {
		dst, err := parseAddrPort(p.RTCP)
		if err != nil {
			return fmt.Errorf("peer RTCP: %w", err)
		}
		if err := rtcpF.SetActiveDestination(dst); err != nil {
			return err
		}
	}
	switch o.srtpMode {
	case "sdes":
		c, err := srtp.ParseCrypto(p.Crypto)
		if err != nil {
			return err
		}
		if err := e.s.SetInboundSRTP(c.Keys); err != nil {
			return err
		}
	case "dtls":
		fp, err := dtlssrtp.ParseFingerprint(p.FP)
		if err != nil {
			return err
		}
		if err := e.s.SetRemoteFingerprint(fp); err != nil {
			return err
		}
		err = e.s.StartDTLS(role)
		e.dtlsStarted.Store(true)
		return err
	}
	e.markUp(time.Now())
	return nil
}

// watchSecure marks DTLS endpoints up as their flows become secure, polling all
// of them from one goroutine (the library has no "secure" event). It returns
// when every endpoint is up or failed, or ctx ends.
func watchSecure(ctx context.Context, eps []*endpoint) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		pending := 0
		now := time.Now()
		for _, e := range eps {
			if e.up.Load() || e.failure() != nil {
				continue
			}
			if e.dtlsStarted.Load() && e.secure() {
				e.markUp(now)
				continue
			}
			pending++
		}
		if pending == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rxStats are RFC 3550 receiver statistics for one RTP source.
type rxStats struct {
	received  atomic.Uint64
	reordered atomic.Uint64
	started   bool
	baseExt   uint64 // extended sequence number of the first packet
	maxExt    uint64 // highest extended sequence number seen
	transit   int64
	jitter    float64 // RFC 3550 A.8, in timestamp units (8 kHz)
	maxExtPub atomic.Uint64
	basePub   atomic.Uint64
	jitterPub atomic.Uint64 // jitter*16 as an integer, for other goroutines
}

// clock8k is the arrival time in 8 kHz timestamp units.
func clock8k(epoch time.Time) int64 { return int64(time.Since(epoch)) * 8000 / int64(time.Second) }

// onRTP updates the statistics with one received RTP packet.
func (r *rxStats) onRTP(p []byte, arrival int64) {
	if len(p) < 12 {
		return
	}
	seq := binary.BigEndian.Uint16(p[2:])
	ts := binary.BigEndian.Uint32(p[4:])
	r.received.Add(1)
	transit := arrival - int64(ts)
	if !r.started {
		r.started = true
		r.baseExt = 1<<16 + uint64(seq)
		r.maxExt = r.baseExt
		r.transit = transit
		r.basePub.Store(r.baseExt)
		r.maxExtPub.Store(r.maxExt)
		return
	}
	ext := uint64(int64(r.maxExt) + int64(int16(seq-uint16(r.maxExt))))
	if ext > r.maxExt {
		r.maxExt = ext
		r.maxExtPub.Store(ext)
	} else {
		r.reordered.Add(1) // late (or duplicate)
	}
	d := transit - r.transit
	r.transit = transit
	if d < 0 {
		d = -d
	}
	r.jitter += (float64(d) - r.jitter) / 16
	r.jitterPub.Store(uint64(r.jitter * 16))
}

// expected is the number of packets expected from the first to the highest received.
func (r *rxStats) expected() uint64 {
	if r.received.Load() == 0 {
		return 0
	}
	return r.maxExtPub.Load() - r.basePub.Load() + 1
}

// jitterMs is the current interarrival jitter in milliseconds.
func (r *rxStats) jitterMs() float64 { return float64(r.jitterPub.Load()) / 16 / 8 }

var errNotUp = errors.New("not up")
