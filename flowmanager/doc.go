// Package flowmanager is the entry point of the library (reflow's FlowManager):
// an application makes one Manager and creates its media streams through it.
//
//	m, err := flowmanager.New(flowmanager.Config{PortMin: 20000, PortMax: 29999})
//	if err != nil { ... }
//	defer m.Close()
//	s, err := m.NewStream(ctx, mediastream.Config{LocalAddr: ip, RTCP: true}, handler)
//
// Streams are described in package mediastream and their flows in package
// flow; NAT traversal modes in package natmode.
//
// # Concurrency
//
// All methods are safe for concurrent use. Close closes every stream.
package flowmanager
