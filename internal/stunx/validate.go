package stunx

import (
	"encoding/binary"
	"fmt"
)

const (
	headerSize  = 20
	magicCookie = 0x2112A442

	attrMappedAddress       = 0x0001
	attrMessageIntegrity    = 0x0008
	attrXORPeerAddress      = 0x0012
	attrXORRelayedAddress   = 0x0016
	attrXORMappedAddress    = 0x0020
	attrXORMappedAddressOld = 0x8020 // pion maps it to 0x0020 while decoding
	attrAlternateServer     = 0x8023
	attrFingerprint         = 0x8028
	attrResponseOrigin      = 0x802B
	attrOtherAddress        = 0x802C

	familyIPv4 = 1
	familyIPv6 = 2
)

// IsSTUN reports whether b looks like a single STUN message (RFC 7983 §7
// first byte 0..3, RFC 8489 §5 header): at least 20 bytes, the magic cookie,
// and a body length that is a multiple of four and equals len(b)-20. It does
// not look at the attributes; use Validate or Decode for that.
func IsSTUN(b []byte) bool {
	if len(b) < headerSize || b[0] > 3 {
		return false
	}
	if binary.BigEndian.Uint32(b[4:8]) != magicCookie {
		return false
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	return n%4 == 0 && n == len(b)-headerSize
}

// Validate checks the whole structure of the STUN message in b: the header
// (as IsSTUN), every attribute TLV within bounds with four-byte padding and
// the last one ending exactly at the end of the message, every address
// attribute with family 1 and length 8 or family 2 and length 20,
// MESSAGE-INTEGRITY of 20 bytes and FINGERPRINT of 4 bytes as the last
// attribute. A message that passes can be decoded by pion/stun/v2 and its
// address attributes read without a panic. The error wraps ErrMalformed.
func Validate(b []byte) error {
	if len(b) < headerSize {
		return fmt.Errorf("%w: %d bytes, shorter than the 20-byte header", ErrMalformed, len(b))
	}
	if b[0] > 3 {
		return fmt.Errorf("%w: first byte %d is not in 0..3", ErrMalformed, b[0])
	}
	if c := binary.BigEndian.Uint32(b[4:8]); c != magicCookie {
		return fmt.Errorf("%w: magic cookie %#08x", ErrMalformed, c)
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n%4 != 0 {
		return fmt.Errorf("%w: length %d is not a multiple of 4", ErrMalformed, n)
	}
	if n != len(b)-headerSize {
		return fmt.Errorf("%w: length field %d, datagram carries %d bytes after the header", ErrMalformed, n, len(b)-headerSize)
	}
	body := b[headerSize:]
	for off := 0; off < len(body); {
		if len(body)-off < 4 {
			return fmt.Errorf("%w: truncated attribute header at offset %d", ErrMalformed, headerSize+off)
		}
		typ := binary.BigEndian.Uint16(body[off : off+2])
		l := int(binary.BigEndian.Uint16(body[off+2 : off+4]))
		padded := (l + 3) &^ 3
		off += 4
		if padded > len(body)-off {
			return fmt.Errorf("%w: attribute %#04x of length %d overruns the message", ErrMalformed, typ, l)
		}
		v := body[off : off+l]
		off += padded
		if err := checkAttribute(typ, v, off == len(body)); err != nil {
			return err
		}
	}
	return nil
}

// checkAttribute checks the value of one attribute whose bounds are known to
// be good. last tells whether it is the final attribute of the message.
func checkAttribute(typ uint16, v []byte, last bool) error {
	switch typ {
	case attrMappedAddress, attrXORPeerAddress, attrXORRelayedAddress, attrXORMappedAddress,
		attrXORMappedAddressOld, attrAlternateServer, attrResponseOrigin, attrOtherAddress:
		if len(v) < 2 {
			return fmt.Errorf("%w: address attribute %#04x of length %d", ErrMalformed, typ, len(v))
		}
		// pion reads the family as the 16 bits of the reserved byte and the
		// family byte together; require the whole field to be 1 or 2.
		switch fam := binary.BigEndian.Uint16(v[0:2]); {
		case fam == familyIPv4 && len(v) == 8, fam == familyIPv6 && len(v) == 20:
		default:
			return fmt.Errorf("%w: address attribute %#04x with family %d and length %d", ErrMalformed, typ, fam, len(v))
		}
	case attrMessageIntegrity:
		if len(v) != 20 {
			return fmt.Errorf("%w: MESSAGE-INTEGRITY of length %d", ErrMalformed, len(v))
		}
	case attrFingerprint:
		if len(v) != 4 {
			return fmt.Errorf("%w: FINGERPRINT of length %d", ErrMalformed, len(v))
		}
		if !last {
			return fmt.Errorf("%w: FINGERPRINT is not the last attribute", ErrMalformed)
		}
	}
	return nil
}
