//go:build linux && (amd64 || arm64)

package capture

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netintel/netintelreceiver/bpf"
)

// onCPU runs fn on a thread of its own bound to one CPU.
func onCPU(t *testing.T, cpu int, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			done <- fmt.Errorf("bind to CPU %d: %w", cpu, err)
			return
		}
		done <- fn()
	}()
	return <-done
}

// TestKernelAggregatesSummedOverCPUs: the aggregates are counted per CPU, and a key served on
// two CPUs drains as one aggregate holding every exchange of both. Two connections to one
// server, each served and driven by threads bound to a CPU of its own (one CPU on a machine
// that has one), share the server's key and the client's.
func TestKernelAggregatesSummedOverCPUs(t *testing.T) {
	src, _ := sharedJudging(t)
	ln, err := net.Listen("tcp4", "127.0.0.71:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	const n = 25
	const response = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nitem"
	cpus := min(runtime.NumCPU(), 2)
	served := make(chan error, 2)
	go func() {
		for i := 0; i < 2; i++ {
			c, err := ln.Accept()
			if err != nil {
				served <- err
				return
			}
			go func(c net.Conn, cpu int) {
				defer c.Close()
				served <- onCPU(t, cpu, func() error {
					r := bufio.NewReader(c)
					for j := 0; j < n; j++ {
						for {
							line, err := r.ReadString('\n')
							if err != nil {
								return err
							}
							if line == "\r\n" {
								break
							}
						}
						if _, err := io.WriteString(c, response); err != nil {
							return err
						}
					}
					return nil
				})
			}(c, i%cpus)
		}
	}()
	drainOwn(t, src) // start from empty aggregates
	for i := 0; i < 2; i++ {
		err := onCPU(t, i%cpus, func() error {
			c, err := net.Dial("tcp4", addr)
			if err != nil {
				return err
			}
			defer c.Close()
			buf := make([]byte, len(response))
			for j := 0; j < n; j++ {
				if _, err := fmt.Fprintf(c, "GET /items/%d HTTP/1.1\r\nHost: percpu\r\n\r\n", j); err != nil {
					return err
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := <-served; err != nil {
			t.Fatal(err)
		}
	}

	// Each CPU's copy, as the kernel holds them: with two CPUs both count.
	route := RouteKey("/items/{id}")
	m := src.k.maps.Maps[bpf.NetintelMapAggregates]
	var k bpf.NetintelAggKey
	var copies []bpf.NetintelAggValue
	counting := map[Role]int{}
	it := m.Iterate()
	for it.Next(&k, &copies) {
		if k.Tgid != uint32(os.Getpid()) || k.Route != route {
			continue
		}
		for _, c := range copies {
			if c.Count > 0 {
				counting[Role(k.Role)]++
			}
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	aggs := drainOwn(t, src)
	for _, role := range []Role{RoleClient, RoleServer} {
		if counting[role] != cpus {
			t.Errorf("%v: %d CPUs' copies count exchanges, want %d", role, counting[role], cpus)
		}
		var found []string
		var count uint64
		for _, a := range aggs[role] {
			if a.RouteKey == route && a.Status == 200 {
				found = append(found, fmt.Sprintf("%+v", *a))
				count += a.Count
				if s := sum(a.Latency[:]); s != a.Count {
					t.Errorf("%v: latency buckets hold %d exchanges, count %d", role, s, a.Count)
				}
				if s := sum(a.Explicit[:]); s != a.Count {
					t.Errorf("%v: explicit buckets hold %d exchanges, count %d", role, s, a.Count)
				}
				if a.First.IsZero() {
					t.Errorf("%v: no creation time", role)
				}
			}
		}
		// Every exchange but the key's first (sent whole) is counted, on whichever CPU.
		if len(found) != 1 || count != 2*n-1 {
			t.Errorf("%v: %d exchanges counted in %d aggregates, want %d in one:\n%s", role, count, len(found), 2*n-1, strings.Join(found, "\n"))
		}
	}
}

// The aggregates table holds 4096 keys unless that many live keys on every CPU would take more
// than 64 MiB; never fewer than 512.
func TestAggregateEntries(t *testing.T) {
	for _, c := range []struct {
		size, cpus int
		want       uint32
	}{
		{544, 1, 4096}, {544, 2, 4096}, {544, 16, 4096}, {544, 64, 1927}, {544, 512, 512},
	} {
		if got := aggregateEntries(c.size, c.cpus); got != c.want {
			t.Errorf("aggregateEntries(%d, %d) = %d, want %d", c.size, c.cpus, got, c.want)
		}
	}
}
