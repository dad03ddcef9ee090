// Package bpf holds the kernel programs (c/netintel.c) and their bpf2go bindings for amd64 and
// arm64. Regenerate with generate.sh (make generate); the output is committed so that building
// needs no clang.
package bpf

//go:generate ./generate.sh
