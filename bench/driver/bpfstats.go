package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
)

// Kernel time of the collector's eBPF programs, from the kernel's own accounting: with
// kernel.bpf_stats_enabled=1 every program counts its runs and their run time. The accounting
// costs time itself, so it is on only while kernel time is measured, never during the
// throughput phases.

const (
	statsSysctl = "/proc/sys/kernel/bpf_stats_enabled"
	// progPrefix names the collector's programs. The kernel keeps 15 characters of a
	// program's name (BPF_OBJ_NAME_LEN 16), so ni_enter_sendmmsg reads ni_enter_sendmm.
	progPrefix = "ni_"
)

func readStatsSysctl() (string, error) {
	b, err := os.ReadFile(statsSysctl)
	return strings.TrimSpace(string(b)), err
}

func writeStatsSysctl(v string) error { return os.WriteFile(statsSysctl, []byte(v+"\n"), 0o644) }

// progCounters is one loaded program's totals.
type progCounters struct {
	name      string
	runs, ns  uint64
	recursion uint64
}

// snapshotPrograms reads the totals of every loaded program named ni_*.
func snapshotPrograms() (map[ebpf.ProgramID]progCounters, error) {
	out := map[ebpf.ProgramID]progCounters{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("next program after %d: %w", id, err)
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if errors.Is(err, os.ErrNotExist) {
			continue // unloaded meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("program %d: %w", id, err)
		}
		info, err := p.Info()
		if err == nil && strings.HasPrefix(info.Name, progPrefix) {
			var st *ebpf.ProgramStats
			if st, err = p.Stats(); err == nil {
				out[id] = progCounters{name: info.Name, runs: st.RunCount, ns: uint64(st.Runtime), recursion: st.RecursionMisses}
			}
		}
		p.Close()
		if err != nil {
			return nil, fmt.Errorf("program %d: %w", id, err)
		}
	}
}

// kernelTime is what the programs ran while a known number of requests was served.
type kernelTime struct {
	Requests uint64
	Programs map[string]*progTime // by (truncated) program name
}

type progTime struct {
	Name      string
	Loaded    int // programs of this name
	Runs, NS  uint64
	Recursion uint64 // runs skipped: another program was running on the CPU
}

// measureKernel turns the accounting on, runs load (which returns the requests it had
// served), and takes the programs' increments over it.
func measureKernel(load func() uint64) (kernelTime, error) {
	k := kernelTime{Programs: map[string]*progTime{}}
	if err := writeStatsSysctl("1"); err != nil {
		return k, fmt.Errorf("enable bpf_stats: %w", err)
	}
	defer func() { _ = writeStatsSysctl("0") }()
	before, err := snapshotPrograms()
	if err != nil {
		return k, err
	}
	k.Requests = load()
	after, err := snapshotPrograms()
	if err != nil {
		return k, err
	}
	for id, a := range after {
		b, ok := before[id]
		if !ok {
			continue // loaded during the load: not the collector's
		}
		p := k.Programs[a.name]
		if p == nil {
			p = &progTime{Name: a.name}
			k.Programs[a.name] = p
		}
		p.Loaded++
		p.Runs += a.runs - b.runs
		p.NS += a.ns - b.ns
		p.Recursion += a.recursion - b.recursion
	}
	if len(k.Programs) == 0 {
		return k, fmt.Errorf("no loaded program named %s*", progPrefix)
	}
	return k, nil
}

// add folds another measurement in (the rounds' sum).
func (k *kernelTime) add(o kernelTime) {
	if k.Programs == nil {
		k.Programs = map[string]*progTime{}
	}
	k.Requests += o.Requests
	for name, p := range o.Programs {
		q := k.Programs[name]
		if q == nil {
			q = &progTime{Name: name, Loaded: p.Loaded}
			k.Programs[name] = q
		}
		q.Runs += p.Runs
		q.NS += p.NS
		q.Recursion += p.Recursion
	}
}

func (k kernelTime) totalNS() (ns, runs, recursion uint64) {
	for _, p := range k.Programs {
		ns, runs, recursion = ns+p.NS, runs+p.Runs, recursion+p.Recursion
	}
	return ns, runs, recursion
}

// usPerRequest is all programs' run time per request served, in µs.
func (k kernelTime) usPerRequest() float64 {
	if k.Requests == 0 {
		return 0
	}
	ns, _, _ := k.totalNS()
	return float64(ns) / 1e3 / float64(k.Requests)
}

// runsPerRequest is all programs' runs per request served.
func (k kernelTime) runsPerRequest() float64 {
	if k.Requests == 0 {
		return 0
	}
	_, runs, _ := k.totalNS()
	return float64(runs) / float64(k.Requests)
}

// byCost lists the programs that ran, costliest first.
func (k kernelTime) byCost() []*progTime {
	var out []*progTime
	for _, p := range k.Programs {
		if p.Runs > 0 {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].NS != out[j].NS {
			return out[i].NS > out[j].NS
		}
		return out[i].Name < out[j].Name
	})
	return out
}
