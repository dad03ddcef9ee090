package bpf

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSourcesMatchGeneratedHash fails when a C source or header changed after the last
// generate.sh run: the committed objects would not be what the sources say.
func TestSourcesMatchGeneratedHash(t *testing.T) {
	f, err := os.Open("sources.sha256")
	if err != nil {
		t.Fatalf("sources.sha256 missing; run bpf/generate.sh: %v", err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("malformed line %q", sc.Text())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.Sum256(b)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s changed since the bindings were generated; run bpf/generate.sh (make generate) and commit the output", path)
		}
		seen[path] = true
	}
	// Every C input must be covered, or a new file could change silently.
	inputs, _ := filepath.Glob("c/*")
	for _, in := range inputs {
		if !seen[in] {
			t.Errorf("%s is not in sources.sha256; add it to generate.sh", in)
		}
	}
}

// TestRegenerationIsCurrent compiles the committed sources again (when clang and bpftool are
// installed) and requires byte-identical objects and bindings.
func TestRegenerationIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("regeneration in -short mode")
	}
	for _, tool := range []string{"clang", "llvm-strip", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: cannot regenerate", tool)
		}
	}
	out := t.TempDir()
	cmd := exec.Command("./generate.sh")
	cmd.Env = append(os.Environ(), "OUT="+out, "NO_VMLINUX=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, b)
	}
	for _, name := range []string{"netintel_x86_bpfel.o", "netintel_arm64_bpfel.o", "netintel_x86_bpfel.go", "netintel_arm64_bpfel.go", "sources.sha256"} {
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(committed, fresh) {
			t.Errorf("%s is stale: run bpf/generate.sh (make generate) and commit the output", name)
		}
	}
}
