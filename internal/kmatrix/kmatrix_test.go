package kmatrix

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The fixtures are recorded transcripts:
//   - 6.1-core-relocation.log: the serial port of Debian's 6.1.0-57 under QEMU before the
//     CO-RE fixes (every kernel test and the collector fail to load a tcp program);
//   - 6.12-least-privilege.log: Debian's 6.12.117 after them: everything passes but the
//     least-privilege test (Debian's perf_event_paranoid 3 refuses CAP_PERFMON alone);
//   - host-pass.log: the host kernel (6.18), everything passing;
//   - gotest-timeout.txt: a capture test binary caught by its -test.timeout.

func load(t *testing.T, name string) *Transcript {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := ParseTranscript(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func check(t *testing.T, r *Result, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q among %+v", name, r.Checks)
	return Check{}
}

var guest61 = Kernel{Name: "6.1", Mode: "qemu", Package: "linux-image-6.1.0-57-amd64", Version: "6.1.192-3", Wall: 29 * time.Second}

func TestParseTranscriptSections(t *testing.T) {
	tr := load(t, "6.1-core-relocation.log")
	want := []string{"kernel", "capture-tests", "bpf-baseline", "dist-start", "dist-stop", "bpf-left", "collector-log", "logs-json", "traces-json"}
	if strings.Join(tr.Order, ",") != strings.Join(want, ",") {
		t.Fatalf("sections %v, want %v", tr.Order, want)
	}
	if !tr.Done || !tr.Exited || tr.ExitRC != 0 {
		t.Errorf("the recorded run reached its end: done=%v exited=%v rc=%d", tr.Done, tr.Exited, tr.ExitRC)
	}
	if s := tr.Section("capture-tests"); !s.Ended || s.RC != 1 {
		t.Errorf("capture-tests ended=%v rc=%d, want ended with 1", s.Ended, s.RC)
	}
	if s := tr.Section("dist-start"); !s.Ended || s.RC != 2 {
		t.Errorf("dist-start ended=%v rc=%d, want ended with 2", s.Ended, s.RC)
	}
	if got := tr.Section("kernel").Field("release"); got != "6.1.0-57-amd64" {
		t.Errorf("release %q", got)
	}
}

func TestParseTranscriptMarkerAfterPartialLine(t *testing.T) {
	in := "@@kmatrix begin a\nline\nno newline@@kmatrix end a rc=3\nstray\n@@kmatrix begin b\r\nx\r\n"
	tr, err := ParseTranscript(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	a := tr.Section("a")
	if !a.Ended || a.RC != 3 || strings.Join(a.Lines, "|") != "line|no newline" {
		t.Errorf("a = %+v", a)
	}
	b := tr.Section("b")
	if b.Ended || strings.Join(b.Lines, "|") != "x" {
		t.Errorf("b = %+v, want unended with the line x (carriage return removed)", b)
	}
	if tr.Done || tr.Exited || tr.LastBegun() != "b" {
		t.Errorf("done=%v last=%q", tr.Done, tr.LastBegun())
	}
	if _, err := ParseTranscript(strings.NewReader("@@kmatrix end a rc=x\n")); err == nil {
		t.Error("malformed end marker accepted")
	}
}

// Before the CO-RE fixes, 6.1 must fail, and every failure must name the kernel and the
// program the kernel refused.
func TestJudgeNamesKernelAndProgram(t *testing.T) {
	r := Judge(guest61, load(t, "6.1-core-relocation.log"), Policy{SkipIsFailure: true})
	if !r.Failed() {
		t.Fatal("6.1 before the CO-RE fixes judged passing")
	}
	if c := check(t, r, "reached /init"); c.Status != Pass || !strings.Contains(c.Detail, "6.1.0-57-amd64") {
		t.Errorf("boot: %+v", c)
	}
	kernelTests := 0
	for _, c := range r.Checks {
		if !strings.HasPrefix(c.Name, "TestKernel") {
			continue
		}
		kernelTests++
		if c.Status != Fail || !strings.Contains(c.Detail, "program ni_") || !strings.Contains(c.Detail, "bad CO-RE relocation") {
			t.Errorf("%s: %s %q, want a failure naming the program and the relocation", c.Name, c.Status, c.Detail)
		}
		if strings.Contains(c.Detail, "omitted") {
			t.Errorf("%s: detail keeps the loader's line count: %q", c.Name, c.Detail)
		}
	}
	if kernelTests != 19 {
		t.Errorf("%d kernel tests judged, the transcript has 19", kernelTests)
	}
	if c := check(t, r, "15 tests without the kernel"); c.Status != Pass {
		t.Errorf("unit tests: %+v", c)
	}
	start := check(t, r, "collector started")
	if start.Status != Fail || !regexp.MustCompile(`exited with status 1 before it was ready, after [0-9.]+ s: program ni_\w+: load program: bad CO-RE relocation`).MatchString(start.Detail) {
		t.Errorf("collector start: %+v", start)
	}
	for _, c := range r.Checks {
		if c.Area == "dist" && c.Name != "collector started" && c.Name != "no eBPF programs or links left" {
			t.Errorf("check %q after a collector that never started", c.Name)
		}
	}
	if c := check(t, r, "no eBPF programs or links left"); c.Status != Pass {
		t.Errorf("bpf-left: %+v", c)
	}

	var out bytes.Buffer
	Render(&out, []*Result{r}, time.Minute)
	report := out.String()
	for _, want := range []string{
		"== kernel 6.1: linux-image-6.1.0-57-amd64 6.1.192-3 (QEMU TCG, 29.0 s) FAIL",
		"[6.1] net_intel: load eBPF programs: program ni_probe: load program: bad CO-RE relocation: invalid func unknown#195896080\n",
		"kernel matrix: 1 kernels, 1 failed, 1m0s",
		"capture tests 15 passed, 19 failed; distribution: collector started",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}

// The healthy twin: the same judge on a kernel where everything works fails nothing.
func TestJudgeHostPasses(t *testing.T) {
	r := Judge(Kernel{Name: "host", Mode: "host", Package: "linux", Version: "6.18.44"}, load(t, "host-pass.log"), Policy{SkipIsFailure: true})
	if r.Failed() {
		t.Fatalf("host judged failing: %+v", r.Failures())
	}
	for name, detail := range map[string]string{
		"netintel.service_dependency":    "busybox depends on kmatrix-web",
		"netintel.error_pattern 404":     "2 × 404 on kmatrix-web GET /missing",
		"HTTP CLIENT spans":              "2 × 200, 2 × 404",
		"HTTP SERVER spans":              "2 × 200, 2 × 404",
		"CLIENT/SERVER paired":           "4 of 4 server spans",
		"SIGTERM":                        "exited with status 0",
		"no eBPF programs or links left": "left: none",
		"traffic (busybox wget → httpd)": "2 × 200, 2 × 404",
	} {
		if c := check(t, r, name); c.Status != Pass || !strings.Contains(c.Detail, detail) {
			t.Errorf("%s: %s %q, want pass with %q", name, c.Status, c.Detail, detail)
		}
	}
	if n := len(r.Tests); n != 39 {
		t.Errorf("%d tests, the transcript has 39", n)
	}
}

// After the CO-RE fixes 6.12 runs everything; the one failure names the test, the program
// and the kernel's refusal, and the report carries the kernel's capability gauge.
func TestJudgeGuestAfterFixes(t *testing.T) {
	k := Kernel{Name: "6.12", Mode: "qemu", Package: "linux-image-6.12.117+deb12-amd64", Version: "6.12.117-1~deb12u1", Wall: 181 * time.Second}
	r := Judge(k, load(t, "6.12-least-privilege.log"), Policy{SkipIsFailure: true})
	failures := r.Failures()
	if len(failures) != 1 || failures[0].Name != "TestKernelLeastPrivilege" {
		t.Fatalf("failures %+v, want only TestKernelLeastPrivilege", failures)
	}
	for _, want := range []string{"[CAP_BPF CAP_PERFMON]", "program ni_enter_connect (tcp_connections, required)", "opening tracepoint perf event: permission denied"} {
		if !strings.Contains(failures[0].Detail, want) {
			t.Errorf("cause %q lacks %q", failures[0].Detail, want)
		}
	}
	if c := check(t, r, "reached /init"); !strings.Contains(c.Detail, "perf_event_paranoid 3") {
		t.Errorf("boot: %+v, want the kernel's perf_event_paranoid", c)
	}
	if len(r.CapabilityStates) != 7 || r.CapabilityStates["tcp_retransmits"] != "on" {
		t.Errorf("capabilities %v", r.CapabilityStates)
	}
	if c := check(t, r, "capability gauge"); c.Status != Info || c.Detail != "7 capabilities, all on" {
		t.Errorf("gauge: %+v", c)
	}
	if len(r.Capabilities) != 1 || !strings.Contains(r.Capabilities[0], `"capabilities": "on: connect_error_reports`) {
		t.Errorf("capability log line %q, want the collector's line as it is", r.Capabilities)
	}
	var out bytes.Buffer
	Render(&out, []*Result{r}, 3*time.Minute)
	if !regexp.MustCompile(`(?m)^  tcp_retransmits\s+on\s*$`).MatchString(out.String()) {
		t.Errorf("report lacks the capability table:\n%s", out.String())
	}
}

// A capability the kernel lacks shows as off in the table and in the gauge's line.
func TestJudgeCapabilityOff(t *testing.T) {
	tr := transform(t, "6.12-least-privilege.log", func(l string) *string {
		if l == `netintel_receiver_capability{name="tcp_retransmits",state="on"} 1` {
			return keep(`netintel_receiver_capability{name="tcp_retransmits",state="off"} 1`)
		}
		return keep(l)
	})
	r := Judge(Kernel{Name: "6.12", Mode: "qemu"}, tr, Policy{})
	if c := check(t, r, "capability gauge"); c.Detail != "7 capabilities, off: tcp_retransmits" {
		t.Errorf("gauge: %+v", c)
	}
	var out bytes.Buffer
	Render(&out, []*Result{r}, time.Minute)
	if !regexp.MustCompile(`(?m)^  tcp_retransmits\s+off\s*$`).MatchString(out.String()) {
		t.Errorf("report lacks tcp_retransmits off:\n%s", out.String())
	}
}

func TestStartErrorNamesProgram(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`Error: cannot start pipelines: failed to start "net_intel" receiver: net_intel: program ni_enter_connect (tcp_connections, required) failed on kernel 6.1.0-57-amd64: attach to tracepoint syscalls:sys_enter_connect: opening tracepoint perf event: permission denied`,
			"program ni_enter_connect (tcp_connections, required): attach to tracepoint syscalls:sys_enter_connect: opening tracepoint perf event: permission denied"},
		{`Error: cannot start pipelines: failed to start "net_intel" receiver: net_intel: load eBPF programs: program ni_probe: load program: bad CO-RE relocation: invalid func unknown#195896080 (12 line(s) omitted)`,
			"program ni_probe: load program: bad CO-RE relocation: invalid func unknown#195896080"},
		{`Error: failed to get config: cannot unmarshal the configuration`, "failed to get config: cannot unmarshal the configuration"},
	} {
		if got := startError([]string{"info starting", tc.line}); got != tc.want {
			t.Errorf("startError(%q)\n = %q\nwant %q", tc.line, got, tc.want)
		}
	}
}

// transform rewrites a recorded transcript line by line (nil drops the line).
func transform(t *testing.T, name string, f func(line string) *string) *Transcript {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if nl := f(l); nl != nil {
			out = append(out, *nl)
		}
	}
	tr, err := ParseTranscript(strings.NewReader(strings.Join(out, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func keep(s string) *string { return &s }

func TestJudgeMissingErrorPattern(t *testing.T) {
	tr := transform(t, "host-pass.log", func(l string) *string {
		if strings.Contains(l, `"eventName":"netintel.error_pattern"`) {
			return nil
		}
		return keep(l)
	})
	r := Judge(Kernel{Name: "host", Mode: "host"}, tr, Policy{})
	if c := check(t, r, "netintel.error_pattern 404"); c.Status != Fail {
		t.Errorf("error pattern: %+v, want a failure", c)
	}
	if c := check(t, r, "netintel.service_dependency"); c.Status != Pass {
		t.Errorf("dependency: %+v, want pass (only the error pattern is missing)", c)
	}
}

// spansJSON is one traces.json line: a CLIENT and a SERVER span per status, the server's
// parent being the client's span when paired.
func spansJSON(t *testing.T, paired bool) string {
	t.Helper()
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i, status := range []int64{200, 404} {
		trace := pcommon.TraceID{byte(i + 1)}
		client, server := ss.Spans().AppendEmpty(), ss.Spans().AppendEmpty()
		for _, sp := range []ptrace.Span{client, server} {
			sp.SetTraceID(trace)
			sp.Attributes().PutStr(attrMethod, "GET")
			sp.Attributes().PutInt(attrServerPort, webPort)
			sp.Attributes().PutInt(attrStatusCode, status)
		}
		client.SetKind(ptrace.SpanKindClient)
		client.SetSpanID(pcommon.SpanID{1, byte(i)})
		server.SetKind(ptrace.SpanKindServer)
		server.SetSpanID(pcommon.SpanID{2, byte(i)})
		if paired {
			server.SetParentSpanID(client.SpanID())
		} else {
			server.SetParentSpanID(pcommon.SpanID{3, byte(i)})
		}
	}
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A kernel whose tcp_sock sequence numbers read wrong gives each side ids of its own: the
// spans are there, the pairing is not.
func TestJudgeOutputPairing(t *testing.T) {
	for _, paired := range []bool{true, false} {
		got := map[string]Check{}
		for _, c := range JudgeOutput(nil, []string{spansJSON(t, paired)}) {
			got[c.Name] = c
		}
		want := Pass
		if !paired {
			want = Fail
		}
		if c := got["CLIENT/SERVER paired"]; c.Status != want {
			t.Errorf("paired=%v: %+v, want %s", paired, c, want)
		}
		for _, name := range []string{"HTTP CLIENT spans", "HTTP SERVER spans"} {
			if c := got[name]; c.Status != Pass || c.Detail != "1 × 200, 1 × 404" {
				t.Errorf("paired=%v: %s %+v", paired, name, c)
			}
		}
		if c := got[eventDependency]; c.Status != Fail {
			t.Errorf("no logs, yet %s: %+v", eventDependency, c)
		}
	}
}

func TestJudgeSkippedKernelTest(t *testing.T) {
	tr := transform(t, "host-pass.log", func(l string) *string {
		if strings.HasPrefix(l, "--- PASS: TestKernelDigQuery") {
			return keep("    mmsg_linux_test.go:182: dig not installed (Debian: bind9-dnsutils)\n--- SKIP: TestKernelDigQuery (0.00s)")
		}
		return keep(l)
	})
	host := Kernel{Name: "host", Mode: "host"}
	if c := check(t, Judge(host, tr, Policy{SkipIsFailure: true}), "TestKernelDigQuery"); c.Status != Fail || c.Detail != "skipped: dig not installed (Debian: bind9-dnsutils)" {
		t.Errorf("CI: %+v, want a failure saying why it skipped", c)
	}
	r := Judge(host, tr, Policy{})
	if c := check(t, r, "TestKernelDigQuery"); c.Status != Skip {
		t.Errorf("outside CI: %+v, want skip", c)
	}
	if r.Failed() {
		t.Errorf("outside CI a skip failed the kernel: %+v", r.Failures())
	}
}

// A guest that hangs in a test is killed by the harness: the report says where it stopped.
func TestJudgeCutShort(t *testing.T) {
	stop := false
	tr := transform(t, "6.1-core-relocation.log", func(l string) *string {
		if stop {
			return nil
		}
		stop = strings.HasPrefix(l, "=== RUN   TestKernelFlood")
		return keep(l)
	})
	k := guest61
	k.ExitStatus, k.Wall = 124, 420*time.Second
	k.ConsoleTail = []string{"[  300.1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [capture.test:97]", "[  300.2] Modules linked in:"}
	r := Judge(k, tr, Policy{})
	c := check(t, r, "run complete")
	for _, want := range []string{"in capture-tests (TestKernelFlood)", "the harness killed it after 7m0s", "soft lockup"} {
		if c.Status != Fail || !strings.Contains(c.Detail, want) {
			t.Errorf("run complete: %+v, want a failure with %q", c, want)
		}
	}
	if c := check(t, r, "TestKernelFlood"); c.Status != Fail || !strings.Contains(c.Detail, "never finished") {
		t.Errorf("flood: %+v", c)
	}

	// The guest's own timeout fires first: /init reports the scenario's status 124.
	tr.Exited, tr.ExitRC = true, 124
	k.ExitStatus, k.ConsoleTail = 0, nil
	if c := check(t, Judge(k, tr, Policy{}), "run complete"); !strings.Contains(c.Detail, "the guest's own timeout stopped the scenario") {
		t.Errorf("guest timeout: %+v", c)
	}
}

func TestJudgeNoBoot(t *testing.T) {
	k := guest61
	k.ExitStatus = 0
	k.ConsoleTail = []string{"[    1.2] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"}
	r := Judge(k, &Transcript{Sections: map[string]*Section{}}, Policy{})
	c := check(t, r, "reached /init")
	if c.Status != Fail || !strings.Contains(c.Detail, "Kernel panic - not syncing") {
		t.Errorf("boot: %+v", c)
	}
}

func TestConsoleCause(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{[]string{"\x1bc\x1b[?7l\x1b[2JSeaBIOS (version 1.16.2-debian-1.16.2-1)", "Booting from ROM..."}, "Booting from ROM..."},
		{[]string{"[    1.2] Kernel panic - not syncing: Attempted to kill init!", "[    1.3] ---[ end Kernel panic ]---", ""}, "[    1.2] Kernel panic - not syncing: Attempted to kill init!"},
		{[]string{"qemu-system-x86_64: -kernel /x: Could not open '/x': No such file or directory"}, "qemu-system-x86_64: -kernel /x: Could not open '/x': No such file or directory"},
		{nil, ""},
	} {
		if got := consoleCause(tc.lines); got != tc.want {
			t.Errorf("consoleCause(%q) = %q, want %q", tc.lines, got, tc.want)
		}
	}
}

func TestParseGoTestTimeout(t *testing.T) {
	b, err := os.ReadFile("testdata/gotest-timeout.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := ParseGoTest(strings.Split(string(b), "\n"))
	if len(tests) != 2 {
		t.Fatalf("%d tests, want 2: %+v", len(tests), tests)
	}
	if tests[0].Name != "TestKernelReset" || tests[0].Outcome != Passed || tests[0].Elapsed != 2150*time.Millisecond {
		t.Errorf("first: %+v", tests[0])
	}
	flood := tests[1]
	if flood.Name != "TestKernelFlood" || flood.Outcome != Unfinished {
		t.Errorf("second: %+v", flood)
	}
	if got := flood.Cause(); got != "test binary timed out after 4s while this test ran" {
		t.Errorf("cause %q", got)
	}
}

func TestParseGoTestSubtests(t *testing.T) {
	tests := ParseGoTest([]string{
		"=== RUN   TestKernelClassification",
		"=== RUN   TestKernelClassification/tls",
		"    classify_linux_test.go:90: no TLS event",
		"    --- FAIL: TestKernelClassification/tls (0.50s)",
		"--- FAIL: TestKernelClassification (1.00s)",
	})
	if len(tests) != 1 || tests[0].Outcome != Failed || tests[0].Cause() != "no TLS event" {
		t.Fatalf("%+v", tests)
	}
}

func TestParseRow(t *testing.T) {
	row, err := ParseRow("6.12\tqemu\tlinux-image-6.12.117+deb12-amd64\t6.12.117-1~deb12u1\t/w/6.12.log\t/w/6.12.console\t157.3\t124\n")
	if err != nil {
		t.Fatal(err)
	}
	if row.Kernel.Name != "6.12" || row.Kernel.ExitStatus != 124 || row.Kernel.Wall != 157300*time.Millisecond || row.Console != "/w/6.12.console" {
		t.Errorf("%+v", row)
	}
	row, err = ParseRow("host\thost\tlinux\t6.18.44\t/w/host.log\t\t207.4\t0\t121.5")
	if err != nil || row.Kernel.LockWait != 121500*time.Millisecond || row.Console != "" {
		t.Errorf("host row %+v, %v", row, err)
	}
	var out bytes.Buffer
	Render(&out, []*Result{{Kernel: row.Kernel}}, time.Minute)
	if !strings.Contains(out.String(), "(host kernel, 207.4 s, 121.5 s of it waiting for the shared lock) PASS") {
		t.Errorf("report header:\n%s", out.String())
	}
	if _, err := ParseRow("6.1\tqemu\n"); err == nil {
		t.Error("short row accepted")
	}
}
