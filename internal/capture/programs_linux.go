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
	"github.com/netintel/netintelreceiver/bpf"
	"golang.org/x/sys/unix"
)

// programPlan says what one kernel program is for, whether the receiver can run without it, and
// in which attach mode it runs. Raw syscall handlers are not attached: they sit in the raw_enters
// / raw_exits program arrays under their syscall's number.
type programPlan struct {
	capability Capability
	required   bool
	mode       AttachMode
	// raw syscall handlers: the syscall, and whether at its exit
	syscall string
	exit    bool
	// everyMode: a raw tracepoint attached in every mode (the sock and tcp tracepoints, which
	// fire in softirq: bpf/c/sockets.h says why not classic ones).
	everyMode bool
}

// syscallPlans lists the syscalls the data path follows, with what each needs. Sends are
// followed at their sys_enter, receives at their sys_exit alone (their arguments are read back
// from the task's syscall registers).
var syscallPlans = []struct {
	name        string
	enter, exit bool
	capability  Capability
	required    bool
}{
	{"write", true, false, CapSocketData, true},
	{"writev", true, false, CapSocketData, true},
	{"sendto", true, false, CapSocketData, true},
	{"sendmsg", true, false, CapSocketData, true},
	{"sendmmsg", true, false, CapSocketData, true},
	{"read", false, true, CapSocketData, true},
	{"readv", false, true, CapSocketData, true},
	{"recvfrom", false, true, CapSocketData, true},
	{"recvmsg", false, true, CapSocketData, true},
	{"recvmmsg", false, true, CapSocketData, true},
	{"socket", false, true, CapTCPConnections, true},
	{"close", true, false, CapTCPConnections, true},
	{"connect", true, true, CapTCPConnections, true},
	{"accept", false, true, CapTCPConnections, true},
	{"accept4", false, true, CapTCPConnections, true},
	{"clone", true, false, CapForkInheritance, false},
	{"clone3", true, false, CapForkInheritance, false},
	{"fork", true, false, CapForkInheritance, false},
	{"vfork", true, false, CapForkInheritance, false},
	{"dup", true, true, CapForkInheritance, false},
	{"dup2", true, false, CapForkInheritance, false},
	{"dup3", true, false, CapForkInheritance, false},
	{"fcntl", true, true, CapForkInheritance, false},
}

// programPlans lists every program of the object. A program missing here fails
// TestEveryProgramHasAPlan: each new program must say whether it is required.
var programPlans = func() map[string]programPlan {
	p := map[string]programPlan{
		"ni_raw_set_state":         {CapTCPConnections, true, AttachRaw, "", false, true},
		"ni_raw_sys_enter":         {CapSocketData, true, AttachRaw, "", false, false},
		"ni_raw_sys_exit":          {CapSocketData, true, AttachRaw, "", false, false},
		"ni_raw_error_report":      {CapConnectErrors, false, AttachRaw, "", false, true},
		"ni_raw_send_reset":        {CapResetsSent, false, AttachRaw, "", false, true},
		"ni_raw_receive_reset":     {CapResetsReceived, false, AttachRaw, "", false, true},
		"ni_raw_retransmit":        {CapRetransmits, false, AttachRaw, "", false, true},
		"ni_raw_retransmit_synack": {CapSynAckRetransmits, false, AttachRaw, "", false, true},
		"ni_fork":                  {CapForkInheritance, false, AttachTracepoint, "", false, false},
		"ni_raw_fork":              {CapForkInheritance, false, AttachRaw, "", false, false},
	}
	for _, sc := range syscallPlans {
		if _, ok := syscallNumbers[sc.name]; !ok {
			continue // not a syscall on this architecture (fork, vfork, dup2 on arm64)
		}
		if sc.enter {
			p["ni_enter_"+sc.name] = programPlan{sc.capability, sc.required, AttachTracepoint, "", false, false}
			p["ni_raw_enter_"+sc.name] = programPlan{sc.capability, sc.required, AttachRaw, sc.name, false, false}
		}
		if sc.exit {
			p["ni_exit_"+sc.name] = programPlan{sc.capability, sc.required, AttachTracepoint, "", false, false}
			p["ni_raw_exit_"+sc.name] = programPlan{sc.capability, sc.required, AttachRaw, sc.name, true, false}
		}
	}
	return p
}()

// loadOptions are the loader's knobs that tests turn: the kernel types to relocate against
// (another kernel's BTF), and whether a tracepoint exists.
type loadOptions struct {
	mode            AttachMode // AttachTracepoint or AttachRaw (the caller resolves AttachAuto)
	kernelTypes     *btf.Spec
	tracepointFound func(group, name string) bool
	// attach is false when only loading is checked (relocation tests against another kernel's
	// types, whose programs must not run here).
	attach bool
}

// loaded is what loadPrograms made: the maps, the programs and links that came up, and the
// capability report.
type loaded struct {
	mode         AttachMode
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

// fillFreeSlots hands every slot of the socket states (sock_slots) to the kernel's free list
// (free_slots), from which a new socket takes one and to which a closed one returns it.
func fillFreeSlots(maps *ebpf.Collection) error {
	slots, free := maps.Maps[bpf.NetintelMapSockSlots], maps.Maps[bpf.NetintelMapFreeSlots]
	if slots == nil || free == nil {
		return errors.New("net_intel: the eBPF object has no sock_slots or free_slots map")
	}
	if free.MaxEntries() < slots.MaxEntries() {
		return fmt.Errorf("net_intel: free_slots holds %d slots, sock_slots has %d", free.MaxEntries(), slots.MaxEntries())
	}
	for i := uint32(0); i < slots.MaxEntries(); i++ {
		if err := free.Update(nil, i, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("net_intel: fill free_slots: %w", err)
		}
	}
	return nil
}

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
	if err := fillFreeSlots(maps); err != nil {
		maps.Close()
		return nil, err
	}

	names := make([]string, 0, len(spec.Programs))
	for name := range spec.Programs {
		names = append(names, name)
	}
	sort.Strings(names)
	failed := map[Capability]string{}
	members := map[Capability][]string{}
	if o.mode == AttachAuto {
		o.mode = AttachTracepoint
	}
	l.mode = o.mode
	for _, name := range names {
		plan, ok := programPlans[name]
		if !ok {
			_ = l.close()
			return nil, fmt.Errorf("net_intel: program %s has no plan (required or optional); add it to programPlans", name)
		}
		if plan.mode != o.mode && !plan.everyMode {
			continue
		}
		members[plan.capability] = append(members[plan.capability], name)
		err := loadOne(l, spec, name, plan, copts, o)
		if err == nil {
			continue
		}
		var ve *ebpf.VerifierError
		var ae *attachError
		if (errors.As(err, &ae) && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES))) ||
			(errors.Is(err, unix.EPERM) && !errors.As(err, &ve)) {
			// Not this kernel lacking something: this process lacks a privilege.
			_ = l.close()
			return nil, &attachRefused{program: name, err: privilegeError("load or attach program "+name, err)}
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

// loadOne loads and (when asked) attaches one program: a classic tracepoint, a raw tracepoint, or
// a raw syscall handler put in its program array.
func loadOne(l *loaded, spec *ebpf.CollectionSpec, name string, plan programPlan, copts ebpf.CollectionOptions, o loadOptions) error {
	ps := spec.Programs[name]
	var group, tp string
	switch {
	case plan.syscall != "":
	case plan.mode == AttachRaw:
		tp = strings.TrimPrefix(ps.SectionName, "raw_tp/")
		if g := rawTracepointGroup(tp); o.attach && !o.tracepointFound(g, tp) {
			return fmt.Errorf("tracepoint %s:%s not in this kernel (%s/events/%s/%s)", g, tp, tracefsPath, g, tp)
		}
	default:
		var ok bool
		group, tp, ok = tracepointOf(ps.SectionName)
		if !ok {
			return fmt.Errorf("section %q is not a tracepoint", ps.SectionName)
		}
		if o.attach && !o.tracepointFound(group, tp) {
			return fmt.Errorf("tracepoint %s:%s not in this kernel (%s/events/%s/%s)", group, tp, tracefsPath, group, tp)
		}
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
	var lk link.Link
	switch {
	case plan.syscall != "":
		array := bpf.NetintelMapRawEnters
		if plan.exit {
			array = bpf.NetintelMapRawExits
		}
		if err := l.maps.Maps[array].Put(uint32(syscallNumbers[plan.syscall]), prog); err != nil {
			_ = prog.Close()
			return &attachError{fmt.Errorf("enter in %s: %w", array, err)}
		}
	case plan.mode == AttachRaw:
		lk, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp, Program: prog})
		if err != nil {
			_ = prog.Close()
			return &attachError{fmt.Errorf("attach to raw tracepoint %s: %w", tp, err)}
		}
	default:
		lk, err = link.Tracepoint(group, tp, prog, nil)
		if err != nil {
			_ = prog.Close()
			return &attachError{fmt.Errorf("attach to tracepoint %s:%s: %w", group, tp, err)}
		}
	}
	l.programs[name] = prog
	if lk != nil {
		l.links = append(l.links, lk)
	}
	return nil
}

// attachError is a program that loaded but could not be attached.
type attachError struct{ err error }

func (e *attachError) Error() string { return e.err.Error() }
func (e *attachError) Unwrap() error { return e.err }

// attachRefused is a privilege the kernel refused while loading or attaching a program: in
// AttachAuto, classic tracepoints refused (perf_event_open) send the loader to raw ones.
type attachRefused struct {
	program string
	err     error
}

func (e *attachRefused) Error() string { return e.err.Error() }
func (e *attachRefused) Unwrap() error { return e.err }

// rawTracepointGroup is the tracefs group of a raw tracepoint the object uses (every classic
// tracepoint is a raw one by its name; sys_enter/sys_exit live under raw_syscalls), by which
// the loader asks whether the kernel has it.
func rawTracepointGroup(name string) string {
	switch name {
	case "sys_enter", "sys_exit":
		return "raw_syscalls"
	case "inet_sock_set_state", "inet_sk_error_report":
		return "sock"
	case "sched_process_fork":
		return "sched"
	}
	return "tcp"
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
