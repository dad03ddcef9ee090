// Command kmatrix-report judges the kernel matrix's transcripts and prints the per-kernel
// report; scripts/test-kernels.sh runs it last. Its exit status is 1 when any kernel failed.
//
//	kmatrix-report -wall 3m2s out/kmatrix/matrix.tsv
//
// With CI=true a skipped kernel test counts as a failure: in CI the kernel tests must run.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/netintel/netintelreceiver/internal/kmatrix"
)

// consoleLines is how much of a guest's own console the report may quote.
const consoleLines = 40

func main() {
	wall := flag.Duration("wall", 0, "wall time of the whole matrix, for the summary")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: kmatrix-report [-wall D] MATRIX.tsv")
		os.Exit(2)
	}
	failed, err := run(flag.Arg(0), *wall)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kmatrix-report:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

func run(matrix string, wall time.Duration) (bool, error) {
	b, err := os.ReadFile(matrix)
	if err != nil {
		return false, err
	}
	policy := kmatrix.Policy{SkipIsFailure: os.Getenv("CI") == "true"}
	var results []*kmatrix.Result
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		row, err := kmatrix.ParseRow(line)
		if err != nil {
			return false, err
		}
		if row.Console != "" {
			row.Kernel.ConsoleTail = tail(row.Console, consoleLines)
		}
		t := &kmatrix.Transcript{Sections: map[string]*kmatrix.Section{}}
		if f, err := os.Open(row.Transcript); err == nil {
			t, err = kmatrix.ParseTranscript(f)
			f.Close()
			if err != nil {
				return false, fmt.Errorf("%s: %w", row.Transcript, err)
			}
		}
		results = append(results, kmatrix.Judge(row.Kernel, t, policy))
	}
	if len(results) == 0 {
		return false, fmt.Errorf("%s lists no kernels", matrix)
	}
	kmatrix.Render(os.Stdout, results, wall)
	failed := false
	for _, r := range results {
		failed = failed || r.Failed()
	}
	return failed, nil
}

// tail is the last n lines of a file (nothing when it cannot be read).
func tail(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}
