package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc (100 on every Linux we run on).
const clockTicks = 100

// cpuSeconds is utime+stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// comm may hold spaces: fields are counted after the closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14 → f[11], stime field 15 → f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return (ut + st) / clockTicks, nil
}

// cpuOf sums cpuSeconds over processes (a missing process counts 0).
func cpuOf(pids []int) float64 {
	var total float64
	for _, p := range pids {
		if c, err := cpuSeconds(p); err == nil {
			total += c
		}
	}
	return total
}

// peakRSS is VmHWM of a process, in bytes.
func peakRSS(pid int) (int64, error) { return statusKB(pid, "VmHWM:") }

// anonRSS is RssAnon of a process, in bytes: its own memory (heap, stacks, the ring buffer),
// without the file pages of its executable, which are shared and reclaimable.
func anonRSS(pid int) (int64, error) { return statusKB(pid, "RssAnon:") }

func statusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s for pid %d", field, pid)
}

// childrenOf lists the pids whose parent is ppid (nginx's workers).
func childrenOf(ppid int) []int {
	entries, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(e)))
			out = append(out, pid)
		}
	}
	return out
}

// hostBusySeconds is the CPU time the host's processes used so far: /proc/stat's user, nice,
// system, irq and softirq (loopback's softirq work is charged to the process that ran it in
// /proc/<pid>/stat). It is tick-sampled: good for telling how busy the rest of the host was
// over a phase, not for one process.
func hostBusySeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq ...
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for _, i := range []int{1, 2, 3, 6, 7} {
		n, _ := strconv.ParseFloat(f[i], 64)
		busy += n
	}
	return busy / clockTicks
}
