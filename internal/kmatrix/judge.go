package kmatrix

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Kernel is one row of the matrix, as scripts/test-kernels.sh ran it.
type Kernel struct {
	Name    string // "host", "6.1", "6.12"
	Mode    string // "host" or "qemu"
	Package string // Debian package, or "linux <release>" for the host
	Version string // package version, or the host's uname -v
	// Wall is how long the run took, boot and power-off included; ExitStatus is the status
	// of the QEMU (or host scenario) process, 124 when the harness's timeout killed it.
	Wall       time.Duration
	ExitStatus int
	// LockWait is the part of Wall the host row spent waiting for the shared lock
	// (/tmp/netintel-e2e.lock) that other kernel tests on the machine hold.
	LockWait time.Duration
	// ConsoleTail is the end of the kernel's own console (ttyS0), for a guest that never
	// reached /init or died.
	ConsoleTail []string
}

// Status of one check.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "FAIL"
	Skip Status = "skip"
	Info Status = "info" // reported as seen, never failing (e.g. the capability line as-is)
)

// Check is one line of a kernel's report.
type Check struct {
	Area   string // "boot", "capture", "dist"
	Name   string
	Status Status
	Detail string
}

// Result is everything judged on one kernel.
type Result struct {
	Kernel  Kernel
	Release string // uname -r as the kernel reported it
	Checks  []Check
	Tests   []TestResult
	// Capabilities are the collector's log lines that mention capabilities, as they are.
	Capabilities []string
	// CapabilityStates is the receiver's capability gauge as the collector's telemetry
	// exported it: capability name → "on" or "off".
	CapabilityStates map[string]string
}

// Failed reports whether any check failed.
func (r *Result) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// Failures are the failed checks.
func (r *Result) Failures() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c)
		}
	}
	return out
}

// Policy is what counts as failure beyond a failed test.
type Policy struct {
	// SkipIsFailure makes a skipped kernel test (TestKernel*) a failure, as in CI, where the
	// kernel tests must run.
	SkipIsFailure bool
}

// Judge decides one kernel's result from its transcript.
func Judge(k Kernel, t *Transcript, p Policy) *Result {
	r := &Result{Kernel: k}
	add := func(area, name string, st Status, format string, args ...any) {
		r.Checks = append(r.Checks, Check{Area: area, Name: name, Status: st, Detail: fmt.Sprintf(format, args...)})
	}

	ks := t.Section("kernel")
	r.Release = ks.Field("release")
	switch {
	case !t.Began("kernel"):
		add("boot", "reached /init", Fail, "nothing on the results port: %s", cutShort(k, t))
	case k.Mode == "qemu":
		add("boot", "reached /init", Pass, "kernel %s up %s s at /init, %d CPU%s", r.Release, ks.Field("uptime"), cpus(ks), sysctls(ks))
	default:
		add("boot", "kernel", Pass, "%s, %d CPUs%s", r.Release, cpus(ks), sysctls(ks))
	}
	if t.Began("kernel") && !t.Done {
		add("boot", "run complete", Fail, "%s", cutShort(k, t))
	}

	judgeTests(r, t, p, add)
	judgeDist(r, t, add)
	return r
}

// sysctls are the settings that decide what CAP_BPF and CAP_PERFMON allow without
// CAP_SYS_ADMIN (Debian's kernels default perf_event_paranoid to 3).
func sysctls(s *Section) string {
	var out string
	for _, key := range []string{"perf_event_paranoid", "unprivileged_bpf_disabled"} {
		if v := s.Field(key); v != "" {
			out += ", " + key + " " + v
		}
	}
	return out
}

func cpus(s *Section) int {
	var n int
	fmt.Sscan(s.Field("cpus"), &n)
	return n
}

// cutShort says where and why a run stopped before its end.
func cutShort(k Kernel, t *Transcript) string {
	var why string
	switch {
	case t.Exited && t.ExitRC == 124:
		why = fmt.Sprintf("the guest's own timeout stopped the scenario (the VM ran %s)", k.Wall.Round(time.Second))
	case k.ExitStatus == 124:
		why = fmt.Sprintf("the harness killed it after %s", k.Wall.Round(time.Second))
	case k.ExitStatus != 0:
		why = fmt.Sprintf("exit status %d after %s", k.ExitStatus, k.Wall.Round(time.Second))
	default:
		why = fmt.Sprintf("it stopped after %s", k.Wall.Round(time.Second))
	}
	where := "before any output"
	if last := t.LastBegun(); last != "" {
		where = "in " + last
		if last == "capture-tests" {
			for _, tr := range ParseGoTest(t.Section(last).Lines) {
				if tr.Outcome == Unfinished {
					where += " (" + tr.Name + ")"
				}
			}
		}
	}
	msg := "run cut short " + where + ": " + why
	if tail := consoleCause(k.ConsoleTail); tail != "" {
		msg += "; console: " + tail
	}
	return msg
}

// ansiEscape matches the terminal control sequences SeaBIOS and QEMU write to the console.
var ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[A-Za-z])`)

// consoleCause picks the kernel's last words from the console (ttyS0, with QEMU's own
// messages after it): a panic, an oops, a BUG, else its last line.
func consoleCause(lines []string) string {
	last := ""
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(ansiEscape.ReplaceAllString(lines[i], ""))
		if last == "" {
			last = l
		}
		if strings.Contains(l, "---[ end") {
			continue // the trailer of the panic it closes
		}
		for _, key := range []string{"Kernel panic", "BUG:", "Oops", "general protection", "watchdog:", "Out of memory"} {
			if strings.Contains(l, key) {
				return l
			}
		}
	}
	return last
}

func judgeTests(r *Result, t *Transcript, p Policy, add func(area, name string, st Status, format string, args ...any)) {
	s := t.Section("capture-tests")
	if !t.Began("capture-tests") {
		if t.Began("kernel") {
			add("capture", "kernel tests", Fail, "not run")
		}
		return
	}
	r.Tests = ParseGoTest(s.Lines)
	var unit, unitFailed []string
	for _, tr := range r.Tests {
		kernel := strings.HasPrefix(tr.Name, "TestKernel")
		if !kernel && tr.Outcome == Passed {
			unit = append(unit, tr.Name)
			continue
		}
		if !kernel && tr.Outcome != Passed {
			unitFailed = append(unitFailed, tr.Name)
		}
		st := map[Outcome]Status{Passed: Pass, Failed: Fail, Skipped: Skip, Unfinished: Fail}[tr.Outcome]
		if st == Skip && kernel && p.SkipIsFailure {
			st = Fail
		}
		detail := fmt.Sprintf("%.1fs", tr.Elapsed.Seconds())
		if st != Pass {
			detail = tr.Cause()
			if tr.Outcome == Skipped {
				detail = "skipped: " + detail
			}
		}
		add("capture", tr.Name, st, "%s", detail)
	}
	if len(unit) > 0 {
		add("capture", fmt.Sprintf("%d tests without the kernel", len(unit)), Pass, "")
	}
	if len(r.Tests) == 0 {
		add("capture", "kernel tests", Fail, "the test binary reported no tests: %s", firstNonEmpty(s.Lines))
	} else if s.Ended && s.RC != 0 && !anyFailed(r.Tests) {
		// The binary failed without a failing test: a panic in TestMain, a bad flag.
		add("capture", "test binary", Fail, "exit status %d: %s", s.RC, lastNonEmpty(s.Lines))
	}
}

func anyFailed(ts []TestResult) bool {
	for _, t := range ts {
		if t.Outcome != Passed && t.Outcome != Skipped {
			return true
		}
	}
	return false
}

func firstNonEmpty(lines []string) string {
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			return strings.TrimSpace(l)
		}
	}
	return "(no output)"
}

func lastNonEmpty(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.TrimSpace(lines[i]) != "" {
			return strings.TrimSpace(lines[i])
		}
	}
	return "(no output)"
}

var (
	readyAfter   = regexp.MustCompile(`^ready after ([0-9.]+) s`)
	stoppedAfter = regexp.MustCompile(`^exited with status (\d+) ([0-9.]+) s after SIGTERM`)
	capability   = regexp.MustCompile(`(?i)capabilit`)
	// netintel_receiver_capability{name="socket_data",state="on"} 1 (Prometheus text).
	capabilityGauge = regexp.MustCompile(`^netintel_receiver_capability\{([^}]*)\}\s+(\S+)`)
	labelPair       = regexp.MustCompile(`(\w+)="([^"]*)"`)
	collectorErr    = regexp.MustCompile(`^Error: (.*)`)
)

func judgeDist(r *Result, t *Transcript, add func(area, name string, st Status, format string, args ...any)) {
	if !t.Began("dist-start") {
		if t.Section("capture-tests").Ended {
			add("dist", "collector started", Fail, "not run")
		}
		return
	}
	logLines := t.Section("collector-log").Lines
	for _, l := range logLines {
		if capability.MatchString(l) {
			r.Capabilities = append(r.Capabilities, l)
		}
	}

	start := t.Section("dist-start")
	started := start.Ended && start.RC == 0
	if started {
		m := readyAfter.FindStringSubmatch(firstNonEmpty(start.Lines))
		after := "?"
		if m != nil {
			after = m[1]
		}
		add("dist", "collector started", Pass, "ready after %s s", after)
	} else {
		add("dist", "collector started", Fail, "%s: %s", firstNonEmpty(start.Lines), startError(logLines))
	}

	if len(r.Capabilities) > 0 {
		add("dist", "capabilities (log)", Info, "%d line(s), below", len(r.Capabilities))
	} else if started {
		add("dist", "capabilities (log)", Info, "no log line mentions capabilities")
	}
	if tel := t.Section("telemetry"); t.Began("telemetry") {
		for _, l := range tel.Lines {
			m := capabilityGauge.FindStringSubmatch(l)
			if m == nil || m[2] == "0" {
				continue
			}
			labels := map[string]string{}
			for _, kv := range labelPair.FindAllStringSubmatch(m[1], -1) {
				labels[kv[1]] = kv[2]
			}
			if r.CapabilityStates == nil {
				r.CapabilityStates = map[string]string{}
			}
			r.CapabilityStates[labels["name"]] = labels["state"]
		}
		if n := len(r.CapabilityStates); n > 0 {
			var off []string
			for _, name := range slices.Sorted(maps.Keys(r.CapabilityStates)) {
				if r.CapabilityStates[name] != "on" {
					off = append(off, name)
				}
			}
			detail := fmt.Sprintf("%d capabilities, all on", n)
			if len(off) > 0 {
				detail = fmt.Sprintf("%d capabilities, off: %s", n, strings.Join(off, ", "))
			}
			add("dist", "capability gauge", Info, "%s", detail)
		} else {
			add("dist", "capability gauge", Info, "not in the collector's telemetry (%s)", firstNonEmpty(tel.Lines))
		}
	}

	if started {
		traffic := t.Section("traffic")
		judgeTraffic(traffic.Lines, add)
		out := JudgeOutput(t.Section("logs-json").Lines, t.Section("traces-json").Lines)
		for _, c := range out {
			c.Area = "dist"
			r.Checks = append(r.Checks, c)
		}
		if w := t.Section("dist-output"); w.Ended && w.RC != 0 {
			add("dist", "output written", Fail, "%s", firstNonEmpty(w.Lines))
		}
	}

	stop := t.Section("dist-stop")
	switch m := stoppedAfter.FindStringSubmatch(firstNonEmpty(stop.Lines)); {
	case !started:
	case !stop.Ended:
		add("dist", "SIGTERM", Fail, "the run ended while stopping the collector")
	case m != nil && m[1] == "0":
		add("dist", "SIGTERM", Pass, "exited with status 0 after %s s", m[2])
	default:
		add("dist", "SIGTERM", Fail, "%s", firstNonEmpty(stop.Lines))
	}

	left := t.Section("bpf-left")
	switch {
	case !left.Ended:
		if t.Began("bpf-left") || t.Done {
			add("dist", "no eBPF programs or links left", Fail, "not checked")
		}
	case left.RC == 0:
		add("dist", "no eBPF programs or links left", Pass, "%s", firstNonEmpty(left.Lines))
	default:
		add("dist", "no eBPF programs or links left", Fail, "%s", strings.Join(left.Lines, "; "))
	}
}

// startError is the collector's reason for not starting, with the program when it names one.
func startError(log []string) string {
	for _, l := range log {
		if m := collectorErr.FindStringSubmatch(l); m != nil {
			if p := programCause(m[1]); p != "" {
				return p
			}
			return m[1]
		}
	}
	for _, l := range log {
		if p := programCause(l); p != "" {
			return p
		}
	}
	if len(log) == 0 {
		return "the collector printed nothing"
	}
	return "its last line: " + lastNonEmpty(log)
}

// judgeTraffic checks the wget results: the pages served, the missing ones 404.
func judgeTraffic(lines []string, add func(area, name string, st Status, format string, args ...any)) {
	var ok, notFound, other []string
	for _, l := range lines {
		path, rest, found := strings.Cut(strings.TrimPrefix(l, "GET "), " ")
		if !found {
			continue
		}
		switch {
		case strings.HasPrefix(rest, "rc=0"):
			ok = append(ok, path)
		case strings.Contains(rest, "404"):
			notFound = append(notFound, path)
		default:
			other = append(other, l)
		}
	}
	switch {
	case len(other) > 0 || len(ok) == 0 || len(notFound) == 0:
		add("dist", "traffic (busybox wget → httpd)", Fail, "%d served, %d not found, unexpected: %s", len(ok), len(notFound), strings.Join(other, "; "))
	default:
		add("dist", "traffic (busybox wget → httpd)", Pass, "%d × 200, %d × 404", len(ok), len(notFound))
	}
}
