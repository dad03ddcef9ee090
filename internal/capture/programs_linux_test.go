//go:build linux && (amd64 || arm64)

package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/netintel/netintelreceiver/bpf"
)

// TestEveryProgramHasAPlan: every program of the object says whether the receiver needs it,
// and the plans name no program that is gone.
func TestEveryProgramHasAPlan(t *testing.T) {
	spec, err := bpf.LoadNetintel()
	if err != nil {
		t.Fatal(err)
	}
	for name := range spec.Programs {
		if _, ok := programPlans[name]; !ok {
			t.Errorf("program %s has no entry in programPlans", name)
		}
	}
	for name := range programPlans {
		if _, ok := spec.Programs[name]; !ok {
			t.Errorf("programPlans names %s, which the object does not have", name)
		}
	}
}

// TestKernelCountersTable: the Go table of kernel counters has one entry per slot of the
// kernel's counters map (enum counter_index).
func TestKernelCountersTable(t *testing.T) {
	spec, err := bpf.LoadNetintel()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := int(spec.Maps[bpf.NetintelMapCounters].MaxEntries), len(KernelCounters); got != want || numKernelCounters != want {
		t.Errorf("kernel has %d counters, KernelCounters %d, indexes %d", got, want, numKernelCounters)
	}
}

// loadSpec returns the object's spec configured as the source would configure it.
func loadSpec(t *testing.T) *ebpf.CollectionSpec {
	t.Helper()
	spec, err := bpf.LoadNetintel()
	if err != nil {
		t.Fatal(err)
	}
	s := &ebpfSource{opts: DefaultOptions().withDefaults()}
	if err := s.configure(spec); err != nil {
		t.Fatal(err)
	}
	spec.Maps[bpf.NetintelMapEvents].MaxEntries = 1 << 16
	return spec
}

func capabilityState(t *testing.T, states []CapabilityState, name Capability) CapabilityState {
	t.Helper()
	for _, s := range states {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no capability %s in %v", name, states)
	return CapabilityState{}
}

// TestKernelMissingTracepointDegradesOneCapability: a tracepoint the kernel lacks switches off
// exactly the capability of its program, with the reason; everything else is attached.
func TestKernelMissingTracepointDegradesOneCapability(t *testing.T) {
	requireKernel(t)
	l, err := loadPrograms(loadSpec(t), loadOptions{attach: true, tracepointFound: func(group, name string) bool {
		return !(group == "tcp" && name == "tcp_retransmit_synack") && tracepointExists(group, name)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	off := Degraded(l.capabilities)
	if len(off) != 1 || off[0].Name != CapSynAckRetransmits {
		t.Fatalf("degraded %v, want exactly %s", off, CapSynAckRetransmits)
	}
	if !strings.Contains(off[0].Reason, "tcp:tcp_retransmit_synack not in this kernel") {
		t.Errorf("reason %q does not name the tracepoint", off[0].Reason)
	}
	attached := 0
	for _, p := range programPlans {
		if p.mode == AttachTracepoint || p.everyMode {
			attached++
		}
	}
	if got, want := len(l.links), attached-1; got != want {
		t.Errorf("%d programs attached, want %d", got, want)
	}
	if s := DescribeCapabilities(l.capabilities); !strings.Contains(s, "off: tcp_synack_retransmits (ni_raw_retransmit_synack: tracepoint") {
		t.Errorf("report %q does not say what is off and why", s)
	}
}

// kernelTypesWith returns this kernel's BTF after edit, marshalled and parsed again so that
// renamed types are what a kernel without them looks like.
func kernelTypesWith(t *testing.T, edit func(*btf.Spec)) *btf.Spec {
	t.Helper()
	spec, err := btf.LoadSpec(btfPath)
	if err != nil {
		t.Fatal(err)
	}
	edit(spec)
	b, err := btf.NewBuilder(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for typ, err := range spec.All() {
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Add(typ); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func renameMember(t *testing.T, spec *btf.Spec, typeName, member string) {
	t.Helper()
	var s *btf.Struct
	if err := spec.TypeByName(typeName, &s); err != nil {
		t.Fatal(err)
	}
	for i := range s.Members {
		if s.Members[i].Name == member {
			s.Members[i].Name = member + "_gone"
			return
		}
	}
	t.Fatalf("%s has no member %s", typeName, member)
}

// TestKernelMissingFieldDegradesOneCapability: a field an optional program reads that this
// kernel does not have (simulated: renamed in the kernel types the loader relocates against)
// switches off that program's capability; the same for a required program is an error naming
// the program and the kernel.
func TestKernelMissingFieldDegradesOneCapability(t *testing.T) {
	requireKernel(t)
	types := kernelTypesWith(t, func(s *btf.Spec) { renameMember(t, s, "sk_buff", "head") })
	l, err := loadPrograms(loadSpec(t), loadOptions{kernelTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	off := Degraded(l.capabilities)
	if len(off) != 1 || off[0].Name != CapResetsSent {
		t.Fatalf("degraded %v, want exactly %s", off, CapResetsSent)
	}
	if !strings.Contains(off[0].Reason, "ni_raw_send_reset") {
		t.Errorf("reason %q does not name the program", off[0].Reason)
	}

	types = kernelTypesWith(t, func(s *btf.Spec) { renameMember(t, s, "tcp_sock", "write_seq") })
	_, err = loadPrograms(loadSpec(t), loadOptions{kernelTypes: types})
	var req *requiredProgramError
	if !errors.As(err, &req) {
		t.Fatalf("a required program that cannot relocate: got %v, want a requiredProgramError", err)
	}
	if !strings.Contains(err.Error(), "required") || !strings.Contains(err.Error(), kernelRelease()) {
		t.Errorf("error %q does not say required program and kernel", err)
	}
}

// otherKernelTypes lists BTF of kernels this machine does not run, from the sources reachable
// here: the kernel packages the matrix caches (NETINTEL_KERNEL_CACHE, default
// /var/cache/netintel-kernels, files btf-<release>), and the kernel BTF cilium/ebpf ships in its
// module's testdata.
func otherKernelTypes(t *testing.T) map[string]*btf.Spec {
	t.Helper()
	out := map[string]*btf.Spec{}
	dir := os.Getenv("NETINTEL_KERNEL_CACHE")
	if dir == "" {
		dir = "/var/cache/netintel-kernels"
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "btf-*"))
	for _, p := range paths {
		spec, err := btf.LoadSpec(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out["debian "+strings.TrimPrefix(filepath.Base(p), "btf-")] = spec
	}
	if modDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cilium/ebpf").Output(); err == nil {
		gz := filepath.Join(strings.TrimSpace(string(modDir)), "btf", "testdata", "vmlinux.btf.gz")
		if f, err := os.Open(gz); err == nil {
			defer f.Close()
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			out["cilium/ebpf testdata"] = spec
		}
	}
	return out
}

// TestKernelProgramsRelocateOnOtherKernels loads every program with the CO-RE relocations
// resolved against other kernels' types (not attached: they are verified by this kernel).
// Every required program must relocate; optional ones that cannot are reported off, never an
// error, and the report is logged per kernel.
func TestKernelProgramsRelocateOnOtherKernels(t *testing.T) {
	requireKernel(t)
	kernels := otherKernelTypes(t)
	if len(kernels) == 0 {
		t.Fatal("no other kernel's BTF found (neither the matrix cache nor cilium/ebpf's testdata)")
	}
	names := make([]string, 0, len(kernels))
	for k := range kernels {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			l, err := loadPrograms(loadSpec(t), loadOptions{kernelTypes: kernels[name]})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			defer l.close()
			t.Logf("%s: %s", name, DescribeCapabilities(l.capabilities))
			for _, s := range l.capabilities {
				if s.Required && !s.On {
					t.Errorf("%s: required capability %s off: %s", name, s.Name, s.Reason)
				}
			}
		})
	}
}
