//go:build linux && (amd64 || arm64)

package capture

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/netintel/netintelreceiver/bpf"
)

const (
	btfPath     = "/sys/kernel/btf/vmlinux"
	tracefsPath = "/sys/kernel/tracing"
)

// Capability numbers (linux/capability.h).
const (
	capNetAdmin = 12
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// Check verifies that this machine can run the capture: kernel BTF, privileges, tracefs
// (mounted here when we may) and every tracepoint the programs attach to. The error names
// exactly what is missing and how to fix it.
func Check() error {
	if _, err := os.Stat(btfPath); err != nil {
		return fmt.Errorf("net_intel: kernel BTF not found at %s (%v); run a kernel built with CONFIG_DEBUG_INFO_BTF=y", btfPath, err)
	}
	caps, err := effectiveCaps()
	if err != nil {
		return fmt.Errorf("net_intel: cannot read process capabilities: %w", err)
	}
	if missing := missingCaps(caps); len(missing) > 0 {
		return fmt.Errorf("net_intel: insufficient privileges: missing %s; run as root or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (e.g. setcap cap_bpf,cap_perfmon,cap_net_admin+ep on the collector binary)", strings.Join(missing, ", "))
	}
	if err := ensureTracefs(caps); err != nil {
		return err
	}
	spec, err := bpf.LoadNetintel()
	if err != nil {
		return fmt.Errorf("net_intel: parse embedded eBPF object: %w", err)
	}
	for _, p := range spec.Programs {
		group, name, ok := tracepointOf(p.SectionName)
		if !ok {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("%s/events/%s/%s/id", tracefsPath, group, name)); err != nil {
			return fmt.Errorf("net_intel: tracepoint %s:%s not available in %s/events; this kernel lacks it (syscall tracepoints need CONFIG_FTRACE_SYSCALLS=y)", group, name, tracefsPath)
		}
	}
	return nil
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

// missingCaps lists what is missing of CAP_BPF+CAP_PERFMON+CAP_NET_ADMIN; CAP_SYS_ADMIN stands
// in for CAP_BPF and CAP_PERFMON as on kernels before 5.8.
func missingCaps(caps uint64) []string {
	var missing []string
	sys := hasCap(caps, capSysAdmin)
	if !sys && !hasCap(caps, capBPF) {
		missing = append(missing, "CAP_BPF")
	}
	if !sys && !hasCap(caps, capPerfmon) {
		missing = append(missing, "CAP_PERFMON")
	}
	if !hasCap(caps, capNetAdmin) {
		missing = append(missing, "CAP_NET_ADMIN")
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
