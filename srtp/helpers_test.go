package srtp_test

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/reflow-go/reflow/srtp"
)

// TestMain fails the run when a test leaves one of its goroutines behind or
// a panic inside pion/srtp had to be recovered.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		left := ourGoroutines()
		for i := 0; i < 1000 && len(left) > 0; i++ {
			runtime.Gosched()
			left = ourGoroutines()
		}
		if len(left) > 0 {
			fmt.Fprintf(os.Stderr, "goroutines left behind:\n%s\n", strings.Join(left, "\n\n"))
			code = 1
		}
		if p := srtp.RecoveredPanics(); p != 0 {
			fmt.Fprintf(os.Stderr, "%d panics inside pion/srtp were recovered\n", p)
			code = 1
		}
	}
	os.Exit(code)
}

// ourGoroutines returns the stacks of goroutines running code of this
// package or its tests, other than the caller (the testing framework's and
// the fuzzing engine's own goroutines are not ours).
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var ours []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "reflow-go/reflow/srtp") && !strings.Contains(g, "ourGoroutines") {
			ours = append(ours, g)
		}
	}
	return ours
}

// unhex decodes hex with any white space in it.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// testKeys returns deterministic keys for s, different for each seed.
func testKeys(s srtp.Suite, seed byte) srtp.Keys {
	k := srtp.Keys{Suite: s, Key: make([]byte, s.KeyLen()), Salt: make([]byte, s.SaltLen())}
	for i := range k.Key {
		k.Key[i] = seed + byte(i)*7
	}
	for i := range k.Salt {
		k.Salt[i] = seed ^ byte(i)*13
	}
	return k
}

// rtpPacket returns an RTP packet with a 12-byte header and payloadLen bytes
// of payload.
func rtpPacket(seq uint16, ssrc uint32, payloadLen int) []byte {
	p := make([]byte, 12+payloadLen)
	p[0] = 0x80
	p[1] = 0 // PCMU
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], uint32(seq)*160)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	for i := 12; i < len(p); i++ {
		p[i] = byte(i) ^ byte(seq)
	}
	return p
}

// rtcpPacket returns a 28-byte RTCP sender report without report blocks.
func rtcpPacket(ssrc uint32, n uint32) []byte {
	p := make([]byte, 28)
	p[0] = 0x80
	p[1] = 200
	binary.BigEndian.PutUint16(p[2:], 6)
	binary.BigEndian.PutUint32(p[4:], ssrc)
	binary.BigEndian.PutUint32(p[8:], 0xE0000000|n) // NTP seconds
	binary.BigEndian.PutUint32(p[20:], n)           // packet count
	return p
}

// pair returns an Encrypter and a Decrypter (default replay window) for k.
func pair(t testing.TB, k srtp.Keys) (*srtp.Encrypter, *srtp.Decrypter) {
	t.Helper()
	enc, err := srtp.NewEncrypter(k)
	if err != nil {
		t.Fatalf("NewEncrypter(%v): %v", k, err)
	}
	dec, err := srtp.NewDecrypter(k, 0)
	if err != nil {
		t.Fatalf("NewDecrypter(%v): %v", k, err)
	}
	return enc, dec
}
