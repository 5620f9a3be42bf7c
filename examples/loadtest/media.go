package main

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

const (
	ptime       = 20 * time.Millisecond
	rtpSize     = 172 // 12-byte header + 160 bytes of G.711
	rtcpEvery   = 250 // ticks: 5 s
	tsPerPacket = 160
)

// toolGoroutines counts the goroutines this tool runs while media flows
// (readers and senders), so that they can be told apart from the library's.
var toolGoroutines atomic.Int64

// media runs the senders and readers of eps until ctx ends.
type media struct {
	eps     []*endpoint
	epoch   time.Time
	wg      sync.WaitGroup
	readers sync.WaitGroup
	skipped atomic.Uint64 // ticks a late sender skipped (beyond maxCatchUp)
}

// startReaders starts one reader goroutine per flow (the library's read blocks).
func (m *media) startReaders() {
	for _, e := range m.eps {
		rtpF, rtcpF := e.conns()
		m.readers.Add(1)
		toolGoroutines.Add(1)
		go func() {
			defer m.readers.Done()
			defer toolGoroutines.Add(-1)
			buf := make([]byte, 1500)
			for {
				n, _, err := rtpF.ReadFromAddrPort(buf)
				if err != nil {
					return
				}
				if n > 1 && buf[1] >= 200 && buf[1] <= 204 { // RTCP muxed on RTP
					e.rtcpIn.Add(1)
					continue
				}
				e.rx.onRTP(buf[:n], clock8k(m.epoch))
			}
		}()
		if rtcpF != nil && rtcpF != rtpF {
			m.readers.Add(1)
			toolGoroutines.Add(1)
			go func() {
				defer m.readers.Done()
				defer toolGoroutines.Add(-1)
				buf := make([]byte, 1500)
				for {
					if _, _, err := rtcpF.ReadFromAddrPort(buf); err != nil {
						return
					}
					e.rtcpIn.Add(1)
				}
			}()
		}
	}
}

// startSenders starts n sender goroutines; each serves every n-th endpoint on
// a shared 20 ms schedule, offset from the others so their bursts interleave.
func (m *media) startSenders(ctx context.Context, n int) {
	if n < 1 {
		n = 1
	}
	for j := 0; j < n; j++ {
		var mine []*endpoint
		for i := j; i < len(m.eps); i += n {
			mine = append(mine, m.eps[i])
		}
		if len(mine) == 0 {
			continue
		}
		m.wg.Add(1)
		toolGoroutines.Add(1)
		go func(j int) {
			defer m.wg.Done()
			defer toolGoroutines.Add(-1)
			m.send(ctx, mine, time.Duration(j)*ptime/time.Duration(n))
		}(j)
	}
}

func (m *media) send(ctx context.Context, eps []*endpoint, offset time.Duration) {
	select {
	case <-time.After(offset):
	case <-ctx.Done():
		return
	}
	start := time.Now()
	rtp := make([]byte, rtpSize)
	rtp[0], rtp[1] = 0x80, 0 // V=2, PT 0 (PCMU)
	for i := 12; i < rtpSize; i++ {
		rtp[i] = 0xff // µ-law silence
	}
	sr := make([]byte, 28) // RTCP SR, no report blocks
	sr[0], sr[1] = 0x80, 200
	binary.BigEndian.PutUint16(sr[2:], 6)
	t := time.NewTicker(ptime)
	defer t.Stop()
	last := int64(-1)
	for {
		// The nominal sample clock: a sender woken late sends the packets it
		// owes (at most maxCatchUp per stream) with their nominal timestamps,
		// so every stream keeps 50 packets/s and lateness shows as jitter.
		now := int64(time.Since(start) / ptime)
		first := max(last+1, now-maxCatchUp+1)
		m.skipped.Add(uint64(first - (last + 1)))
		for tick := first; tick <= now; tick++ {
			ts := uint32(tick*tsPerPacket) + uint32(offset/time.Millisecond)*8
			for _, e := range eps {
				m.sendOne(e, rtp, sr, tick, ts)
			}
		}
		last = now
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maxCatchUp bounds the packets a late sender sends per stream at once.
const maxCatchUp = 5

func (m *media) sendOne(e *endpoint, rtp, sr []byte, tick int64, ts uint32) {
	rtpF, rtcpF := e.conns()
	binary.BigEndian.PutUint16(rtp[2:], e.seq)
	binary.BigEndian.PutUint32(rtp[4:], ts)
	binary.BigEndian.PutUint32(rtp[8:], e.ssrc)
	if _, err := rtpF.Write(rtp); err != nil {
		e.sendErrs.Add(1)
	} else {
		e.seq++
		e.sent.Add(1)
	}
	if (tick+int64(e.idx))%rtcpEvery == 0 {
		binary.BigEndian.PutUint32(sr[4:], e.ssrc)
		binary.BigEndian.PutUint32(sr[16:], ts)
		binary.BigEndian.PutUint32(sr[20:], uint32(e.sent.Load()))
		if _, err := rtcpF.Write(sr); err == nil {
			e.rtcpSent.Add(1)
		}
	}
}

// totals sums the counters of all endpoints.
type totals struct {
	sent, received, expected, reordered, rtcpSent, rtcpIn, sendErrs, failed uint64
	up                                                                      int
	jitterSum, jitterMax                                                    float64
	withRx                                                                  int
}

func sum(eps []*endpoint) totals {
	var t totals
	for _, e := range eps {
		if e.up.Load() {
			t.up++
		}
		t.sent += e.sent.Load()
		t.received += e.rx.received.Load()
		t.expected += e.rx.expected()
		t.reordered += e.rx.reordered.Load()
		t.rtcpSent += e.rtcpSent.Load()
		t.rtcpIn += e.rtcpIn.Load()
		t.sendErrs += e.sendErrs.Load()
		t.failed += e.failedN.Load()
		if e.rx.received.Load() > 0 {
			j := e.rx.jitterMs()
			t.jitterSum += j
			t.withRx++
			if j > t.jitterMax {
				t.jitterMax = j
			}
		}
	}
	return t
}
