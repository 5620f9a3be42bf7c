#!/bin/sh
# Regenerates the Go code for proto/webterminal/v1/webterminal.proto into
# OUTDIR/webterminalpb (OUTDIR defaults to this directory). Run it with
#   go generate ./call/webterminal/...
# Needs protoc (Debian: protobuf-compiler, 3.21.12) and the pinned plugins:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
PATH="$(go env GOPATH)/bin:$PATH"
export PATH
protoc -I "$here/../../proto" \
  --go_out="$out" --go_opt=module=github.com/reflow-go/reflow/call/webterminal \
  --go-grpc_out="$out" --go-grpc_opt=module=github.com/reflow-go/reflow/call/webterminal \
  "$here/../../proto/webterminal/v1/webterminal.proto"
