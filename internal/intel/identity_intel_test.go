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

// TestLoopbackProxyGraph runs identity and intel together on one node: curl → haproxy
// (mapped 127.0.0.40:8000 = frontend) → nginx (127.0.0.41:9000 = backend), every exchange
// observed at both ends. The graph has exactly the two named edges, each request counted once.
func TestLoopbackProxyGraph(t *testing.T) {
	root := t.TempDir()
	for pid, exe := range map[uint32]string{10: "curl", 20: "haproxy", 30: "nginx"} {
		dir := filepath.Join(root, strconv.Itoa(int(pid)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/usr/bin/"+exe, filepath.Join(dir, "exe")); err != nil {
			t.Fatal(err)
		}
	}
	front, _ := identity.ParseMatch("127.0.0.40:8000")
	front.Name = "frontend"
	back, _ := identity.ParseMatch("127.0.0.41/32")
	back.Name = "backend"
	r := identity.New(identity.Options{ProcRoot: root, HostName: "node", Services: []identity.StaticService{front, back}})
	e := New(DefaultOptions())

	curl := capture.Process{PID: 10, Comm: "curl"}
	haproxy := capture.Process{PID: 20, Comm: "haproxy"}
	nginx := capture.Process{PID: 30, Comm: "nginx"}
	hop := func(client capture.Process, caddr string, server capture.Process, saddr string, seq uint32, status int, at time.Time) {
		c, s := netip.MustParseAddrPort(caddr), netip.MustParseAddrPort(saddr)
		r.Conn(&capture.ConnEvent{Kind: capture.ConnOpened, Process: client, Socket: capture.Socket{Role: capture.RoleClient, Local: c, Remote: s}})
		r.Conn(&capture.ConnEvent{Kind: capture.ConnOpened, Process: server, Socket: capture.Socket{Role: capture.RoleServer, Local: s, Remote: c}})
		x := l7.Exchange{Protocol: l7.ProtocolHTTP1, Transport: capture.TransportTCP, Start: at, End: at.Add(2 * time.Millisecond),
			ClientISN: seq, ServerISN: seq + 1, RequestSeq: seq + 2,
			HTTP: &l7.HTTP{Method: "GET", Path: "/", Status: status}}
		cx, sx := x, x
		cx.Side, cx.Client, cx.Server = l7.SideClient, l7.Endpoint{Addr: c, Process: client}, l7.Endpoint{Addr: s}
		sx.Side, sx.Client, sx.Server = l7.SideServer, l7.Endpoint{Addr: c}, l7.Endpoint{Addr: s, Process: server}
		for _, h := range []*l7.Exchange{&sx, &cx} {
			r.Learn(h)
			e.Exchange(h, r.Client(h), r.Server(h))
		}
	}
	for i := 0; i < 10; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		port := strconv.Itoa(41000 + i)
		hop(curl, "127.0.0.1:"+port, haproxy, "127.0.0.40:8000", uint32(i*100), 200, at)
		hop(haproxy, "127.0.0.1:"+strconv.Itoa(42000+i), nginx, "127.0.0.41:9000", uint32(i*100+50), 200, at)
	}
	deps := kinds(e.Findings(t0.Add(time.Minute)), KindServiceDependency)
	requireLen(t, "dependencies", deps, 2)
	want := map[EdgeKey]bool{
		{Source: "curl", Dest: "frontend", Protocol: "http", Port: 8000}:    true,
		{Source: "frontend", Dest: "backend", Protocol: "http", Port: 9000}: true,
	}
	for _, d := range deps {
		if !want[d.Dependency.Edge] || d.Dependency.RequestCount != 10 {
			t.Errorf("dependency %+v", d.Dependency)
		}
	}
	if c := e.Counters(); c.Exchanges != 20 || c.Deduplicated != 20 || c.Edges != 2 {
		t.Fatalf("counters %+v", c)
	}
}
