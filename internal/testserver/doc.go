// Package testserver runs STUN and TURN servers inside the process, for the
// tests of this module and for the example programs (it does not import
// package testing).
//
//	srv, err := testserver.StartTURN(testserver.TURNConfig{}) // alice / s3cret, realm reflow.test
//	if err != nil { ... }
//	defer srv.Close()
//	// srv.UDP, srv.TCP, srv.TLS: the three listeners on 127.0.0.1;
//	// srv.RootCAs and srv.ServerName verify the TLS one.
//
//	stunSrv, err := testserver.StartSTUN("udp6", netip.MustParseAddrPort("[::1]:0"))
//
// TURN is pion/turn/v3 v3.0.3 with long-term credentials (RFC 8656 / 5766,
// RFC 8489 §9.2) and UDP relays; it also answers STUN Binding requests
// without authentication (XOR-MAPPED-ADDRESS and FINGERPRINT only).
// TURNConfig.MaxLifetime caps the allocation lifetime the way coturn's
// max-allocate-lifetime does, which pion cannot do on its own (see its doc).
// TURNConfig.ForwardPadding frames ChannelData the way reSIProcate's
// reTurnServer does (padding relayed as data over UDP, none over TCP/TLS).
// STUN is a Binding server of our own (RFC 8489) that counts what it gets;
// Silent is a UDP socket that never answers. SelfSigned makes an ECDSA
// P-256 certificate and a pool that trusts it.
//
// Every server's methods are safe for concurrent use. Close is idempotent
// and returns only after the server's goroutines have left their sockets.
// Servers never print: pion's logs go to TURNConfig.Logger (nil discards).
package testserver
