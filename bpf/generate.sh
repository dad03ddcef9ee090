#!/bin/sh
# The C sources live in c/ (Go refuses .c files in a package directory without cgo).
# Regenerates the kernel side: vmlinux.h from this machine's BTF, then the bpf2go Go bindings and
# .o objects for amd64 and arm64, then sources.sha256 (checked by TestGeneratedIsCurrent).
#
#   bpf/generate.sh            regenerate in place (vmlinux.h too)
#   NO_VMLINUX=1 bpf/generate.sh    keep the committed vmlinux.h
#   OUT=/tmp/x bpf/generate.sh      write the outputs to another directory (used by the stale test)
#
# Needs: clang, llvm-strip (Debian: clang llvm), bpftool, libbpf-dev, go.
set -eu
cd "$(dirname "$0")"
OUT=${OUT:-.}
mkdir -p "$OUT"

if [ "${NO_VMLINUX:-}" = "" ]; then
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > c/vmlinux.h.tmp
	mv c/vmlinux.h.tmp c/vmlinux.h
fi

GOPACKAGE=bpf go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 \
	-go-package bpf -output-dir "$OUT" -target amd64,arm64 \
	-type conn_event -type data_header -type task_id -type sock_tuple -type http1_header \
	-type agg_key -type agg_value -type limit_key -type route_limit -type rule_key -type settings \
	-type fd_key -type sock_state \
	Netintel c/netintel.c -- -Ic -O2 -g -Wall -Werror

# The hash of every input, so a C edit without regeneration fails the tests.
sha256sum $(ls c/* | sort) > "$OUT/sources.sha256"
