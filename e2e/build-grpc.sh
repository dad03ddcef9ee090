#!/usr/bin/env bash
# Builds the grpc-go example servers and clients the HTTP/2-gRPC scenario drives, in a scratch
# module outside the repository (so the project's go.mod never sees them). Idempotent.
# Usage: e2e/build-grpc.sh [DIR]   (default /tmp/grpcex); binaries land in DIR/bin/.
set -euo pipefail
dir="${1:-/tmp/grpcex}"
version="v0.0.0-20260825154716-030ee8becb20"
bins=(greeter_server greeter_client server client)
have=1
for b in "${bins[@]}"; do [[ -x "$dir/bin/$b" ]] || have=0; done
if [[ $have == 1 ]]; then exit 0; fi
mkdir -p "$dir/bin"
cd "$dir"
[[ -f go.mod ]] || go mod init grpcex >/dev/null 2>&1
GOFLAGS=-mod=mod go get "google.golang.org/grpc/examples@$version"
GOFLAGS=-mod=mod go build -o bin/ \
  google.golang.org/grpc/examples/helloworld/greeter_server \
  google.golang.org/grpc/examples/helloworld/greeter_client \
  google.golang.org/grpc/examples/route_guide/server \
  google.golang.org/grpc/examples/route_guide/client
