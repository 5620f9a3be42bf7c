// Package webterminalpb is the generated Go code (protoc-gen-go v1.36.12,
// protoc-gen-go-grpc v1.6.2) for proto/webterminal/v1/webterminal.proto, the
// gRPC WebRTC terminal API: the WebTerminal service with its Pipe and
// MultiPipe bidirectional streams of WebTerminalMessage.
//
// Do not edit the *.pb.go files; regenerate them with
//
//	go generate ./call/webterminal/...
//
// Package webterminal (the parent directory) builds the Terminal and the Core
// on top of this code; a test there fails when these files are stale.
package webterminalpb
