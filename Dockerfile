# syntax=docker/dockerfile:1
#
# otelcol-netintel: the collector distribution of builder-config.yaml, the same
# binary `make dist` builds, as a static executable on a distroless base.
#
#   docker build -t otelcol-netintel .          (make image)
#
# The eBPF objects are committed (bpf2go output), so the build needs neither
# clang nor kernel headers, and runs on any architecture the Go toolchain
# targets that has committed objects (amd64, arm64).

ARG GO_VERSION=1.26
ARG OCB_VERSION=0.165.0

FROM golang:${GO_VERSION} AS build
ARG OCB_VERSION
# Static binary: no libc in the final image, and no cgo anywhere in the tree.
ENV CGO_ENABLED=0 \
    GOFLAGS=-buildvcs=false
RUN go install go.opentelemetry.io/collector/cmd/builder@v${OCB_VERSION}
WORKDIR /src
# Module downloads are cached in their own layer while go.mod is unchanged.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN builder --config=builder-config.yaml \
    && test -x dist/otelcol-netintel \
    && dist/otelcol-netintel components > /dev/null

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/dist/otelcol-netintel /otelcol-netintel
COPY deploy/docker/config.yaml /etc/otelcol-netintel/config.yaml
# The image user is unprivileged (65532, "nonroot"): `validate`, `components`
# and any run that does not load eBPF need nothing more. Loading the programs
# needs CAP_BPF and CAP_PERFMON in the *effective* set. Kubernetes adds
# capabilities to the bounding set only, and a non-root process gets them
# solely through file capabilities (setcap), which no_new_privs
# (allowPrivilegeEscalation: false) ignores. So the DaemonSet runs this image
# as uid 0 with every capability dropped except the few it adds
# (deploy/kubernetes/30-daemonset.yaml): root, but without CAP_SYS_ADMIN.
# With docker: docker run --user 0 --pid host --cap-drop ALL \
#   --cap-add BPF --cap-add PERFMON --cap-add SYS_PTRACE \
#   -v /sys/kernel/tracing:/sys/kernel/tracing:ro otelcol-netintel
USER 65532:65532
EXPOSE 13133
ENTRYPOINT ["/otelcol-netintel"]
CMD ["--config=/etc/otelcol-netintel/config.yaml"]
