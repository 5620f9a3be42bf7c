package srtp

import (
	"errors"
	"fmt"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	psrtp "github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/replaydetector"
)

// DefaultReplayWindow is the replay window, in packets, that NewDecrypter
// uses for SRTP and SRTCP when given 0 (RFC 3711 §3.3.2 asks for at least 64).
const DefaultReplayWindow = 64

// MaxReplayWindow is the largest replay window NewDecrypter accepts.
const MaxReplayWindow = 1 << 15

// Decrypter authenticates and decrypts incoming SRTP and SRTCP packets with
// one set of master keys (one direction of a session), with replay
// protection. Its methods are safe for concurrent use.
type Decrypter struct {
	mu      sync.Mutex
	ctx     *psrtp.Context
	rtpHdr  rtp.Header  // reused so pion does not allocate
	rtcpHdr rtcp.Header // reused so pion does not allocate
	replay  bool        // set by the replay detectors when they reject
}

// NewDecrypter returns a Decrypter for k, which must pass k.Validate. A
// non-empty k.MKI is required in every packet (another MKI fails with
// ErrAuthFailed). replayWindow is the replay window for SRTP and for SRTCP,
// per SSRC: 0 means DefaultReplayWindow, a negative value turns replay
// protection off, and values above MaxReplayWindow give ErrUnsupportedParam.
// k.Lifetime is not enforced on receive.
func NewDecrypter(k Keys, replayWindow int) (*Decrypter, error) {
	if replayWindow == 0 {
		replayWindow = DefaultReplayWindow
	}
	if replayWindow > MaxReplayWindow {
		return nil, fmt.Errorf("%w: replay window %d above %d", ErrUnsupportedParam, replayWindow, MaxReplayWindow)
	}
	d := &Decrypter{}
	var opts []psrtp.ContextOption
	if replayWindow > 0 {
		w := uint(replayWindow)
		opts = append(opts,
			psrtp.SRTPReplayDetectorFactory(func() replaydetector.ReplayDetector {
				return newWatchedDetector(w, maxSRTPIndex, &d.replay)
			}),
			psrtp.SRTCPReplayDetectorFactory(func() replaydetector.ReplayDetector {
				return newWatchedDetector(w, maxSRTCPIndex, &d.replay)
			}))
	}
	ctx, err := newContext(k, opts...)
	if err != nil {
		return nil, err
	}
	d.ctx = ctx
	return d, nil
}

// UnprotectRTP authenticates and decrypts the SRTP packet pkt and appends
// the RTP packet to dst[:0], returning it. No allocation happens when
// cap(dst) >= len(pkt), except for packets of an SSRC that has not yet
// authenticated (pion builds its state for them). dst may be pkt[:0] to
// decrypt in place; otherwise it must not overlap pkt. Errors match ErrAuthFailed, ErrReplay,
// ErrMalformedPacket or ErrUninitialized; nothing is returned with them, and
// a packet that fails authentication does not advance the replay window.
func (d *Decrypter) UnprotectRTP(dst, pkt []byte) (out []byte, err error) {
	if d == nil {
		return nil, ErrUninitialized
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, panicError(r)
		}
	}()
	if d.ctx == nil {
		return nil, ErrUninitialized
	}
	d.replay = false
	if !isRTPv2(pkt) {
		return nil, fmt.Errorf("%w: not an RTP version 2 packet", ErrMalformedPacket)
	}
	out, err = d.ctx.DecryptRTP(dst[:0], pkt, &d.rtpHdr)
	if err != nil {
		return nil, d.classify(err)
	}
	return out, nil
}

// UnprotectRTCP authenticates and decrypts the SRTCP packet pkt and appends
// the RTCP packet to dst[:0], returning it. No allocation happens when
// cap(dst) >= len(pkt), except 12 bytes inside pion/srtp with the AEAD
// suites. dst may be pkt[:0] to decrypt in place; otherwise it
// must not overlap pkt. Errors are as for UnprotectRTP.
func (d *Decrypter) UnprotectRTCP(dst, pkt []byte) (out []byte, err error) {
	if d == nil {
		return nil, ErrUninitialized
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, panicError(r)
		}
	}()
	if d.ctx == nil {
		return nil, ErrUninitialized
	}
	d.replay = false
	out, err = d.ctx.DecryptRTCP(dst[:0], pkt, &d.rtcpHdr)
	if err != nil {
		return nil, d.classify(err)
	}
	return out, nil
}

// classify maps an error of pion's Decrypt functions to our sentinels.
// Called with d.mu held.
func (d *Decrypter) classify(err error) error {
	switch {
	case d.replay:
		return fmt.Errorf("%w: %w", ErrReplay, err)
	case errors.Is(err, psrtp.ErrFailedToVerifyAuthTag), errors.Is(err, psrtp.ErrMKINotFound):
		return fmt.Errorf("%w: %w", ErrAuthFailed, err)
	default:
		return fmt.Errorf("%w: %w", ErrMalformedPacket, err)
	}
}
