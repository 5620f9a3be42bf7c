// Package webterminal is the gRPC "WebRTC terminal" binding of the call layer.
package webterminal
