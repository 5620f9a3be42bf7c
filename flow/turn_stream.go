package flow

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/reflow-go/reflow/natmode"
)

// TURN over TCP and TLS: framing (RFC 8656 §12.5).
//
// Over a stream a ChannelData message must be padded to a multiple of four
// bytes; the padding is not counted in its length field. Some servers
// (reSIProcate's reTurnServer) neither pad what they send nor skip the
// padding of what they receive. The reader tolerates such a server: after
// an unaligned ChannelData frame it looks at the bytes that follow and
// takes the padding only if what comes after it is a frame (a channel of
// ours or a STUN header with the magic cookie); if that fails and the
// unpadded reading gives a frame, it concludes that the server does not pad
// and reads on that way. A compliant server always passes the first test, so
// it is never misread. If neither reading gives a frame, the connection is
// unusable and the allocation is reported lost with a message naming the
// framing.
//
// The sender pads as the server does. Until the first unaligned frame from
// the server has shown which way it frames, an unaligned packet goes as a
// Send indication (whose framing every server parses) instead of
// ChannelData.

const (
	padUnknown int32 = iota
	padYes
	padNo
)

// framingState is what the reader learnt about the server's framing.
type framingState struct {
	peerPads atomic.Int32
}

// dialServer opens the TCP or TLS connection to the TURN server from the flow's local IP.
func (f *Flow) dialServer(ctx context.Context, server netip.AddrPort, host string) (net.Conn, Tuple, error) {
	nat := f.cfg.NAT
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: f.local.Addr.Addr().AsSlice()}}
	conn, err := d.DialContext(ctx, "tcp", server.String())
	if err != nil {
		return nil, Tuple{}, fmt.Errorf("%w: %w", ErrTURNUnreachable, err)
	}
	tr := TCP
	if nat.Mode == natmode.TURNTLS {
		tr = TLS
		cfg := nat.TLSConfig
		if cfg == nil {
			name := nat.ServerName
			if name == "" {
				name = host
			}
			cfg = &tls.Config{ServerName: name, RootCAs: nat.RootCAs, MinVersion: tls.VersionTLS12}
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			if ctx.Err() != nil {
				return nil, Tuple{}, fmt.Errorf("%w: TLS handshake with %s: %w", ErrTURNUnreachable, server, err)
			}
			return nil, Tuple{}, fmt.Errorf("%w: %w", ErrTURNTLS, err)
		}
		conn = tc
	}
	local, _ := addrPortOf(conn.LocalAddr())
	return conn, Tuple{tr, local}, nil
}

// errFraming is the cause of a loss when the server's stream cannot be parsed.
var errFraming = errors.New("undecodable frame on the TURN connection (neither padded nor unpadded ChannelData framing of RFC 8656 §12.5 fits)")

// streamLoop reads the TCP/TLS connection to the TURN server and hands each
// frame to the flow's receive path.
func (t *turnState) streamLoop() {
	f := t.f
	defer f.wg.Done()
	r := &frameReader{t: t, src: t.stream, buf: make([]byte, 0, 4*bufSize)}
	for {
		pkt := getPacket()
		n, err := r.next(pkt.buf[:])
		if err != nil {
			putPacket(pkt)
			if f.closed.Load() {
				return
			}
			if errors.Is(err, errFraming) {
				f.lose(fmt.Errorf("%s: %w", t.server, err))
			} else {
				f.lose(fmt.Errorf("connection to %s closed: %w", t.server, err))
			}
			_ = t.stream.Close()
			return
		}
		pkt.n, pkt.from = n, t.server
		if !f.receive(pkt) {
			putPacket(pkt)
		}
	}
}

// frameReader splits the server's byte stream into STUN messages and ChannelData frames.
type frameReader struct {
	t       *turnState
	src     io.Reader
	buf     []byte // unread bytes
	pending int    // padding that may follow the last frame (1..3), 0 when none
}

// fill reads until at least n bytes are buffered.
func (r *frameReader) fill(n int) error {
	for len(r.buf) < n {
		if cap(r.buf)-len(r.buf) < 512 {
			nb := make([]byte, len(r.buf), max(2*cap(r.buf), n+bufSize))
			copy(nb, r.buf)
			r.buf = nb
		}
		m, err := r.src.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+m]
		if err != nil && len(r.buf) < n {
			return err
		}
	}
	return nil
}

func (r *frameReader) consume(n int) {
	r.buf = r.buf[:copy(r.buf, r.buf[n:])]
}

// startsFrame reports whether b begins with a plausible frame header: a
// ChannelData header on a channel of ours, or a STUN header with the magic
// cookie. ok is false when more bytes are needed to tell.
func (r *frameReader) startsFrame(b []byte) (frame, ok bool) {
	if len(b) < 1 {
		return false, false
	}
	switch {
	case b[0] >= 0x40 && b[0] <= 0x4F:
		if len(b) < 2 {
			return false, false
		}
		_, known := r.t.channelPeer(binary.BigEndian.Uint16(b))
		return known, true
	case b[0] <= 1:
		if len(b) < 8 {
			return false, false
		}
		return binary.BigEndian.Uint32(b[4:8]) == stunMagic, true
	}
	return false, true
}

// resolvePadding decides whether the padding after the previous unaligned
// ChannelData frame is there, reading more bytes until it can tell.
func (r *frameReader) resolvePadding() error {
	pad := r.pending
	fr := &r.t.framing
	for {
		var pOK, pKnown bool
		if len(r.buf) > pad {
			pOK, pKnown = r.startsFrame(r.buf[pad:])
		}
		uOK, uKnown := r.startsFrame(r.buf)
		if fr.peerPads.Load() == padNo {
			switch {
			case uKnown && uOK:
				r.pending = 0
				return nil
			case uKnown && pKnown && pOK:
				fr.peerPads.Store(padYes)
				r.consume(pad)
				r.pending = 0
				return nil
			case uKnown && pKnown:
				return errFraming
			}
		} else {
			switch {
			case pKnown && pOK:
				fr.peerPads.Store(padYes)
				r.consume(pad)
				r.pending = 0
				return nil
			case pKnown && uKnown && uOK:
				if fr.peerPads.Swap(padNo) != padNo {
					r.t.f.log.Info("TURN server does not pad ChannelData over TCP/TLS (RFC 8656 §12.5); following it", "server", r.t.server)
				}
				r.pending = 0
				return nil
			case pKnown && uKnown:
				return errFraming
			}
		}
		if err := r.fill(len(r.buf) + 1); err != nil {
			return err
		}
	}
}

// next reads the next frame into p and returns its length. Frames too large
// for p are skipped and counted as DropOversize.
func (r *frameReader) next(p []byte) (int, error) {
	for {
		if r.pending > 0 {
			if err := r.fill(1); err != nil {
				return 0, err
			}
			if err := r.resolvePadding(); err != nil {
				return 0, err
			}
		}
		if err := r.fill(4); err != nil {
			return 0, err
		}
		l := int(binary.BigEndian.Uint16(r.buf[2:4]))
		var total int
		channel := false
		switch b0 := r.buf[0]; {
		case b0 <= 3:
			total = 20 + l
			if l%4 != 0 {
				return 0, errFraming
			}
		case b0 >= 0x40 && b0 <= 0x4F:
			total, channel = 4+l, true
		default:
			return 0, errFraming
		}
		if err := r.fill(total); err != nil {
			return 0, err
		}
		n := 0
		if total < len(p) {
			n = copy(p, r.buf[:total])
		} else {
			r.t.f.stats.dropped[DropOversize].Add(1)
		}
		r.consume(total)
		if channel && total%4 != 0 {
			r.pending = 4 - total%4
		}
		if n > 0 {
			return n, nil
		}
	}
}
