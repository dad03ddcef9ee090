//go:build linux && (amd64 || arm64)

package capture

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// privilegeChildEnv makes the test binary, re-executed with a reduced capability bounding set,
// start the capture once and report instead of running tests (see TestMain).
const privilegeChildEnv = "NETINTEL_PRIVILEGE_CHILD"

// The child's verdicts, on its last line of output.
const (
	childStarted = "capture started"
	childFailed  = "capture failed: "
)

func TestMain(m *testing.M) {
	if os.Getenv(privilegeChildEnv) != "" {
		os.Exit(privilegeChild())
	}
	if addr := os.Getenv(holdSocketEnv); addr != "" {
		os.Exit(holdSocketChild(addr))
	}
	code := m.Run()
	closeShared()
	os.Exit(code)
}

// privilegeChild starts and stops the capture with whatever privileges it was given.
func privilegeChild() int {
	src, err := NewEBPF(DefaultOptions(), zap.NewNop())
	if err == nil {
		if err = Check(); err == nil {
			err = src.Start(context.Background())
		}
	}
	if err != nil {
		fmt.Println(childFailed + err.Error())
		return 0
	}
	_ = src.Close()
	fmt.Println(childStarted)
	return 0
}

// TestKernelLeastPrivilege checks on this kernel which capabilities the programs really need:
// CAP_BPF and CAP_PERFMON are enough (no CAP_NET_ADMIN, no CAP_SYS_ADMIN), and without either
// the kernel itself refuses — the error names the one missing. The test binary re-executes
// itself as root with its capability bounding set cut to the set under test, as a container
// runtime does.
func TestKernelLeastPrivilege(t *testing.T) {
	requireKernel(t)
	if !hasCapBPFInBounding(t) {
		t.Fatalf("this process's bounding set lacks CAP_BPF or CAP_PERFMON; cannot judge privileges")
	}
	cases := []struct {
		name    string
		keep    []int
		started bool
		names   string // the capability the failure must name
	}{
		{"bpf and perfmon are enough", []int{capBPF, capPerfmon}, true, ""},
		{"without CAP_BPF the kernel refuses the maps", []int{capPerfmon}, false, "CAP_BPF"},
		{"without CAP_PERFMON the kernel refuses the tracepoint programs", []int{capBPF}, false, "CAP_PERFMON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runWithBoundingSet(tc.keep)
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			last := lastLine(out)
			switch {
			case tc.started && last != childStarted:
				t.Fatalf("with capabilities %v the capture did not start: %s", capNames(tc.keep), last)
			case !tc.started && !strings.HasPrefix(last, childFailed):
				t.Fatalf("with capabilities %v the capture started; the kernel should have refused", capNames(tc.keep))
			case !tc.started && !strings.Contains(last, "operation not permitted"):
				t.Errorf("the failure is not the kernel's refusal: %s", last)
			case !tc.started && !strings.Contains(last, "missing "+tc.names):
				t.Errorf("the failure does not name %s: %s", tc.names, last)
			}
		})
	}
}

func hasCapBPFInBounding(t *testing.T) bool {
	t.Helper()
	for _, c := range []int{capBPF, capPerfmon} {
		v, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil || v != 1 {
			return false
		}
	}
	return true
}

// runWithBoundingSet re-executes this test binary as the privilege child, from an OS thread
// whose bounding set keeps only keep (the child inherits the thread's set; as root its
// permitted and effective sets become exactly that set at execve). The thread is locked and
// never unlocked, so it dies with the goroutine and no other goroutine runs on it.
func runWithBoundingSet(keep []int) (string, error) {
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		last, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
		if err != nil {
			done <- result{err: err}
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(last)))
		if err != nil {
			done <- result{err: err}
			return
		}
		for c := 0; c <= n; c++ {
			if containsInt(keep, c) {
				continue
			}
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				done <- result{err: fmt.Errorf("drop capability %d from the bounding set: %w", c, err)}
				return
			}
		}
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), privilegeChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		done <- result{out, err}
	}()
	r := <-done
	return string(r.out), r.err
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func capNames(caps []int) []string {
	names := map[int]string{capBPF: "CAP_BPF", capPerfmon: "CAP_PERFMON", capSysAdmin: "CAP_SYS_ADMIN"}
	var out []string
	for _, c := range caps {
		out = append(out, names[c])
	}
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
