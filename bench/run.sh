#!/usr/bin/env bash
# The overhead benchmark (`make bench`): nginx on 127.0.0.80 under wrk (saturation) and a
# fixed-rate load, with and without the collector, alternating, several rounds; then a run
# with 1% injected 5xx to measure recall. Writes bench/results.md and bench/results.png.
# Needs root (the collector loads eBPF), nginx, wrk, gnuplot (gnuplot-nox) and dist/otelcol-netintel.
# Extra flags go to the driver: bench/run.sh -rounds 3 -duration 10s -rate 2000
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[[ -x dist/otelcol-netintel ]] || { echo "bench: dist/otelcol-netintel missing: run make dist" >&2; exit 1; }
for tool in nginx wrk; do
  command -v "$tool" >/dev/null || { echo "bench: $tool missing (apt-get install -y $tool)" >&2; exit 1; }
done
mkdir -p bench/out
"$GO" build -o bench/out/netintel-bench ./bench/driver
exec bench/out/netintel-bench -collector dist/otelcol-netintel -out bench "$@"
