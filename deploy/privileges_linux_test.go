package deploy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The DaemonSet claims that root with only the capabilities it adds, and
// tracefs mounted read-only, is enough to run the receiver. These tests run
// the built distribution exactly so on this machine: in a private mount
// namespace where /sys/kernel/tracing is a read-only bind mount, with the
// bounding set cut to the manifest's capabilities (setpriv), the same way
// the container runtime does it.

// readyLine is what the collector logs once every pipeline has started.
const readyLine = "Everything is ready"

const privilegeConfig = `receivers:
  net_intel:
exporters:
  debug:
    verbosity: basic
service:
  pipelines:
    logs:
      receivers: [net_intel]
      exporters: [debug]
  telemetry:
    metrics:
      level: none
`

// startOutcome is how one run of the collector ended.
type startOutcome struct {
	ready bool
	log   string
}

// startUnder runs the collector with only the given capabilities (nil: all
// of root's) and read-only tracefs, until it reports ready, exits, or 60 s
// pass; then stops it with SIGTERM.
func startUnder(t *testing.T, bin, config string, capabilities []string) startOutcome {
	t.Helper()
	setpriv := "exec"
	if capabilities != nil {
		spec := []string{"-all"}
		for _, c := range capabilities {
			spec = append(spec, "+"+strings.ToLower(c))
		}
		setpriv = "exec setpriv --inh-caps=-all --bounding-set=" + strings.Join(spec, ",") + " --"
	}
	script := fmt.Sprintf(
		"mount --bind /sys/kernel/tracing /sys/kernel/tracing && mount -o remount,bind,ro /sys/kernel/tracing && %s %q --config=%q",
		setpriv, bin, config)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// unshare and sh exec into the collector, so the signal below reaches it.
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	var log strings.Builder
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		signalled := false
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), readyLine) {
				signalled = true
				close(ready)
			}
		}
	}()

	out := startOutcome{}
	select {
	case <-ready:
		out.ready = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
	case <-done:
	case <-time.After(60 * time.Second):
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	_ = cmd.Wait()
	out.log = log.String()
	return out
}

// availableOf splits the capability names (as in the manifest) this process
// may hand on: a sandbox can lack some, and setpriv cannot add them back.
func availableOf(t *testing.T, wanted []string) (have, lacking []string) {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var bounding uint64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			_, _ = fmt.Sscanf(strings.TrimSpace(v), "%x", &bounding)
		}
	}
	numbers := map[string]uint{"NET_ADMIN": 12, "SYS_PTRACE": 19, "SYS_ADMIN": 21, "SYS_RESOURCE": 24, "PERFMON": 38, "BPF": 39}
	for _, c := range wanted {
		n, ok := numbers[c]
		if !ok {
			t.Fatalf("capability %s: add its number to this test", c)
		}
		if bounding&(1<<n) != 0 {
			have = append(have, c)
		} else {
			lacking = append(lacking, c)
		}
	}
	return have, lacking
}

func TestDaemonSetCapabilitiesStartTheReceiver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the collector three times")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root: the DaemonSet's privilege claim must be checked there")
		}
		t.Skip("needs root to load eBPF and to make a mount namespace")
	}
	for _, tool := range []string{"unshare", "setpriv", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (util-linux / mount): %v", tool, err)
		}
	}
	if _, err := os.Stat("/sys/kernel/tracing/events"); err != nil {
		t.Skipf("tracefs is not mounted on this machine; the DaemonSet expects the node to mount it: %v", err)
	}
	bin, err := filepath.Abs(distBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	_, c := nodeCollector(t, manifests(t))
	manifestCaps := c.SecurityContext.Capabilities.Add
	config := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(config, []byte(privilegeConfig), 0o600); err != nil {
		t.Fatal(err)
	}

	// Whether the receiver can run here at all is the capture's business
	// (its kernel tests say why); this test is about privileges only.
	if root := startUnder(t, bin, config, nil); !root.ready {
		t.Skipf("the collector does not start even with all of root's capabilities, so no privilege set can be judged here:\n%s", tail(root.log, 20))
	}

	have, lacking := availableOf(t, manifestCaps)
	if len(lacking) > 0 {
		t.Logf("this machine's bounding set lacks %v; checking with %v", lacking, have)
	}
	if run := startUnder(t, bin, config, have); !run.ready {
		t.Fatalf("with only the DaemonSet's capabilities %v and read-only tracefs the collector did not start:\n%s", have, tail(run.log, 20))
	}

	// The claim has teeth: without CAP_BPF or CAP_PERFMON the kernel refuses (the receiver
	// does not pre-judge privileges), and the failure says which one is missing.
	for _, drop := range []string{"BPF", "PERFMON"} {
		without := slices.DeleteFunc(slices.Clone(have), func(c string) bool { return c == drop })
		run := startUnder(t, bin, config, without)
		if run.ready {
			t.Fatalf("the collector started without CAP_%s (%v): the claim that it is needed is false", drop, without)
		}
		if !strings.Contains(run.log, "operation not permitted") || !strings.Contains(run.log, "missing CAP_"+drop) {
			t.Errorf("without CAP_%s the failure is not the kernel's refusal naming it:\n%s", drop, tail(run.log, 20))
		}
	}
}

func tail(log string, lines int) string {
	all := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
