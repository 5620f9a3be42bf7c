package call

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/reflow-go/reflow/mediastream"
)

// RTCP sender and receiver reports (RFC 3550 §6.4) for the RTP an
// application sends and receives on a call's stream, so that the peer (a
// browser, say) sees round-trip time, loss and jitter, and so does the
// application. The application tells the Reporter what it sends (Sent) and
// gives it every packet it reads (Received: RTP for reception statistics,
// RTCP for the peer's reports); the Reporter sends a compound SR or RR with
// an SDES CNAME at randomised intervals (RFC 3550 §6.3.1) on the stream's
// RTCP path (its RTCP flow, or the RTP flow with rtcp-mux), protected like
// the media (SRTCP).

// DefaultReportInterval is the mean interval between reports (RFC 3550
// §6.2: 5 s minimum for a two-party session).
const DefaultReportInterval = 5 * time.Second

// maxSources bounds the remote sources a Reporter keeps statistics for.
const maxSources = 16

// ReporterConfig configures a Reporter. Zero fields take the documented defaults.
type ReporterConfig struct {
	// SSRC is the SSRC of the RTP the application sends (it must be the one
	// in its packets); zero draws a random one, used by receiver-only
	// reports.
	SSRC uint32
	// ClockRate is the RTP clock rate of the media (8000 for G.711), for
	// interarrival jitter and the sender report's RTP timestamp. Required.
	ClockRate uint32
	// CNAME is the SDES CNAME; "" draws a random one (RFC 7022).
	CNAME string
	// Interval is the mean interval between reports, each randomised to 0.5
	// to 1.5 times it; zero means DefaultReportInterval.
	Interval time.Duration
}

// ReportStats is what the reports tell.
type ReportStats struct {
	// RTT is the round-trip time computed from the peer's last report on
	// our RTP (RFC 3550 §6.4.1, LSR and DLSR); zero until one arrived.
	RTT time.Duration
	// PeerFractionLost is the fraction of our RTP lost as the peer last
	// reported it (0 to 1).
	PeerFractionLost float64
	// PeerJitter is the interarrival jitter of our RTP the peer last
	// reported, in RTP timestamp units.
	PeerJitter uint32
	// Received, Lost and Jitter are our reception statistics of the peer's
	// RTP (all its sources): packets received, cumulative packets lost, and
	// the largest interarrival jitter in RTP timestamp units.
	Received, Lost uint64
	Jitter         uint32
	// SentReports counts the reports sent.
	SentReports uint64
}

// source is the reception state of one remote SSRC (RFC 3550 A.1, A.3, A.8).
type source struct {
	ssrc          uint32
	base, max     uint16
	cycles        uint32
	received      uint32
	expectedPrior uint32
	receivedPrior uint32
	transit       int64
	jitter        float64
	haveTransit   bool
	lastSR        uint32 // middle 32 bits of the NTP time of its last SR
	lastSRAt      time.Time
}

// Reporter sends RTCP reports for a call's stream; see NewReporter.
type Reporter struct {
	s     *mediastream.Stream
	cfg   ReporterConfig
	start time.Time
	stop  chan struct{}
	done  chan struct{}

	mu         sync.Mutex
	sources    []*source
	sent       bool // RTP sent since the last report
	packets    uint32
	octets     uint32
	lastTS     uint32
	lastSentAt time.Time
	stats      ReportStats
	closed     bool
}

// ErrReporterConfig is returned by NewReporter for a configuration it cannot use.
var ErrReporterConfig = errors.New("call: invalid reporter configuration")

// NewReporter starts sending reports for the RTP of stream s (Call.Stream).
// Close stops it; it also stops when the stream closes.
func NewReporter(s *mediastream.Stream, cfg ReporterConfig) (*Reporter, error) {
	if s == nil || cfg.ClockRate == 0 {
		return nil, fmt.Errorf("%w: a stream and a clock rate are required", ErrReporterConfig)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultReportInterval
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	if cfg.SSRC == 0 {
		cfg.SSRC = binary.BigEndian.Uint32(b[:4]) | 1
	}
	if cfg.CNAME == "" {
		cfg.CNAME = fmt.Sprintf("%x", b[4:16])
	}
	r := &Reporter{s: s, cfg: cfg, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r, nil
}

// Sent records an RTP packet the application sent (after writing it).
func (r *Reporter) Sent(pkt []byte) {
	var h rtp.Header
	n, err := h.Unmarshal(pkt)
	if err != nil {
		return
	}
	r.mu.Lock()
	r.sent = true
	r.packets++
	r.octets += uint32(len(pkt) - n)
	r.lastTS, r.lastSentAt = h.Timestamp, time.Now()
	r.mu.Unlock()
}

// Received takes a packet the application read from the stream: RTP
// updates the reception statistics, RTCP the peer's reports.
func (r *Reporter) Received(pkt []byte) {
	if len(pkt) < 2 || pkt[0]>>6 != 2 {
		return
	}
	if pt := pkt[1]; pt >= 192 && pt <= 223 { // RTCP (RFC 5761 §4)
		r.receivedRTCP(pkt)
		return
	}
	var h rtp.Header
	if _, err := h.Unmarshal(pkt); err != nil {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sourceLocked(h.SSRC)
	if s == nil {
		return
	}
	if s.received == 0 {
		s.base, s.max = h.SequenceNumber, h.SequenceNumber
	} else if d := h.SequenceNumber - s.max; d < 0x8000 {
		if h.SequenceNumber < s.max {
			s.cycles += 1 << 16
		}
		s.max = h.SequenceNumber
	}
	s.received++
	// RFC 3550 A.8: interarrival jitter in timestamp units.
	arrival := int64(now.Sub(r.start).Seconds() * float64(r.cfg.ClockRate))
	transit := arrival - int64(h.Timestamp)
	if s.haveTransit {
		d := transit - s.transit
		if d < 0 {
			d = -d
		}
		s.jitter += (float64(d) - s.jitter) / 16
	}
	s.transit, s.haveTransit = transit, true
}

func (r *Reporter) sourceLocked(ssrc uint32) *source {
	for _, s := range r.sources {
		if s.ssrc == ssrc {
			return s
		}
	}
	if len(r.sources) >= maxSources {
		return nil
	}
	s := &source{ssrc: ssrc}
	r.sources = append(r.sources, s)
	return s
}

func (r *Reporter) receivedRTCP(pkt []byte) {
	pkts, err := rtcp.Unmarshal(pkt)
	if err != nil {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range pkts {
		var reports []rtcp.ReceptionReport
		switch p := p.(type) {
		case *rtcp.SenderReport:
			if s := r.sourceLocked(p.SSRC); s != nil {
				s.lastSR, s.lastSRAt = uint32(p.NTPTime>>16), now
			}
			reports = p.Reports
		case *rtcp.ReceiverReport:
			reports = p.Reports
		}
		for _, rr := range reports {
			if rr.SSRC != r.cfg.SSRC {
				continue
			}
			r.stats.PeerFractionLost = float64(rr.FractionLost) / 256
			r.stats.PeerJitter = rr.Jitter
			if rr.LastSenderReport != 0 {
				// RFC 3550 §6.4.1: RTT = A - LSR - DLSR, in 1/65536 s.
				a := uint32(ntpTime(now) >> 16)
				if rtt := a - rr.LastSenderReport - rr.Delay; rtt < 1<<31 {
					r.stats.RTT = time.Duration(uint64(rtt) * uint64(time.Second) >> 16)
				}
			}
		}
	}
}

// ntpTime is t as a 64-bit NTP timestamp (RFC 3550 §4).
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800 // 1900 to 1970, in seconds
	sec := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

// Stats returns what the reports tell so far.
func (r *Reporter) Stats() ReportStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats
	for _, s := range r.sources {
		expected := s.cycles + uint32(s.max) - uint32(s.base) + 1
		st.Received += uint64(s.received)
		if expected > s.received {
			st.Lost += uint64(expected - s.received)
		}
		st.Jitter = max(st.Jitter, uint32(s.jitter))
	}
	return st
}

// report builds the compound report: SR (when we sent RTP since the last
// one) or RR, with a reception report per source heard since the last one,
// then SDES CNAME (RFC 3550 §6.1).
func (r *Reporter) report(now time.Time) ([]byte, error) {
	r.mu.Lock()
	var blocks []rtcp.ReceptionReport
	for _, s := range r.sources {
		expected := s.cycles + uint32(s.max) - uint32(s.base) + 1
		expInt, recInt := expected-s.expectedPrior, s.received-s.receivedPrior
		s.expectedPrior, s.receivedPrior = expected, s.received
		if recInt == 0 {
			continue
		}
		var fraction uint8
		if lostInt := int64(expInt) - int64(recInt); expInt != 0 && lostInt > 0 {
			fraction = uint8(lostInt << 8 / int64(expInt))
		}
		lost := int64(expected) - int64(s.received)
		lost = max(min(lost, 0x7fffff), -0x800000)
		rr := rtcp.ReceptionReport{SSRC: s.ssrc, FractionLost: fraction, TotalLost: uint32(lost) & 0xffffff,
			LastSequenceNumber: s.cycles + uint32(s.max), Jitter: uint32(s.jitter)}
		if !s.lastSRAt.IsZero() {
			rr.LastSenderReport = s.lastSR
			rr.Delay = uint32(now.Sub(s.lastSRAt).Seconds() * 65536)
		}
		blocks = append(blocks, rr)
		if len(blocks) == 31 {
			break
		}
	}
	var first rtcp.Packet
	if r.sent {
		ts := r.lastTS + uint32(now.Sub(r.lastSentAt).Seconds()*float64(r.cfg.ClockRate))
		first = &rtcp.SenderReport{SSRC: r.cfg.SSRC, NTPTime: ntpTime(now), RTPTime: ts,
			PacketCount: r.packets, OctetCount: r.octets, Reports: blocks}
	} else {
		first = &rtcp.ReceiverReport{SSRC: r.cfg.SSRC, Reports: blocks}
	}
	r.sent = false
	r.stats.SentReports++
	r.mu.Unlock()
	sdes := &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: r.cfg.SSRC,
		Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: r.cfg.CNAME}}}}}
	return rtcp.Marshal([]rtcp.Packet{first, sdes})
}

func (r *Reporter) run() {
	defer close(r.done)
	for {
		d := time.Duration(float64(r.cfg.Interval) * (0.5 + mrand.Float64()))
		t := time.NewTimer(d)
		select {
		case <-r.stop:
			t.Stop()
			return
		case <-r.s.Done():
			t.Stop()
			return
		case <-t.C:
		}
		b, err := r.report(time.Now())
		if err != nil {
			continue
		}
		f := r.s.RTCP()
		if f == nil {
			f = r.s.RTP() // rtcp-mux
		}
		_, _ = f.Write(b) // before keying (or without a destination) it is not sent
	}
}

// Close stops the reports and waits for the Reporter's goroutine. It is
// idempotent and safe from any goroutine.
func (r *Reporter) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
	r.mu.Unlock()
	<-r.done
	return nil
}
