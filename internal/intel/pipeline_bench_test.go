package intel

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// BenchmarkPipeline measures exchanges per second per core through identity and intel: both
// ends named by the resolver, then counted, checked and sampled by the engine. The mix is a
// small service mesh on loopback (both halves of each exchange observed, as on one node),
// 50 routes with ids in their paths, 2% errors and the default 1% sampling.
func BenchmarkPipeline(b *testing.B) {
	root := b.TempDir()
	names := []string{"frontend", "checkout", "payments", "inventory", "users"}
	r := identity.New(identity.Options{ProcRoot: root, HostName: "bench"})
	for i, name := range names {
		pid := uint32(100 + i)
		dir := filepath.Join(root, strconv.Itoa(int(pid)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "environ"), []byte("OTEL_SERVICE_NAME="+name+"\x00"), 0o644); err != nil {
			b.Fatal(err)
		}
		r.Conn(&capture.ConnEvent{Kind: capture.ConnOpened, Process: capture.Process{PID: pid, Comm: name},
			Socket: capture.Socket{Role: capture.RoleServer, Local: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + i)}), 8080)}})
	}
	e := New(DefaultOptions())

	const mix = 1000
	xs := make([]l7.Exchange, mix)
	for i := range xs {
		from, to := i%len(names), (i+1)%len(names)
		status := 200
		if i%50 == 0 {
			status = 503
		}
		xs[i] = l7.Exchange{
			Protocol: l7.ProtocolHTTP1, Transport: capture.TransportTCP,
			Client: l7.Endpoint{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(30000+i)),
				Process: capture.Process{PID: uint32(100 + from), Comm: names[from]}},
			Server: l7.Endpoint{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + to)}), 8080),
				Process: capture.Process{PID: uint32(100 + to), Comm: names[to]}},
			ClientISN: uint32(i * 7919), ServerISN: uint32(i * 104729),
			HTTP: &l7.HTTP{Method: "GET", Path: "/api/v1/items" + strconv.Itoa(i%50) + "/" + strconv.Itoa(i), Status: status, UserAgent: "Go-http-client/1.1"},
		}
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	now := t0
	for i := 0; i < b.N; i++ {
		x := &xs[i%mix]
		x.RequestSeq = uint32(i)
		now = now.Add(10 * time.Microsecond)
		x.Start, x.End = now, now.Add(time.Duration(1+i%7)*time.Millisecond)
		// Each exchange is observed at its client and at its server.
		x.Side = l7.SideClient
		if i%2 == 1 {
			x.Side = l7.SideServer
			x.RequestSeq = uint32(i - 1)
		}
		r.Learn(x)
		e.Exchange(x, r.Client(x), r.Server(x))
		if i%100000 == 0 {
			e.Findings(now)
		}
	}
	b.StopTimer()
	// The wall clock counts time a busy machine gave to others; the process's CPU time
	// (garbage collection included) is the cost of the work: exchanges/s/core derives from it.
	cpu := processCPU() - cpu0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "exchanges/s/core")
}
