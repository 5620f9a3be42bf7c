package srtp

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	psrtp "github.com/pion/srtp/v3"
)

func internalKeys(s Suite) Keys {
	return Keys{Suite: s, Key: make([]byte, s.KeyLen()), Salt: make([]byte, s.SaltLen())}
}

func rtpPkt(seq uint16, ssrc uint32) []byte {
	p := make([]byte, 12+20)
	p[0] = 0x80
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	return p
}

func rtcpPkt(ssrc uint32) []byte {
	p := make([]byte, 28)
	p[0], p[1], p[3] = 0x80, 200, 6
	binary.BigEndian.PutUint32(p[4:], ssrc)
	return p
}

// TestRecoverPionPanic drives a pion context whose cipher is missing, so
// that pion dereferences a nil interface, and checks that every method turns
// the panic into ErrMalformedPacket, counts it and releases its mutex.
func TestRecoverPionPanic(t *testing.T) {
	before := recoveredPanics.Load()
	defer recoveredPanics.Store(before) // the panics here are deliberate
	e := &Encrypter{ctx: &psrtp.Context{}}
	d := &Decrypter{ctx: &psrtp.Context{}}
	calls := []func() ([]byte, error){
		func() ([]byte, error) { return e.ProtectRTP(nil, rtpPkt(1, 1)) },
		func() ([]byte, error) { return e.ProtectRTCP(nil, rtcpPkt(1)) },
		func() ([]byte, error) { return d.UnprotectRTP(nil, rtpPkt(1, 1)) },
		func() ([]byte, error) { return d.UnprotectRTCP(nil, rtcpPkt(1)) },
	}
	for i, f := range calls {
		for range 2 { // a second call would deadlock if the mutex were held
			out, err := f()
			if !errors.Is(err, ErrMalformedPacket) || out != nil {
				t.Errorf("call %d: %d bytes, %v; want ErrMalformedPacket", i, len(out), err)
			}
		}
	}
	if got := recoveredPanics.Load() - before; got != uint64(2*len(calls)) {
		t.Errorf("recovered %d panics, want %d", got, 2*len(calls))
	}
}

// TestPionPacketLimits checks that pion's refusal to wrap the SRTP packet
// index (2^48) or the SRTCP index (2^31) is reported as ErrKeyExpired.
func TestPionPacketLimits(t *testing.T) {
	for _, s := range Suites() {
		e, err := NewEncrypter(internalKeys(s))
		if err != nil {
			t.Fatal(err)
		}
		e.ctx.SetROC(7, math.MaxUint32)
		if _, err := e.ProtectRTP(nil, rtpPkt(65535, 7)); err != nil {
			t.Fatalf("%v: last SRTP index: %v", s, err)
		}
		if _, err := e.ProtectRTP(nil, rtpPkt(0, 7)); !errors.Is(err, ErrKeyExpired) {
			t.Errorf("%v: SRTP index past 2^48: %v, want ErrKeyExpired", s, err)
		}
		e.ctx.SetIndex(7, maxSRTCPIndex-1)
		if _, err := e.ProtectRTCP(nil, rtcpPkt(7)); err != nil {
			t.Fatalf("%v: last SRTCP index: %v", s, err)
		}
		if _, err := e.ProtectRTCP(nil, rtcpPkt(7)); !errors.Is(err, ErrKeyExpired) {
			t.Errorf("%v: SRTCP index past 2^31: %v, want ErrKeyExpired", s, err)
		}
		// Other streams are unaffected.
		if _, err := e.ProtectRTP(nil, rtpPkt(0, 8)); err != nil {
			t.Errorf("%v: other SSRC: %v", s, err)
		}
	}
}
