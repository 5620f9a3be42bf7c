package flow

import (
	"bytes"
	"testing"
)

func record(typ byte, epoch uint16, body string) []byte {
	r := []byte{typ, 0xfe, 0xfd, byte(epoch >> 8), byte(epoch), 0, 0, 0, 0, 0, 1, 0, byte(len(body))}
	return append(r, body...)
}

func TestStripEarlyEpochs(t *testing.T) {
	join := func(rs ...[]byte) []byte { return bytes.Join(rs, nil) }
	hello := record(22, 0, "clienthello")
	oldAlert := record(21, 1, "close-notify-of-old")
	ccs := record(20, 0, "\x01")
	fin := record(22, 1, "finished")
	cases := []struct {
		name   string
		in     []byte
		want   []byte
		sawCCS bool
	}{
		{"old association's alert before a new ClientHello", join(oldAlert, hello), hello, false},
		{"flight with CCS and Finished", join(hello, ccs, fin), join(hello, ccs, fin), true},
		{"Finished without CCS", join(fin), nil, false},
		{"only an old alert", oldAlert, nil, false},
		{"truncated tail kept out", append(append([]byte{}, hello...), 22, 0xfe), hello, false},
	}
	for _, c := range cases {
		b := append([]byte(nil), c.in...)
		n, saw := stripEarlyEpochs(b)
		if !bytes.Equal(b[:n], c.want) || saw != c.sawCCS {
			t.Errorf("%s: got %x (ccs %v), want %x (ccs %v)", c.name, b[:n], saw, c.want, c.sawCCS)
		}
	}
	if !endsWithCCS(join(hello, ccs)) || endsWithCCS(join(hello, ccs, fin)) || endsWithCCS(nil) {
		t.Error("endsWithCCS")
	}
}
