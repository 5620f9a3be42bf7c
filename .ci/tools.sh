# Sourced by .ci/run after staticcheck is installed: the pinned protobuf/gRPC
# code generators for the webterminal staleness test (call/webterminal).
go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
