package kmatrix

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Render writes the report: one block per kernel (every check, failures first named by
// kernel and program), then a summary with one line per kernel.
func Render(w io.Writer, results []*Result, wall time.Duration) {
	width := 0
	for _, r := range results {
		for _, c := range r.Checks {
			width = max(width, len(c.Name))
		}
	}
	for _, r := range results {
		k := r.Kernel
		how := "host kernel"
		if k.Mode == "qemu" {
			how = "QEMU TCG"
		}
		took := fmt.Sprintf("%.1f s", k.Wall.Seconds())
		if k.LockWait >= time.Second {
			took += fmt.Sprintf(", %.1f s of it waiting for the shared lock", k.LockWait.Seconds())
		}
		fmt.Fprintf(w, "\n== kernel %s: %s %s (%s, %s) %s\n", k.Name, k.Package, k.Version, how, took, verdict(r))
		for _, c := range r.Checks {
			detail := c.Detail
			if c.Status == Fail {
				detail = "[" + k.Name + "] " + detail
			}
			fmt.Fprintf(w, "  %-7s %-*s  %-4s  %s\n", c.Area, width, c.Name, c.Status, detail)
		}
		if len(r.Capabilities) > 0 {
			fmt.Fprintf(w, "  capabilities, as the collector logged them on %s:\n", k.Name)
			for _, l := range r.Capabilities {
				fmt.Fprintf(w, "    %s\n", l)
			}
		}
	}

	failed := 0
	for _, r := range results {
		if r.Failed() {
			failed++
		}
	}
	fmt.Fprintf(w, "\nkernel matrix: %d kernels, %d failed, %s\n", len(results), failed, wall.Round(100*time.Millisecond))
	nameW, pkgW := 0, 0
	for _, r := range results {
		nameW = max(nameW, len(r.Kernel.Name))
		pkgW = max(pkgW, len(r.Kernel.Package+" "+r.Kernel.Version))
	}
	for _, r := range results {
		fmt.Fprintf(w, "  %-*s  %-*s  %-4s  %s; %s\n", nameW, r.Kernel.Name, pkgW, r.Kernel.Package+" "+r.Kernel.Version,
			verdict(r), testSummary(r), distSummary(r))
	}
	renderCapabilities(w, results)
}

// renderCapabilities is the kernel × capability table, from each kernel's capability gauge.
func renderCapabilities(w io.Writer, results []*Result) {
	names := map[string]bool{}
	for _, r := range results {
		for n := range r.CapabilityStates {
			names[n] = true
		}
	}
	if len(names) == 0 {
		return
	}
	rows := slices.Sorted(maps.Keys(names))
	width := len("capability")
	for _, n := range rows {
		width = max(width, len(n))
	}
	fmt.Fprintf(w, "\n  %-*s", width, "capability")
	for _, r := range results {
		fmt.Fprintf(w, "  %-6s", r.Kernel.Name)
	}
	fmt.Fprintln(w)
	for _, n := range rows {
		fmt.Fprintf(w, "  %-*s", width, n)
		for _, r := range results {
			state := r.CapabilityStates[n]
			if state == "" {
				state = "-"
			}
			fmt.Fprintf(w, "  %-6s", state)
		}
		fmt.Fprintln(w)
	}
}

func verdict(r *Result) string {
	if r.Failed() {
		return "FAIL"
	}
	return "PASS"
}

func testSummary(r *Result) string {
	var pass, fail, skip int
	for _, t := range r.Tests {
		switch t.Outcome {
		case Passed:
			pass++
		case Skipped:
			skip++
		default:
			fail++
		}
	}
	if len(r.Tests) == 0 {
		for _, c := range r.Checks {
			if c.Status == Fail && (c.Area == "boot" || c.Area == "capture") {
				return c.Name + ": " + c.Detail
			}
		}
		return "no capture tests ran"
	}
	s := fmt.Sprintf("capture tests %d passed", pass)
	if fail > 0 {
		s += fmt.Sprintf(", %d failed", fail)
	}
	if skip > 0 {
		s += fmt.Sprintf(", %d skipped", skip)
	}
	return s
}

func distSummary(r *Result) string {
	seen := false
	for _, c := range r.Checks {
		if c.Area != "dist" {
			continue
		}
		seen = true
		if c.Status == Fail {
			return "distribution: " + c.Name + ": " + c.Detail
		}
	}
	if !seen {
		return "distribution not run"
	}
	return "distribution ok"
}

// Row is one line of the matrix file scripts/test-kernels.sh writes (tab-separated: name,
// mode, package, version, transcript, console, wall seconds, exit status and, for the host,
// the seconds spent waiting for the shared lock).
type Row struct {
	Kernel     Kernel
	Transcript string
	Console    string
}

// ParseRow reads one line of the matrix file.
func ParseRow(line string) (Row, error) {
	f := strings.Split(strings.TrimRight(line, "\n"), "\t")
	if len(f) != 8 && len(f) != 9 {
		return Row{}, fmt.Errorf("matrix row %q: want 8 or 9 tab-separated fields, have %d", line, len(f))
	}
	var waited float64
	if len(f) == 9 {
		if _, err := fmt.Sscan(f[8], &waited); err != nil {
			return Row{}, fmt.Errorf("matrix row %q: lock wait seconds: %w", line, err)
		}
	}
	var wall float64
	var status int
	if _, err := fmt.Sscan(f[6], &wall); err != nil {
		return Row{}, fmt.Errorf("matrix row %q: wall seconds: %w", line, err)
	}
	if _, err := fmt.Sscan(f[7], &status); err != nil {
		return Row{}, fmt.Errorf("matrix row %q: exit status: %w", line, err)
	}
	return Row{
		Kernel: Kernel{Name: f[0], Mode: f[1], Package: f[2], Version: f[3],
			Wall: time.Duration(wall * float64(time.Second)), ExitStatus: status,
			LockWait: time.Duration(waited * float64(time.Second))},
		Transcript: f[4],
		Console:    f[5],
	}, nil
}
