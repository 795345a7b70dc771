#!/usr/bin/env bash
# Regenerates transport/goplugin/internal/pb from broker.proto.
# Needs protoc (Debian: protobuf-compiler); installs the Go plugins at the pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null; then
  echo "protoc not found: apt-get install -y protobuf-compiler" >&2
  exit 1
fi
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
GOBIN=$gobin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.11
GOBIN=$gobin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.3.0
PATH="$gobin:$PATH" protoc --proto_path=transport/goplugin/internal/pb \
  --go_out=paths=source_relative:transport/goplugin/internal/pb \
  --go-grpc_out=paths=source_relative:transport/goplugin/internal/pb broker.proto
echo "regenerated transport/goplugin/internal/pb"
