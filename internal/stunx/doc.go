// Package stunx handles untrusted STUN messages safely on top of
// github.com/pion/stun/v2 v2.0.0.
//
// That version of pion/stun trusts its input: it panics on a zero-length (or
// one-byte) XOR-MAPPED-ADDRESS or XOR-PEER-ADDRESS (GHSA-34rh-wp3j-6cxc), and
// turn/v3 reaches that code for any Data indication arriving on a client
// socket. This package checks a datagram's structure before pion sees it and
// recovers from any panic that is left:
//
//	if !stunx.IsSTUN(pkt) { ... not STUN (RFC 7983 demux) ... }
//	m, err := stunx.Decode(pkt)          // Validate, then pion's Decode under recover
//	if err != nil { ... drop ... }
//	addr, err := stunx.MappedAddress(m)  // XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS
//
//	err = stunx.Safe(func() { _ = client.HandleInbound(pkt, from) }) // wrap pion calls
//
// Validate enforces RFC 8489 §5 and §14 framing: a 20-byte header with the
// magic cookie, a body length that is a multiple of four and matches the
// datagram, attributes that are padded to four bytes and end exactly at the
// end of the body, and every address attribute (MAPPED-ADDRESS,
// XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS and its
// pre-RFC code 0x8020, ALTERNATE-SERVER, RESPONSE-ORIGIN, OTHER-ADDRESS) with
// family 1 and length 8 or family 2 and length 20. MESSAGE-INTEGRITY must be
// 20 bytes and FINGERPRINT 4 bytes and last.
//
// RFCs: 7983 (demultiplexing), 8489 / 5389 (STUN), 8656 / 5766 (TURN
// address attributes), 5780 (RESPONSE-ORIGIN, OTHER-ADDRESS).
//
// All functions are safe for concurrent use; they keep no state.
package stunx
