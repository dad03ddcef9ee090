#!/usr/bin/env bash
# The overhead benchmark (`make bench`): nginx on 127.0.0.80 (`return 200`, 1% random 503)
# under wrk at saturation, with and without the collector, alternating, several rounds; each
# collector session also measures its eBPF programs' kernel time (bpf_stats, on only then)
# under a fixed-rate load and checks its counts against the clients'; then throughput rounds
# (short sessions of throughput alone: the target is judged on every round's ratio and their 90%
# confidence interval); then a pair of sessions on /items/<random id> (high-cardinality paths)
# and a pair on /healthy. Writes bench/results.md and bench/results.png.
# Needs root (the collector loads eBPF), nginx, wrk, gnuplot (gnuplot-nox) and dist/otelcol-netintel.
# Run it under the lock the kernel tests take: flock /tmp/netintel-e2e.lock make bench
# Extra flags go to the driver: bench/run.sh -rounds 3 -throughput-rounds 24 -duration 10s -rate 2000
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[[ -x dist/otelcol-netintel ]] || { echo "bench: dist/otelcol-netintel missing: run make dist" >&2; exit 1; }
# On a fresh Debian machine, install what the benchmark drives (as root; otherwise say what).
missing=()
for pair in nginx:nginx wrk:wrk gnuplot:gnuplot-nox; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
  if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  else
    echo "bench: missing ${missing[*]}: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
mkdir -p bench/out
"$GO" build -o bench/out/netintel-bench ./bench/driver
"$GO" build -o bench/out/netintel-hooks ./bench/hooks
exec bench/out/netintel-bench -collector dist/otelcol-netintel -hooks bench/out/netintel-hooks -out bench "$@"
