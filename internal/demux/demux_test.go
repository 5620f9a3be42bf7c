package demux

import "testing"

func TestClassify(t *testing.T) {
	cases := []struct {
		b    []byte
		want Kind
	}{
		{nil, Unknown},
		{[]byte{0x00, 0x01}, STUN},
		{[]byte{0x03}, STUN},
		{[]byte{0x04}, Unknown},
		{[]byte{16}, ZRTP},
		{[]byte{20, 0xfe}, DTLS},
		{[]byte{63}, DTLS},
		{[]byte{64, 0}, ChannelData},
		{[]byte{79, 0}, ChannelData},
		{[]byte{80}, Unknown},
		{[]byte{0x80, 0}, RTP},    // PT 0
		{[]byte{0x80, 0x80}, RTP}, // marker, PT 0
		{[]byte{0x80, 200}, RTCP}, // SR
		{[]byte{0x81, 201}, RTCP}, // RR
		{[]byte{0x80, 192}, RTCP}, // lower bound
		{[]byte{0x80, 223}, RTCP}, // upper bound
		{[]byte{0x80, 224}, RTP},  // marker + PT 96
		{[]byte{0x80}, RTP},       // one byte: cannot be RTCP
		{[]byte{191, 200}, RTCP},  // upper first-byte bound
		{[]byte{192, 200}, Unknown},
	}
	for _, c := range cases {
		if got := Classify(c.b); got != c.want {
			t.Errorf("Classify(%v) = %v, want %v", c.b, got, c.want)
		}
	}
}
