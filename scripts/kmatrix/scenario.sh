#!/bin/sh
# One kernel's run of the kernel matrix (make test-kernels), the same on the host and inside a
# QEMU guest: the capture kernel tests, then the distribution on real loopback HTTP traffic.
# It prints what it saw between "@@kmatrix begin NAME" / "@@kmatrix end NAME rc=N" markers on
# stdout and judges nothing itself: internal/kmatrix reads the sections and decides.
#
# KM_DIR holds the payload (capture.test, capture/testdata, otelcol-netintel, bpfleft,
# collector.yaml); KM_OUT is a scratch directory. Every step is bounded by a timeout.
set -u
: "${KM_DIR:?payload directory}"
: "${KM_OUT:?scratch directory}"
# seconds for the whole capture test binary: what the guest has, less the distribution steps below
KM_TEST_TIMEOUT=${KM_TEST_TIMEOUT:-$(( ${KM_GUEST_TIMEOUT:-730} - 360 ))}
KM_READY_TIMEOUT=${KM_READY_TIMEOUT:-240} # seconds for the collector to say it is ready
KM_OUTPUT_TIMEOUT=${KM_OUTPUT_TIMEOUT:-45} # seconds for the findings and spans to be written
KM_STOP_TIMEOUT=${KM_STOP_TIMEOUT:-20}     # seconds from SIGTERM to exit
KM_RUN=${KM_RUN:-}                         # -test.run pattern (empty: every test)

# The web server and the collector's telemetry endpoint (testdata/kmatrix/collector.yaml).
WEB=127.0.0.90:8090
TELEMETRY=127.0.0.90:8888
READY="Everything is ready"

begin() { echo "@@kmatrix begin $1"; }
end() { echo "@@kmatrix end $1 rc=$2"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }'; }

# wait_for SECONDS CMD...: run CMD every 0.2 s until it succeeds or SECONDS pass.
wait_for() {
	limit=$1
	shift
	start=$(uptime_s)
	while ! "$@" >/dev/null 2>&1; do
		if awk -v a="$start" -v b="$(uptime_s)" -v l="$limit" 'BEGIN { exit !(b - a >= l) }'; then
			return 1
		fi
		sleep 0.2
	done
	return 0
}

begin kernel
echo "release $(uname -r)"
echo "version $(cat /proc/version)"
echo "uptime $(uptime_s)"
echo "cpus $(grep -c ^processor /proc/cpuinfo)"
# What the kernel lets a process with CAP_BPF and CAP_PERFMON but without CAP_SYS_ADMIN do.
echo "perf_event_paranoid $(cat /proc/sys/kernel/perf_event_paranoid)"
echo "unprivileged_bpf_disabled $(cat /proc/sys/kernel/unprivileged_bpf_disabled)"
end kernel 0

# --- the capture kernel tests: as CI runs them, where a kernel that cannot run them fails.
begin capture-tests
(
	cd "$KM_DIR/capture" &&
		CI=true NETINTEL_KERNEL_CACHE="$KM_DIR/btf" timeout "$KM_TEST_TIMEOUT" ./capture.test -test.v -test.count=1 \
			-test.timeout "$((KM_TEST_TIMEOUT - 10))s" ${KM_RUN:+-test.run "$KM_RUN"} 2>&1
)
end capture-tests $?

# --- the distribution on loopback traffic.
rm -rf "$KM_OUT" && mkdir -p "$KM_OUT/www"
echo "kmatrix ok" >"$KM_OUT/www/index.html"
export KM_OUT

begin bpf-baseline
"$KM_DIR/bpfleft" -save "$KM_OUT/bpf-baseline" 2>&1
end bpf-baseline $?

busybox httpd -f -p "$WEB" -h "$KM_OUT/www" >"$KM_OUT/httpd.log" 2>&1 &
httpd=$!

begin dist-start
start=$(uptime_s)
"$KM_DIR/otelcol-netintel" --config "$KM_DIR/collector.yaml" >"$KM_OUT/collector.log" 2>&1 &
collector=$!
# A child that exited stays a zombie until waited for, and kill -0 still reaches a zombie.
alive() {
	state=$(cut -d' ' -f3 "/proc/$collector/stat" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ]
}
ready() { grep -q "$READY" "$KM_OUT/collector.log" || ! alive; }
wait_for "$KM_READY_TIMEOUT" ready
if grep -q "$READY" "$KM_OUT/collector.log" && alive; then
	echo "ready after $(elapsed "$start") s"
	rc=0
elif alive; then
	echo "not ready after $KM_READY_TIMEOUT s"
	rc=1
else
	wait "$collector"
	echo "exited with status $? before it was ready, after $(elapsed "$start") s"
	rc=2
fi
end dist-start $rc

if [ "$rc" = 0 ]; then
	begin traffic
	# wget is the client: two pages served (200) and two missing (404), each its own
	# connection, so the finding rules have an edge, its spans and a 404 group.
	for path in /index.html /index.html /missing /missing; do
		out=$(busybox timeout 10 busybox wget -q -O /dev/null "http://$WEB$path" 2>&1)
		echo "GET $path rc=$? $out"
	done
	end traffic 0

	begin dist-output
	outputs() {
		grep -q netintel.service_dependency "$KM_OUT/logs.json" &&
			grep -q netintel.error_pattern "$KM_OUT/logs.json" &&
			grep -q '"kind":2' "$KM_OUT/traces.json" &&
			grep -q '"kind":3' "$KM_OUT/traces.json"
	}
	start=$(uptime_s)
	if wait_for "$KM_OUTPUT_TIMEOUT" outputs; then
		echo "written after $(elapsed "$start") s"
		rc=0
	else
		echo "incomplete after $KM_OUTPUT_TIMEOUT s"
		rc=1
	fi
	end dist-output $rc

	# The receiver's capability gauge, from the collector's own Prometheus endpoint.
	begin telemetry
	busybox timeout 10 busybox wget -q -O "$KM_OUT/telemetry.txt" "http://$TELEMETRY/metrics" 2>&1
	rc=$?
	echo "scraped $(grep -vc '^#' "$KM_OUT/telemetry.txt" 2>/dev/null) samples"
	grep -i capabilit "$KM_OUT/telemetry.txt"
	end telemetry $rc
fi

begin dist-stop
if alive; then
	start=$(uptime_s)
	kill -TERM "$collector"
	(sleep "$KM_STOP_TIMEOUT" && kill -KILL "$collector" 2>/dev/null) &
	timer=$!
	wait "$collector"
	rc=$?
	took=$(elapsed "$start")
	if kill "$timer" 2>/dev/null; then
		echo "exited with status $rc $took s after SIGTERM"
	else
		echo "still running $KM_STOP_TIMEOUT s after SIGTERM; killed"
		rc=1
	fi
else
	echo "not running"
	rc=1
fi
end dist-stop $rc
kill "$httpd" 2>/dev/null
wait "$httpd" 2>/dev/null

# Programs and links the collector left behind (released asynchronously: bpfleft waits).
begin bpf-left
"$KM_DIR/bpfleft" -since "$KM_OUT/bpf-baseline" -wait 10s 2>&1
end bpf-left $?

begin collector-log
cat "$KM_OUT/collector.log"
end collector-log 0

begin logs-json
cat "$KM_OUT/logs.json" 2>&1
end logs-json 0

begin traces-json
cat "$KM_OUT/traces.json" 2>&1
end traces-json 0

echo "@@kmatrix done"
