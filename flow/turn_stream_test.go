package flow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/reflow-go/reflow/internal/pionlog"
)

// frameStream is a frameReader over b with channels 0x4000 and 0x4001 known.
func frameStream(b []byte) *frameReader {
	t := &turnState{f: &Flow{log: pionlog.Discard}}
	t.initPeers()
	chans := map[uint16]netip.AddrPort{0x4000: netip.MustParseAddrPort("192.0.2.1:1"), 0x4001: netip.MustParseAddrPort("192.0.2.2:2")}
	t.chans.Store(&chans)
	return &frameReader{t: t, src: bytes.NewReader(b), buf: make([]byte, 0, 64)}
}

func channelFrame(ch uint16, payload []byte, pad bool) []byte {
	b := binary.BigEndian.AppendUint16(nil, ch)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	b = append(b, payload...)
	for pad && len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// readAll returns the frames of a stream and the error that ended it.
func readAll(r *frameReader) ([][]byte, error) {
	var out [][]byte
	for range 1000 {
		p := make([]byte, bufSize)
		n, err := r.next(p)
		if err != nil {
			return out, err
		}
		out = append(out, p[:n])
	}
	return out, errors.New("too many frames")
}

// Padded (RFC 8656 §12.5) and unpadded (reTurnServer) ChannelData streams,
// with STUN messages between, split into the same frames; the reader
// notices the unpadded framing; garbage ends the stream with errFraming.
func TestFrameReaderPadding(t *testing.T) {
	stunMsg := make([]byte, 20)
	binary.BigEndian.PutUint16(stunMsg, 0x0101)
	binary.BigEndian.PutUint32(stunMsg[4:], stunMagic)
	var frames [][]byte
	for l := 160; l <= 167; l++ {
		frames = append(frames, channelFrame(0x4000+uint16(l%2), bytes.Repeat([]byte{byte(l)}, l), false))
		if l%3 == 0 {
			frames = append(frames, stunMsg)
		}
	}
	for _, pad := range []bool{true, false} {
		var stream []byte
		for _, f := range frames {
			if f[0] >= 0x40 {
				f = channelFrame(binary.BigEndian.Uint16(f), f[4:], pad)
			}
			stream = append(stream, f...)
		}
		r := frameStream(stream)
		got, err := readAll(r)
		if !errors.Is(err, io.EOF) || len(got) != len(frames) {
			t.Fatalf("pad=%v: %d frames, %v", pad, len(got), err)
		}
		for i := range frames {
			if !bytes.Equal(got[i], frames[i]) {
				t.Fatalf("pad=%v: frame %d = %x, want %x", pad, i, got[i][:8], frames[i][:8])
			}
		}
		if unpadded := r.t.framing.peerPads.Load() == padNo; unpadded == pad {
			t.Fatalf("pad=%v: detected unpadded=%v", pad, unpadded)
		}
	}
	_, err := readAll(frameStream(append(channelFrame(0x4000, []byte{1, 2, 3}, true), 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99)))
	if !errors.Is(err, errFraming) {
		t.Fatalf("garbage: %v, want errFraming", err)
	}
}

// FuzzFrameReader: any byte stream ends in an error (EOF or errFraming)
// without a panic, and every frame returned is a whole STUN message or
// ChannelData message as its header says.
func FuzzFrameReader(f *testing.F) {
	f.Add(channelFrame(0x4000, []byte{1, 2, 3, 4, 5}, true))
	f.Add(append(channelFrame(0x4000, []byte{1, 2, 3}, false), channelFrame(0x4001, []byte{9}, false)...))
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, err := readAll(frameStream(b))
		if err == nil {
			t.Fatal("a finite stream did not end")
		}
		for _, fr := range frames {
			l := int(binary.BigEndian.Uint16(fr[2:4]))
			if want := map[bool]int{true: 20 + l, false: 4 + l}[fr[0] <= 3]; len(fr) != want {
				t.Fatalf("frame of %d bytes, header says %d", len(fr), want)
			}
		}
	})
}
