//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyLine is what the collector logs once every component has started (the receiver's
// programs are attached by then).
const readyLine = "Everything is ready"

var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}()

func TestMain(m *testing.M) {
	// The latency scenario re-executes this binary as its backend, so that the backend is a
	// process of its own (a service of its own) and not the test that drives it.
	if os.Getenv(roleEnv) == roleLatencyServer {
		runLatencyServer()
		return
	}
	if run, ok := worldRoles[os.Getenv(roleEnv)]; ok {
		run()
		return
	}
	os.Exit(m.Run())
}

// scenario is one end-to-end test: its output directory, the collector it runs and the
// processes it started (all stopped by t.Cleanup).
type scenario struct {
	t   *testing.T
	dir string
	col *collector
}

// newScenario checks the test can run (root), and prepares e2e/out/<TestName>/.
func newScenario(t *testing.T) *scenario {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("e2e: must run as root in CI (the receiver loads eBPF programs)")
		}
		t.Skip("e2e: needs root (the receiver loads eBPF programs)")
	}
	dir := filepath.Join(repoRoot, "e2e", "out", t.Name())
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("output directory: %s", dir)
	return &scenario{t: t, dir: dir}
}

func (s *scenario) path(name string) string { return filepath.Join(s.dir, name) }

func collectorBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("NETINTEL_COLLECTOR")
	if bin == "" {
		bin = filepath.Join(repoRoot, "dist", "otelcol-netintel")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("collector binary %s not found (%v): run `make dist` first, or set NETINTEL_COLLECTOR", bin, err)
	}
	return bin
}

// receiverConfig is the net_intel receiver's configuration for one scenario.
type receiverConfig struct {
	// Services maps a match ("ip:port", "ip" or a CIDR) to a service name.
	Services map[string]string
	// Intelligence and Security override keys of those sections (thresholds, windows).
	Intelligence map[string]any
	Security     map[string]any
	// Receiver sets more top-level keys of the receiver (capture, telemetry, privacy, ...).
	Receiver map[string]any
	// Pipelines lists the pipelines to run ("logs", "traces", "metrics"); all three when empty.
	Pipelines []string
	// TelemetryEndpoint, "host:port", serves the collector's own metrics (Prometheus) there;
	// empty: the collector's own metrics are off.
	TelemetryEndpoint string
	// Naming sets the naming section (host_root) when not empty.
	Naming map[string]any
}

// collectorConfig renders the whole collector configuration. YAML is a superset of JSON, so
// the collector reads the JSON document as it is.
func (s *scenario) collectorConfig(rc receiverConfig) []byte {
	intel := map[string]any{
		"flush_interval":  "2s",
		"span_sampling":   1.0,
		"baseline_warmup": 20,
	}
	for k, v := range rc.Intelligence {
		intel[k] = v
	}
	security := map[string]any{}
	for k, v := range rc.Security {
		security[k] = v
	}
	type service struct {
		Name  string `json:"name"`
		Match string `json:"match"`
	}
	services := []service{}
	for match, name := range rc.Services {
		services = append(services, service{Name: name, Match: match})
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Match < services[j].Match })
	recv := map[string]any{
		"services":     services,
		"intelligence": intel,
	}
	if len(security) > 0 {
		recv["security"] = security
	}
	if len(rc.Naming) > 0 {
		recv["naming"] = rc.Naming
	}
	for k, v := range rc.Receiver {
		recv[k] = v
	}
	fileExp := func(name string) map[string]any {
		return map[string]any{"path": s.path(name), "flush_interval": "1s"}
	}
	pipelines := rc.Pipelines
	if len(pipelines) == 0 {
		pipelines = []string{"logs", "traces", "metrics"}
	}
	exporters := map[string]any{}
	pipes := map[string]any{}
	for _, p := range pipelines {
		exporters["file/"+p] = fileExp(p + ".json")
		pipes[p] = map[string]any{"receivers": []string{"net_intel"}, "exporters": []string{"file/" + p}}
	}
	ownMetrics := map[string]any{"level": "none"}
	if rc.TelemetryEndpoint != "" {
		host, port, err := net.SplitHostPort(rc.TelemetryEndpoint)
		if err != nil {
			s.t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		ownMetrics = map[string]any{"level": "normal", "readers": []any{map[string]any{
			"pull": map[string]any{"exporter": map[string]any{"prometheus": map[string]any{"host": host, "port": p}}},
		}}}
	}
	cfg := map[string]any{
		"receivers": map[string]any{"net_intel": recv},
		"exporters": exporters,
		"service": map[string]any{
			"telemetry": map[string]any{
				"logs":    map[string]any{"level": "info"},
				"metrics": ownMetrics,
			},
			"pipelines": pipes,
		},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// collector is a running dist/otelcol-netintel.
type collector struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
	stopped bool
}

// startCollector writes the configuration, starts the collector and waits until it says it
// is ready; it fails the test with the collector's log when it does not come up.
func (s *scenario) startCollector(rc receiverConfig) *collector {
	s.t.Helper()
	return s.startCollectorWith(rc, nil)
}

// startCollectorWith is startCollector with the command line made by argv from the binary
// and the config path (nil: run the binary itself), e.g. to run it in a container.
func (s *scenario) startCollectorWith(rc receiverConfig, argv func(bin, config string) []string) *collector {
	t := s.t
	t.Helper()
	bin := collectorBinary(t)
	cfgPath := s.path("collector.yaml")
	if err := os.WriteFile(cfgPath, s.collectorConfig(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := s.path("collector.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{bin, "--config", cfgPath}
	if argv != nil {
		args = argv(bin, cfgPath)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = s.dir
	pr, pw := io.Pipe()
	cmd.Stdout = logFile
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start collector: %v", err)
	}
	c := &collector{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	ready := make(chan struct{})
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if strings.Contains(line, readyLine) {
				once.Do(func() { close(ready) })
			}
		}
		_, _ = io.Copy(logFile, pr)
	}()
	go func() {
		c.waitErr = cmd.Wait()
		pw.Close()
		close(c.done)
	}()
	s.col = c
	t.Cleanup(func() {
		c.stop(20 * time.Second)
		logFile.Close()
	})
	select {
	case <-ready:
	case <-c.done:
		t.Fatalf("collector exited before it was ready (%v); its errors:\n%s", c.waitErr, errorLines(logPath, 10))
	case <-time.After(90 * time.Second):
		t.Fatalf("collector not ready after 90s (no %q); its errors:\n%s\nits last lines:\n%s", readyLine, errorLines(logPath, 10), tail(logPath, 15))
	}
	return c
}

// stop sends SIGTERM and waits up to grace for the exit, then kills. It returns the exit code
// (-1 when killed or not started by us).
func (c *collector) stop(grace time.Duration) (exitCode int, err error) {
	if c == nil || c.cmd.Process == nil {
		return -1, errors.New("collector not started")
	}
	if !c.stopped {
		c.stopped = true
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
		return -1, fmt.Errorf("collector did not exit within %s of SIGTERM; killed", grace)
	}
	if c.waitErr == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(c.waitErr, &ee) {
		return ee.ExitCode(), c.waitErr
	}
	return -1, c.waitErr
}

func (c *collector) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (c *collector) pid() int { return c.cmd.Process.Pid }

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startProcess starts a long-running server with its output in <dir>/<name>.log and stops
// it (SIGTERM, then SIGKILL) at the end of the test.
func (s *scenario) startProcess(name string, argv ...string) *exec.Cmd {
	s.t.Helper()
	return s.startProcessWith(name, nil, argv...)
}

// startProcessWith is startProcess with a hook to adjust the command (environment) first.
func (s *scenario) startProcessWith(name string, setup func(*exec.Cmd), argv ...string) *exec.Cmd {
	t := s.t
	t.Helper()
	if _, err := exec.LookPath(argv[0]); err != nil {
		t.Fatalf("%s: %v (install the Debian package; .ci/run does)", argv[0], err)
	}
	logFile, err := os.Create(s.path(name + ".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if setup != nil {
		setup(cmd)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logFile.Close()
	})
	return cmd
}

// waitTCP waits until addr accepts connections.
func (s *scenario) waitTCP(addr string) {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nothing listens on %s after 15s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run runs a client to completion (bounded by timeout) and returns its combined output.
func (s *scenario) run(timeout time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.dir
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: stopped after %s: %w", argv[0], timeout, ctx.Err())
	}
	return string(out), err
}

// mustRun is run that fails the test on error.
func (s *scenario) mustRun(timeout time.Duration, argv ...string) string {
	s.t.Helper()
	out, err := s.run(timeout, argv...)
	if err != nil {
		s.t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, clip(out, 2000))
	}
	return out
}

// curl makes n requests to url one after another and returns how many answered each status.
func (s *scenario) curl(n int, url string, extra ...string) map[string]int {
	s.t.Helper()
	codes := map[string]int{}
	for i := 0; i < n; i++ {
		args := append([]string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"}, extra...)
		args = append(args, url)
		out, _ := s.run(10*time.Second, args...)
		codes[strings.TrimSpace(out)]++
	}
	return codes
}

// errorLines returns the first n lines of a collector log that report an error (a failed
// start prints a long stack; the cause is on its error lines).
func errorLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	var out []string
	final := false // the command's own "Error:" message and what follows it
	for _, line := range strings.Split(string(b), "\n") {
		final = final || strings.HasPrefix(line, "Error:")
		if final || strings.Contains(line, "\terror\t") {
			out = append(out, line)
			if len(out) == n {
				break
			}
		}
	}
	if len(out) == 0 {
		return tail(path, 20)
	}
	return strings.Join(out, "\n")
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// eventually re-reads the collector's output until check passes or timeout; on timeout it
// fails with what was expected and what was found.
func (s *scenario) eventually(timeout time.Duration, expected string, check func(o *output) (ok bool, found string)) *output {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var found string
	for {
		o, err := readOutput(s.dir)
		if err != nil {
			found = err.Error()
		} else {
			var ok bool
			ok, found = check(o)
			if ok {
				return o
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %s:\nexpected: %s\nfound:\n%s", timeout, expected, found)
			return nil
		}
		if s.col != nil && !s.col.alive() {
			s.t.Fatalf("collector exited (%v) while waiting for: %s\nits log:\n%s", s.col.waitErr, expected, tail(s.col.logPath, 30))
		}
		time.Sleep(time.Second)
	}
}

// never checks, once the output is final, that nothing matches; it fails with the matches.
func (s *scenario) never(o *output, what string, bad func(o *output) (n int, found string)) {
	s.t.Helper()
	if n, found := bad(o); n > 0 {
		s.t.Errorf("expected no %s, found %d:\n%s", what, n, found)
	}
}
