// Package iceinterop tests the flow package's ICE agent against
// github.com/pion/ice/v4, another full ICE agent (RFC 8445), on loopback.
// It is a nested module so that the library itself does not depend on
// pion/ice.
//
//	cd interop/ice && go test -race -v .
package iceinterop
