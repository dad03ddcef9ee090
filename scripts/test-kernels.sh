#!/usr/bin/env bash
# make test-kernels: the kernel matrix. Runs the capture kernel tests and the distribution on
# real loopback traffic (scripts/kmatrix/scenario.sh) on the host kernel and, under QEMU
# (TCG: no KVM needed), on the newest Debian 12 kernels of each series in KMATRIX_KERNELS,
# then prints one report per kernel (internal/kmatrix). Exit status 1 on any failure.
#
# Kernel packages are found with apt-cache at run time, fetched with apt-get download and
# unpacked with dpkg -x into KMATRIX_CACHE, which is reused while it holds the candidate
# version. The guests carry one initramfs: busybox-static, the static test binary, the
# static distribution, bpfleft, and bpftool/curl/dig with their libraries (the kernel tests
# use them on the host too).
#
# Environment: KMATRIX_KERNELS (default "6.1 6.12"), KMATRIX_HOST (0: skip the host row),
# KMATRIX_CACHE, KMATRIX_WORK, KMATRIX_VM_TIMEOUT (seconds per VM), KMATRIX_RUN (-test.run
# pattern for the capture tests), KMATRIX_APPEND (more kernel command line; NAME=value words
# reach /init and the scenario as environment), DIST (collector binary), GO.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
DIST=${DIST:-dist/otelcol-netintel}
KERNELS=${KMATRIX_KERNELS-6.1 6.12}
HOST=${KMATRIX_HOST:-1}
CACHE=${KMATRIX_CACHE:-/var/cache/netintel-kernels}
WORK=${KMATRIX_WORK:-$PWD/out/kmatrix}
# Under TCG, with two guests and the host's run sharing 2 cores, a guest takes 8 to 13 minutes
# here (it varies with the machine's CPU from day to day); the bound is 40 minutes, so a slower
# machine is slower, not red, and CI still ends within its 90.
VM_TIMEOUT=${KMATRIX_VM_TIMEOUT:-2400}
RUN=${KMATRIX_RUN:-}
LOCK=/tmp/netintel-e2e.lock

say() { echo "kmatrix: $*"; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
die() {
	echo "kmatrix: $*" >&2
	exit 1
}

# A machine without the tools cannot run the matrix: CI must (its .ci/run installs them);
# elsewhere the matrix says so and steps aside, like the kernel tests without root.
missing=()
for tool in qemu-system-x86_64 cpio busybox apt-cache apt-get dpkg dpkg-deb; do
	command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
	msg="missing ${missing[*]} (apt-get install qemu-system-x86 busybox-static cpio)"
	[[ ${CI:-} == true ]] && die "$msg"
	say "SKIPPED: $msg"
	exit 0
fi
if ldd "$(command -v busybox)" >/dev/null 2>&1; then
	die "busybox is dynamically linked; the initramfs needs busybox-static (apt-get install busybox-static)"
fi
[[ -x $DIST ]] || die "$DIST not built (make dist)"
if [[ $HOST == 1 && $(id -u) != 0 ]]; then
	[[ ${CI:-} == true ]] && die "the host kernel's row needs root (CI runs as root)"
	say "host kernel: not root, its row is skipped"
	HOST=0
fi
mkdir -p "$CACHE" 2>/dev/null || true
if [[ ! -w $CACHE ]]; then
	CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/netintel-kernels
	mkdir -p "$CACHE"
fi

# package_pattern SERIES: the Debian 12 package names of a kernel series.
package_pattern() {
	case $1 in
	6.1) echo '^linux-image-6\.1\.0-[0-9]+-amd64$' ;;
	*) echo "^linux-image-${1//./\\.}\\.[0-9]+\\+deb12-amd64\$" ;;
	esac
}

# fetch SERIES: the newest package of the series in the cache (fetched when the cache lacks
# it or holds an older build); prints "package version vmlinuz".
fetch() {
	local series=$1 pattern pkg candidate deb have=""
	pattern=$(package_pattern "$series")
	pkg=$(apt-cache search --names-only "$pattern" 2>/dev/null | awk '{print $1}' | sort -V | tail -1)
	if [[ -z $pkg ]]; then
		# No apt lists (offline, or apt-get update never ran): the newest cached one.
		pkg=$(find "$CACHE" -maxdepth 1 -name '*.deb' -printf '%f\n' | sed 's/_.*//' |
			grep -E "$pattern" | sort -V | tail -1 || true)
		[[ -n $pkg ]] || die "no Debian package matches $pattern (run apt-get update)"
		say "$series: apt-cache lists no $pattern; using the cached $pkg" >&2
	fi
	candidate=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | awk '/^Version:/ {print $2; exit}')
	deb=$(find "$CACHE" -maxdepth 1 -name "${pkg}_*_amd64.deb" | sort -V | tail -1)
	[[ -n $deb ]] && have=$(dpkg-deb -f "$deb" Version)
	if [[ -z $deb || (-n $candidate && $have != "$candidate") ]]; then
		say "$series: downloading $pkg $candidate" >&2
		(cd "$CACHE" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
		rm -rf "${CACHE:?}/$pkg"
		deb=$(find "$CACHE" -maxdepth 1 -name "${pkg}_${candidate//:/%3a}_amd64.deb" | head -1)
		[[ -n $deb ]] || die "apt-get download $pkg left no .deb in $CACHE"
		find "$CACHE" -maxdepth 1 -name "${pkg}_*_amd64.deb" ! -name "$(basename "$deb")" -delete
		have=$candidate
	fi
	if ! compgen -G "$CACHE/$pkg/boot/vmlinuz-*" >/dev/null; then
		# Only boot/ is kept: the guests need the kernel image, not its modules.
		rm -rf "$CACHE/$pkg.tmp"
		dpkg -x "$deb" "$CACHE/$pkg.tmp"
		rm -rf "${CACHE:?}/$pkg/boot"
		mkdir -p "$CACHE/$pkg"
		mv "$CACHE/$pkg.tmp/boot" "$CACHE/$pkg/boot"
		rm -rf "$CACHE/$pkg.tmp"
	fi
	echo "$pkg $have $(compgen -G "$CACHE/$pkg/boot/vmlinuz-*" | head -1)"
}

# extract_btf SERIES VMLINUZ WHAT: the kernel's BTF as $CACHE/btf-SERIES, the .BTF section of
# the vmlinux compressed inside vmlinuz (found at its compressor's magic, as the kernel's
# scripts/extract-vmlinux does), for internal/capture's relocation test on kernels this
# machine does not run. Redone only when the cached one came from another build (WHAT).
extract_btf() {
	# Only the BTF itself may be named btf-*: the relocation test loads every such file.
	local series=$1 vmlinuz=$2 what=$3 out="$CACHE/btf-$1" stamp="$CACHE/.btf-$1.source" tmp magic off cmd objcopy
	[[ -s $out && $(cat "$stamp" 2>/dev/null) == "$what" ]] && return 0
	objcopy=$(command -v objcopy || command -v llvm-objcopy) || die "objcopy not found (apt-get install binutils)"
	tmp=$(mktemp -d)
	for magic in '\xfd7zXZ\x00:xz -dc' '\x28\xb5\x2f\xfd:zstd -dcq' '\x1f\x8b\x08:gzip -dc'; do
		cmd=${magic#*:}
		command -v "${cmd%% *}" >/dev/null || continue
		for off in $(LC_ALL=C grep -obUaP "${magic%%:*}" "$vmlinuz" | cut -d: -f1); do
			# The stream is followed by the rest of the image: the decompressor complains.
			tail -c "+$((off + 1))" "$vmlinuz" | $cmd >"$tmp/vmlinux" 2>/dev/null || true
			if "$objcopy" -O binary --only-section=.BTF "$tmp/vmlinux" "$tmp/btf" 2>/dev/null && [[ -s $tmp/btf ]]; then
				mv "$tmp/btf" "$CACHE/.btf-$series.new" && mv "$CACHE/.btf-$series.new" "$out" && echo "$what" >"$stamp"
				rm -rf "$tmp"
				say "$series: BTF $(du -h "$out" | cut -f1) in $out" >&2
				return 0
			fi
		done
	done
	rm -rf "$tmp"
	die "$series: no vmlinux with a .BTF section found in $vmlinuz (needs xz, zstd, gzip)"
}

# copy_with_libs BIN ROOT: BIN and the shared libraries it loads, at the same paths in ROOT.
copy_with_libs() {
	local bin=$1 root=$2 f
	[[ -n $bin ]] || return 0
	for f in "$bin" $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f"
	done
}

start=$(date +%s.%N)
rm -rf "$WORK"
mkdir -p "$WORK/bin"

# --- kernels (one at a time: apt and the cache are shared)
declare -A PKG VER VMLINUZ
exec {lockfd}>"$CACHE/.lock"
flock "$lockfd"
for series in $KERNELS; do
	kernel=$(fetch "$series")
	read -r PKG[$series] VER[$series] VMLINUZ[$series] <<<"$kernel"
	[[ -n ${VMLINUZ[$series]} ]] || die "$series: no kernel image"
	extract_btf "$series" "${VMLINUZ[$series]}" "${PKG[$series]} ${VER[$series]}"
	say "$series: ${PKG[$series]} ${VER[$series]}"
done
exec {lockfd}>&-

# --- the payload: the same directory runs on the host and is the guests' /kmatrix
root=$WORK/root
payload=$root/kmatrix
mkdir -p "$payload/capture" "$root"/{bin,dev,proc,sys,tmp,etc,root,run}
CGO_ENABLED=0 "$GO" test -c -o "$payload/capture/capture.test" ./internal/capture
cp -r internal/capture/testdata "$payload/capture/"
# Other kernels' BTF for the relocation test, on the host as in the guests.
mkdir -p "$payload/btf"
find "$CACHE" -maxdepth 1 -name 'btf-*' -type f -exec cp {} "$payload/btf/" \;
CGO_ENABLED=0 "$GO" build -o "$payload/bpfleft" ./internal/kmatrix/cmd/bpfleft
"$GO" build -o "$WORK/bin/kmatrix-report" ./internal/kmatrix/cmd/kmatrix-report
ldd "$DIST" >/dev/null 2>&1 && die "$DIST is dynamically linked; build it with CGO_ENABLED=0"
cp "$DIST" "$payload/otelcol-netintel"
cp scripts/kmatrix/scenario.sh testdata/kmatrix/collector.yaml "$payload/"
cp "$(command -v busybox)" "$root/bin/busybox"
cp scripts/kmatrix/init "$root/init"
chmod +x "$root/init"
for tool in bpftool curl dig; do
	copy_with_libs "$(command -v $tool || true)" "$root"
done
if [[ -n ${KERNELS// /} ]]; then
	(cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) >"$WORK/initramfs.cpio"
	say "initramfs $(du -h "$WORK/initramfs.cpio" | cut -f1)"
fi

# --- the runs, in parallel: the guests have loopbacks of their own; the host row takes the
# shared lock (it loads programs and serves on 127.0.0.90).
rows=$WORK/matrix.tsv
: >"$rows"
pids=()
run_host() {
	local t0 rc=0
	t0=$(date +%s.%N)
	mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
	# The timeout bounds the run, not the wait for the lock; it stops the scenario's whole
	# process group (tests, collector, httpd).
	KM_DIR=$payload KM_OUT=$WORK/host-out KM_RUN=$RUN KM_GUEST_TIMEOUT=$((VM_TIMEOUT - 30)) \
		flock "$LOCK" sh -c 'date +%s.%N >"$0" && exec "$@"' "$WORK/host.locked" \
		timeout "$VM_TIMEOUT" sh "$payload/scenario.sh" >"$WORK/host.log" 2>&1 || rc=$?
	local waited=0
	[[ -s $WORK/host.locked ]] && waited=$(awk -v a="$t0" -v b="$(cat "$WORK/host.locked")" 'BEGIN { printf "%.1f", b - a }')
	printf 'host\thost\tlinux\t%s\t%s\t\t%s\t%s\t%s\n' "$(uname -r)" "$WORK/host.log" \
		"$(since "$t0")" "$rc" "$waited" >"$WORK/host.row"
}
run_vm() {
	local series=$1 t0 rc=0
	t0=$(date +%s.%N)
	timeout "$VM_TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -m 2048 -smp 1 \
		-nographic -no-reboot -nic none -monitor none \
		-kernel "${VMLINUZ[$series]}" -initrd "$WORK/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 oops=panic quiet KM_RUN=$RUN KM_GUEST_TIMEOUT=$((VM_TIMEOUT - 30)) ${KMATRIX_APPEND:-}" \
		-serial "file:$WORK/$series.console" -serial "file:$WORK/$series.log" \
		</dev/null >"$WORK/$series.qemu" 2>&1 || rc=$?
	# QEMU's own complaints (a missing firmware, a bad option) belong with the console.
	cat "$WORK/$series.qemu" >>"$WORK/$series.console"
	printf '%s\tqemu\t%s\t%s\t%s\t%s\t%s\t%s\n' "$series" "${PKG[$series]}" "${VER[$series]}" \
		"$WORK/$series.log" "$WORK/$series.console" "$(since "$t0")" "$rc" >"$WORK/$series.row"
}
for series in $KERNELS; do
	say "booting ${PKG[$series]} under QEMU (TCG)"
	run_vm "$series" &
	pids+=($!)
done
if [[ $HOST == 1 ]]; then
	say "host kernel $(uname -r)"
	run_host &
	pids+=($!)
fi
for pid in "${pids[@]}"; do wait "$pid"; done
[[ $HOST == 1 ]] && cat "$WORK/host.row" >>"$rows"
for series in $KERNELS; do cat "$WORK/$series.row" >>"$rows"; done

wall=$(since "$start")
"$WORK/bin/kmatrix-report" -wall "${wall}s" "$rows" | tee "$WORK/report.txt"
exit "${PIPESTATUS[0]}"
