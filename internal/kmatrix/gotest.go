package kmatrix

import (
	"regexp"
	"strings"
	"time"
)

// Outcome is what became of one test.
type Outcome string

const (
	Passed     Outcome = "pass"
	Failed     Outcome = "FAIL"
	Skipped    Outcome = "skip"
	Unfinished Outcome = "unfinished" // started, never ended: the run was cut short or timed out
)

// TestResult is one top-level test of a `go test -v` run.
type TestResult struct {
	Name    string
	Outcome Outcome
	Elapsed time.Duration
	// Output is what the test (and its subtests) printed, indentation removed.
	Output []string
}

var (
	runLine    = regexp.MustCompile(`^=== (?:RUN|CONT|NAME)\s+(\S+)`)
	resultLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)`)
	// "panic: test timed out after 4m50s" is followed by "running tests:" and one line per
	// test still running, "\t\tTestName (2m1s)".
	timedOutLine = regexp.MustCompile(`^panic: test timed out after (\S+)`)
	runningLine  = regexp.MustCompile(`^\s+(Test\S*) \(\S+\)$`)
)

// ParseGoTest reads the -test.v output of a test binary into its top-level tests, in the
// order they started. Tests that started and never reported are Unfinished; a test the
// binary's -test.timeout caught says so in its output.
func ParseGoTest(lines []string) []TestResult {
	var tests []TestResult
	index := map[string]int{}
	cur := -1
	get := func(name string) int {
		if i, ok := index[name]; ok {
			return i
		}
		index[name] = len(tests)
		tests = append(tests, TestResult{Name: name, Outcome: Unfinished})
		return len(tests) - 1
	}
	timedOut := ""
	for _, line := range lines {
		if m := runLine.FindStringSubmatch(line); m != nil {
			cur = get(topLevel(m[1]))
			continue
		}
		if m := resultLine.FindStringSubmatch(line); m != nil {
			name := m[2]
			if name != topLevel(name) {
				// A subtest's result is part of its parent's output.
				if cur >= 0 {
					tests[cur].Output = append(tests[cur].Output, strings.TrimSpace(line))
				}
				continue
			}
			i := get(name)
			tests[i].Outcome = map[string]Outcome{"PASS": Passed, "FAIL": Failed, "SKIP": Skipped}[m[1]]
			if d, err := time.ParseDuration(m[3] + "s"); err == nil {
				tests[i].Elapsed = d
			}
			cur = -1
			continue
		}
		if m := timedOutLine.FindStringSubmatch(line); m != nil {
			timedOut = m[1]
			cur = -1
			continue
		}
		if timedOut != "" {
			if m := runningLine.FindStringSubmatch(line); m != nil {
				i := get(topLevel(m[1]))
				tests[i].Output = append(tests[i].Output, "test binary timed out after "+timedOut+" while this test ran")
			}
			continue
		}
		if cur >= 0 && strings.TrimSpace(line) != "" {
			tests[cur].Output = append(tests[cur].Output, strings.TrimSpace(line))
		}
	}
	return tests
}

func topLevel(name string) string {
	top, _, _ := strings.Cut(name, "/")
	return top
}

var (
	// The loader's error names the program: "program ni_probe: load program: ..." (one
	// collection) or "program ni_enter_connect (tcp_connections, required) failed on kernel
	// 6.1.0-57-amd64: attach ..." (programs loaded one by one).
	programError = regexp.MustCompile(`program (\w+)( \([^)]*\))?(?: failed on kernel \S+)?: (.*)`)
	// t.Fatal output: "kernel_linux_test.go:52: message".
	testLogLine = regexp.MustCompile(`^\S+_test\.go:\d+: (.*)`)
	omitted     = regexp.MustCompile(`\s*\(\d+ line\(s\) omitted\)`)
)

// Cause is the one line a person needs from a failure: the test's own last word (t.Fatal's
// message), which carries the loader's error naming the program and the kernel's complaint.
func (r TestResult) Cause() string {
	for _, l := range r.Output {
		if strings.HasPrefix(l, "test binary timed out") {
			return l
		}
	}
	// What the test logged before its last word is context (event dumps, loader logs).
	for i := len(r.Output) - 1; i >= 0; i-- {
		if m := testLogLine.FindStringSubmatch(r.Output[i]); m != nil {
			return omitted.ReplaceAllString(m[1], "")
		}
	}
	if r.Outcome == Unfinished {
		return "started but never finished (the run was cut short)"
	}
	if len(r.Output) > 0 {
		return r.Output[0]
	}
	return ""
}

// programCause extracts "program NAME: error" from a loader error, or "".
func programCause(s string) string {
	m := programError.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return "program " + m[1] + m[2] + ": " + omitted.ReplaceAllString(m[3], "")
}
