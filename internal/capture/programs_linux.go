//go:build linux && (amd64 || arm64)

package capture

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// programPlan says what one kernel program is for and whether the receiver can run without it.
type programPlan struct {
	capability Capability
	required   bool
}

// programPlans lists every program of the object. A program missing here fails
// TestEveryProgramHasAPlan: each new program must say whether it is required.
var programPlans = map[string]programPlan{
	// The data path: connection lifecycle and the bytes of reads and writes.
	"ni_set_state":     {CapTCPConnections, true},
	"ni_enter_connect": {CapTCPConnections, true},
	"ni_exit_connect":  {CapTCPConnections, true},
	"ni_exit_accept":   {CapTCPConnections, true},
	"ni_exit_accept4":  {CapTCPConnections, true},

	"ni_enter_read": {CapSocketData, true}, "ni_exit_read": {CapSocketData, true},
	"ni_enter_write": {CapSocketData, true}, "ni_exit_write": {CapSocketData, true},
	"ni_enter_readv": {CapSocketData, true}, "ni_exit_readv": {CapSocketData, true},
	"ni_enter_writev": {CapSocketData, true}, "ni_exit_writev": {CapSocketData, true},
	"ni_enter_sendto": {CapSocketData, true}, "ni_exit_sendto": {CapSocketData, true},
	"ni_enter_recvfrom": {CapSocketData, true}, "ni_exit_recvfrom": {CapSocketData, true},
	"ni_enter_sendmsg": {CapSocketData, true}, "ni_exit_sendmsg": {CapSocketData, true},
	"ni_enter_recvmsg": {CapSocketData, true}, "ni_exit_recvmsg": {CapSocketData, true},
	"ni_enter_sendmmsg": {CapSocketData, true}, "ni_exit_sendmmsg": {CapSocketData, true},
	"ni_enter_recvmmsg": {CapSocketData, true}, "ni_exit_recvmmsg": {CapSocketData, true},

	// Optional: each one feeds some findings and counters, which go quiet without it.
	"ni_send_reset":        {CapResetsSent, false},
	"ni_receive_reset":     {CapResetsReceived, false},
	"ni_retransmit":        {CapRetransmits, false},
	"ni_retransmit_synack": {CapSynAckRetransmits, false},
	"ni_error_report":      {CapConnectErrors, false},
}

// loadOptions are the loader's knobs that tests turn: the kernel types to relocate against
// (another kernel's BTF), and whether a tracepoint exists.
type loadOptions struct {
	kernelTypes     *btf.Spec
	tracepointFound func(group, name string) bool
	// attach is false when only loading is checked (relocation tests against another kernel's
	// types, whose programs must not run here).
	attach bool
}

// loaded is what loadPrograms made: the maps, the programs and links that came up, and the
// capability report.
type loaded struct {
	maps         *ebpf.Collection
	programs     map[string]*ebpf.Program
	links        []link.Link
	capabilities []CapabilityState
}

func (l *loaded) close() error {
	var errs []error
	for _, lk := range l.links {
		if err := lk.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	l.links = nil
	for _, p := range l.programs {
		_ = p.Close()
	}
	l.programs = nil
	if l.maps != nil {
		l.maps.Close()
		l.maps = nil
	}
	return errors.Join(errs...)
}

// requiredProgramError says which required program failed on which kernel, and the kernel's
// reason: the receiver cannot run without it.
type requiredProgramError struct {
	program    string
	capability Capability
	kernel     string
	err        error
}

func (e *requiredProgramError) Error() string {
	return fmt.Sprintf("net_intel: program %s (%s, required) failed on kernel %s: %v", e.program, e.capability, e.kernel, e.err)
}

func (e *requiredProgramError) Unwrap() error { return e.err }

// loadPrograms creates the maps, then loads and attaches every program on its own, so a
// tracepoint or a field this kernel lacks switches off that program's capability, never the
// receiver. A required program that fails is an error naming it.
func loadPrograms(spec *ebpf.CollectionSpec, o loadOptions) (*loaded, error) {
	if o.tracepointFound == nil {
		o.tracepointFound = tracepointExists
	}
	cache := btf.NewCache()
	copts := ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: o.kernelTypes}, Cache: cache}

	mapsOnly := spec.Copy()
	mapsOnly.Programs = nil
	maps, err := ebpf.NewCollectionWithOptions(mapsOnly, copts)
	if err != nil {
		return nil, privilegeError("create eBPF maps", fmt.Errorf("net_intel: create eBPF maps: %w", err))
	}
	l := &loaded{maps: maps, programs: map[string]*ebpf.Program{}}
	copts.MapReplacements = maps.Maps

	names := make([]string, 0, len(spec.Programs))
	for name := range spec.Programs {
		names = append(names, name)
	}
	sort.Strings(names)
	failed := map[Capability]string{}
	members := map[Capability][]string{}
	for _, name := range names {
		plan, ok := programPlans[name]
		if !ok {
			_ = l.close()
			return nil, fmt.Errorf("net_intel: program %s has no plan (required or optional); add it to programPlans", name)
		}
		members[plan.capability] = append(members[plan.capability], name)
		err := loadOne(l, spec, name, copts, o)
		if err == nil {
			continue
		}
		if errors.Is(err, unix.EPERM) {
			// Not this kernel lacking something: this process lacks a privilege.
			_ = l.close()
			return nil, privilegeError("load or attach program "+name, err)
		}
		if plan.required {
			_ = l.close()
			return nil, &requiredProgramError{program: name, capability: plan.capability, kernel: kernelRelease(), err: err}
		}
		if _, seen := failed[plan.capability]; !seen {
			failed[plan.capability] = name + ": " + firstLine(err.Error())
		}
	}
	for capName, progs := range members {
		st := CapabilityState{Name: capName, Required: programPlans[progs[0]].required, Programs: progs, On: true}
		if reason, off := failed[capName]; off {
			st.On = false
			st.Reason = reason
		}
		l.capabilities = append(l.capabilities, st)
	}
	sort.Slice(l.capabilities, func(i, j int) bool { return l.capabilities[i].Name < l.capabilities[j].Name })
	return l, nil
}

// loadOne loads and (when asked) attaches one program.
func loadOne(l *loaded, spec *ebpf.CollectionSpec, name string, copts ebpf.CollectionOptions, o loadOptions) error {
	ps := spec.Programs[name]
	group, tp, ok := tracepointOf(ps.SectionName)
	if !ok {
		return fmt.Errorf("section %q is not a tracepoint", ps.SectionName)
	}
	if o.attach && !o.tracepointFound(group, tp) {
		return fmt.Errorf("tracepoint %s:%s not in this kernel (%s/events/%s/%s)", group, tp, tracefsPath, group, tp)
	}
	one := spec.Copy()
	one.Programs = map[string]*ebpf.ProgramSpec{name: ps}
	coll, err := ebpf.NewCollectionWithOptions(one, copts)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("load: %w (verifier: %s)", err, lastLines(fmt.Sprintf("%+v", ve), 3))
		}
		return fmt.Errorf("load: %w", err)
	}
	prog := coll.DetachProgram(name)
	coll.Close() // the maps are clones of l.maps; the program lives on
	if !o.attach {
		l.programs[name] = prog
		return nil
	}
	lk, err := link.Tracepoint(group, tp, prog, nil)
	if err != nil {
		_ = prog.Close()
		return fmt.Errorf("attach to tracepoint %s:%s: %w", group, tp, err)
	}
	l.programs[name] = prog
	l.links = append(l.links, lk)
	return nil
}

func tracepointExists(group, name string) bool {
	_, err := os.Stat(fmt.Sprintf("%s/events/%s/%s/id", tracefsPath, group, name))
	return err == nil
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
