# netintel: `sudo make run` builds the collector distribution and runs it on config.yaml;
# `make test` runs every test (kernel tests need root; in CI they must run).

GO       ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOBIN    := $(shell $(GO) env GOPATH)/bin
export PATH := $(dir $(GO)):$(GOBIN):$(PATH)

BUILDER_VERSION := v0.165.0
BUILDER  := $(GOBIN)/builder
DIST     := dist/otelcol-netintel
FUZZTIME ?= 150000x

.PHONY: run dist test unit fuzz validate test-kernels generate e2e bench image clean

## run: build the distribution and run it on config.yaml (needs root or the capabilities in the README)
run: dist
	@mkdir -p out
	./$(DIST) --config config.yaml

## dist: build dist/otelcol-netintel with ocb (installs ocb when missing)
dist: $(BUILDER)
	$(BUILDER) --config builder-config.yaml

$(BUILDER):
	$(GO) install go.opentelemetry.io/collector/cmd/builder@$(BUILDER_VERSION)

## test: vet, unit + kernel tests, bounded fuzzing, the distribution validating config.yaml,
## and the kernel matrix
test: dist unit fuzz validate test-kernels

unit:
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

validate: dist
	./$(DIST) validate --config config.yaml
	@for f in testdata/dist/invalid_*.yaml; do \
		key=$$(sed -n 's/^# rejects: //p' $$f); \
		if ./$(DIST) validate --config $$f >/tmp/netintel-validate.log 2>&1; then \
			echo "validate accepted $$f"; exit 1; fi; \
		grep -q "$$key" /tmp/netintel-validate.log || { echo "$$f: rejected without naming $$key:"; cat /tmp/netintel-validate.log; exit 1; }; \
		echo "validate: $$f rejected, naming $$key"; \
	done
	@echo "validate: config.yaml accepted"

## test-kernels: the kernel matrix: capture kernel tests and the distribution on loopback
## traffic on the host kernel and, under QEMU, Debian 12's newest 6.1 and 6.12 (root; needs
## qemu-system-x86, busybox-static, cpio); one report per kernel
test-kernels: dist
	GO=$(GO) DIST=$(DIST) scripts/test-kernels.sh

## generate: regenerate vmlinux.h and the bpf2go bindings (needs clang, llvm, bpftool)
generate:
	GO=$(GO) bpf/generate.sh

## e2e: end-to-end scenarios with real servers and scanners against the built distribution (root)
e2e: dist
	$(GO) test -tags e2e -count=1 -timeout 25m ./e2e/...

## bench: overhead benchmark with and without the collector; writes bench/results.md
bench: dist
	bench/run.sh

## image: container image of the distribution (needs a container engine)
image:
	docker build -t otelcol-netintel .

clean:
	rm -rf dist out
