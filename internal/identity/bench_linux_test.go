package identity

import (
	"strconv"
	"testing"
)

// BenchmarkNameContainerProcess is the per-exchange cost of naming a server in a pod once
// its process and container are known: what every event after the first pays.
func BenchmarkNameContainerProcess(b *testing.B) {
	h := newHost(b)
	id := hexID("c3")
	h.containerd("k8s.io", id, []string{"PATH=/bin"}, criAnnotations("checkout-7d9f8b6c5-x2k4q", "shop", "uid", "checkout"))
	h.proc(10, []string{"HOME=/"}, "/kubepods/besteffort/poduid/"+id, "/bin/busybox")
	r := h.resolver()
	x := serverExchange(10, "httpd", 0, "127.0.0.133:8133")
	if s := r.Server(x); s.Name != "checkout" {
		b.Fatalf("%+v", s)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Server(x)
	}
}

// BenchmarkFirstProcessOfAContainer: a new process of a known container (read /proc, find
// its cgroup in the table).
func BenchmarkFirstProcessOfAContainer(b *testing.B) {
	h := newHost(b)
	id := hexID("c3")
	h.containerd("k8s.io", id, []string{"PATH=/bin"}, criAnnotations("checkout-7d9f8b6c5-x2k4q", "shop", "uid", "checkout"))
	const pids = 1000
	for pid := uint32(1); pid <= pids; pid++ {
		h.proc(pid, []string{"HOME=/"}, "/kubepods/besteffort/poduid/"+id, "/bin/busybox")
	}
	r := New(Options{HostRoot: h.root, MaxProcesses: 1})
	cg := uint64(4242)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Server(serverExchange(uint32(i%pids)+1, "httpd", cg, "127.0.0.133:8133"))
		i++
	}
}

// BenchmarkFirstSightOfAContainer: a process of a container not seen before (read /proc,
// then the container's OCI config.json from containerd's state).
func BenchmarkFirstSightOfAContainer(b *testing.B) {
	h := newHost(b)
	const n = 500
	for i := 0; i < n; i++ {
		id := hexID(strconv.Itoa(1000 + i))
		h.containerd("k8s.io", id, []string{"PATH=/bin"}, criAnnotations("checkout-7d9f8b6c5-x2k4q", "shop", "uid", "checkout"))
		h.proc(uint32(i+1), []string{"HOME=/"}, "/kubepods/besteffort/poduid/"+id, "/bin/busybox")
	}
	r := New(Options{HostRoot: h.root, MaxProcesses: 1, MaxCgroups: 1})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Server(serverExchange(uint32(i%n)+1, "httpd", 0, "127.0.0.133:8133"))
		i++
	}
}

// BenchmarkCgroupWalk walks this machine's cgroup v2 tree, as a miss (at most every
// minWalkInterval) and each sweep do.
func BenchmarkCgroupWalk(b *testing.B) {
	tree := cgroupTree{root: cgroup2Root("/sys/fs/cgroup"), maxDirs: maxCgroupDirs}
	if tree.root == "" {
		b.Skip("no cgroup v2 hierarchy on this machine")
	}
	dirs := 0
	for b.Loop() {
		dirs = 0
		tree.walk(func(uint64, string) { dirs++ })
	}
	b.ReportMetric(float64(dirs), "cgroups")
}
