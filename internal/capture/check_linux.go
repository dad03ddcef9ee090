//go:build linux && (amd64 || arm64)

package capture

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	btfPath     = "/sys/kernel/btf/vmlinux"
	tracefsPath = "/sys/kernel/tracing"
)

// Capability numbers (linux/capability.h).
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// Check verifies what the capture needs before anything is loaded: kernel BTF and tracefs
// (mounted here when we may). Privileges are the kernel's to judge: the loader tries, and an
// EPERM is turned into an error naming the capability the kernel wanted (privilegeError).
// Which tracepoints and kernel fields exist is the loader's business too: it loads programs
// one by one and switches off the optional ones the kernel lacks (see programPlans). The
// error names exactly what is missing and how to fix it.
func Check() error {
	if _, err := os.Stat(btfPath); err != nil {
		return fmt.Errorf("net_intel: kernel BTF not found at %s (%v); run a kernel built with CONFIG_DEBUG_INFO_BTF=y", btfPath, err)
	}
	caps, err := effectiveCaps()
	if err != nil {
		return fmt.Errorf("net_intel: cannot read process capabilities: %w", err)
	}
	return ensureTracefs(caps)
}

// privilegeError explains an EPERM from the kernel at one stage of loading: creating maps
// (bpf() needs CAP_BPF), loading tracepoint programs (CAP_BPF and CAP_PERFMON) or attaching
// them (perf_event_open() needs CAP_PERFMON). It names what this process lacks of those; when
// it lacks none, something else refused (a seccomp profile, an LSM). Other errors pass through.
func privilegeError(stage string, err error) error {
	if !errors.Is(err, unix.EPERM) {
		return err
	}
	caps, cerr := effectiveCaps()
	var missing []string
	if cerr == nil {
		missing = missingCaps(caps)
	}
	if len(missing) == 0 {
		return fmt.Errorf("net_intel: the kernel refused to %s (operation not permitted) although CAP_BPF and CAP_PERFMON are held; a seccomp profile or LSM may forbid bpf() or perf_event_open() (Kubernetes: seccompProfile Unconfined or a profile allowing both): %w", stage, err)
	}
	return fmt.Errorf("net_intel: the kernel refused to %s (operation not permitted): missing %s; run as root or grant CAP_BPF and CAP_PERFMON (e.g. setcap cap_bpf,cap_perfmon+ep on the collector binary): %w", stage, strings.Join(missing, ", "), err)
}

// tracepointOf splits a "tracepoint/<group>/<name>" section name.
func tracepointOf(section string) (group, name string, ok bool) {
	parts := strings.Split(section, "/")
	if len(parts) != 3 || (parts[0] != "tracepoint" && parts[0] != "tp") {
		return "", "", false
	}
	return parts[1], parts[2], true
}

func effectiveCaps() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}

func hasCap(caps uint64, c uint) bool { return caps&(1<<c) != 0 }

// missingCaps lists what is missing of CAP_BPF+CAP_PERFMON, the two the kernel checks to load
// tracepoint programs and ring buffers (bpf()) and to attach them (perf_event_open()).
// CAP_SYS_ADMIN stands in for both, as on kernels before 5.8. CAP_NET_ADMIN is not needed:
// no program here is a networking program type.
func missingCaps(caps uint64) []string {
	var missing []string
	sys := hasCap(caps, capSysAdmin)
	if !sys && !hasCap(caps, capBPF) {
		missing = append(missing, "CAP_BPF")
	}
	if !sys && !hasCap(caps, capPerfmon) {
		missing = append(missing, "CAP_PERFMON")
	}
	return missing
}

func ensureTracefs(caps uint64) error {
	if _, err := os.Stat(tracefsPath + "/events"); err == nil {
		return nil
	}
	if !hasCap(caps, capSysAdmin) {
		return fmt.Errorf("net_intel: tracefs not mounted at %s; run as root (CAP_SYS_ADMIN) or mount it (mount -t tracefs nodev %s)", tracefsPath, tracefsPath)
	}
	if err := unix.Mount("nodev", tracefsPath, "tracefs", 0, ""); err != nil {
		return fmt.Errorf("net_intel: tracefs not mounted at %s and mounting it failed (%v); mount it (mount -t tracefs nodev %s)", tracefsPath, err, tracefsPath)
	}
	if _, err := os.Stat(tracefsPath + "/events"); err != nil {
		return fmt.Errorf("net_intel: tracefs mounted at %s but has no events directory; mount it (mount -t tracefs nodev %s)", tracefsPath, tracefsPath)
	}
	return nil
}
