package srtp

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	psrtp "github.com/pion/srtp/v3"
)

// Encrypter protects outgoing RTP and RTCP packets with one set of master
// keys (one direction of a session). Its methods are safe for concurrent use.
type Encrypter struct {
	mu       sync.Mutex
	ctx      *psrtp.Context
	rtpHdr   rtp.Header  // reused so pion does not allocate
	rtcpHdr  rtcp.Header // reused so pion does not allocate
	lifetime uint64
	rtpN     uint64 // SRTP packets protected
	rtcpN    uint64 // SRTCP packets protected
}

// NewEncrypter returns an Encrypter for k, which must pass k.Validate. A
// non-empty k.MKI is written into every packet; a non-zero k.Lifetime bounds
// how many packets it protects (ErrKeyExpired).
func NewEncrypter(k Keys) (*Encrypter, error) {
	ctx, err := newContext(k)
	if err != nil {
		return nil, err
	}
	return &Encrypter{ctx: ctx, lifetime: k.Lifetime}, nil
}

// newContext validates k and creates a pion context for it.
func newContext(k Keys, opts ...psrtp.ContextOption) (*psrtp.Context, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	if len(k.MKI) > 0 {
		opts = append(opts, psrtp.MasterKeyIndicator(k.MKI))
	}
	ctx, err := psrtp.CreateContext(k.Key, k.Salt, k.Suite.profile(), opts...)
	if err != nil {
		return nil, fmt.Errorf("srtp: creating %v context: %w", k.Suite, err)
	}
	return ctx, nil
}

// ProtectRTP encrypts and authenticates the RTP packet pkt and appends the
// SRTP packet to dst[:0], returning it. No allocation happens when
// cap(dst) >= len(pkt)+Keys.RTPOverhead() (MaxOverhead always suffices),
// apart from the state created for the first packet of a new SSRC.
// dst may be pkt[:0] to protect in place; otherwise it must not overlap pkt.
// Errors match ErrMalformedPacket, ErrKeyExpired or ErrUninitialized.
func (e *Encrypter) ProtectRTP(dst, pkt []byte) (out []byte, err error) {
	if e == nil {
		return nil, ErrUninitialized
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, panicError(r)
		}
	}()
	if e.ctx == nil {
		return nil, ErrUninitialized
	}
	if e.lifetime != 0 && e.rtpN >= e.lifetime {
		return nil, fmt.Errorf("%w: %d SRTP packets protected", ErrKeyExpired, e.rtpN)
	}
	if !isRTPv2(pkt) {
		return nil, fmt.Errorf("%w: not an RTP version 2 packet", ErrMalformedPacket)
	}
	out, err = e.ctx.EncryptRTP(dst[:0], pkt, &e.rtpHdr)
	if err != nil {
		return nil, e.rtpError(pkt, err)
	}
	e.rtpN++
	return out, nil
}

// ProtectRTCP encrypts and authenticates the RTCP (compound) packet pkt and
// appends the SRTCP packet to dst[:0], returning it. No allocation happens
// when cap(dst) >= len(pkt)+Keys.RTCPOverhead(), except 12 bytes inside
// pion/srtp with the AEAD suites. dst may be pkt[:0] to
// protect in place; otherwise it must not overlap pkt. Errors match
// ErrMalformedPacket, ErrKeyExpired or ErrUninitialized.
func (e *Encrypter) ProtectRTCP(dst, pkt []byte) (out []byte, err error) {
	if e == nil {
		return nil, ErrUninitialized
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, panicError(r)
		}
	}()
	if e.ctx == nil {
		return nil, ErrUninitialized
	}
	if e.lifetime != 0 && e.rtcpN >= e.lifetime {
		return nil, fmt.Errorf("%w: %d SRTCP packets protected", ErrKeyExpired, e.rtcpN)
	}
	out, err = e.ctx.EncryptRTCP(dst[:0], pkt, &e.rtcpHdr)
	if err != nil {
		return nil, e.rtcpError(pkt, err)
	}
	e.rtcpN++
	return out, nil
}

// rtpError classifies an error of pion's EncryptRTP for pkt.
func (e *Encrypter) rtpError(pkt []byte, err error) error {
	if badRTP(pkt) {
		return fmt.Errorf("%w: %w", ErrMalformedPacket, err)
	}
	// pion refuses to wrap the 48-bit packet index (RFC 3711 §9.2).
	if roc, ok := e.ctx.ROC(binary.BigEndian.Uint32(pkt[8:12])); ok && roc == math.MaxUint32 {
		return fmt.Errorf("%w: SRTP packet index exhausted: %w", ErrKeyExpired, err)
	}
	return fmt.Errorf("srtp: protecting RTP: %w", err)
}

// rtcpError classifies an error of pion's EncryptRTCP for pkt.
func (e *Encrypter) rtcpError(pkt []byte, err error) error {
	if badRTCP(pkt) {
		return fmt.Errorf("%w: %w", ErrMalformedPacket, err)
	}
	// pion refuses to wrap the 31-bit SRTCP index (RFC 3711 §9.2).
	if idx, ok := e.ctx.Index(binary.BigEndian.Uint32(pkt[4:8])); ok && idx >= maxSRTCPIndex {
		return fmt.Errorf("%w: SRTCP index exhausted: %w", ErrKeyExpired, err)
	}
	return fmt.Errorf("srtp: protecting RTCP: %w", err)
}
