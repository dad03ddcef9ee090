package identity

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// fakeProc builds /proc/<pid> with the given environment, cgroup file and exe target.
func fakeProc(t *testing.T, root string, pid uint32, env []string, cgroup, exe string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(int(pid)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var environ []byte
	for _, kv := range env {
		environ = append(append(environ, kv...), 0)
	}
	must(t, os.WriteFile(filepath.Join(dir, "environ"), environ, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "cgroup"), []byte(cgroup), 0o644))
	if exe != "" {
		must(t, os.Symlink(exe, filepath.Join(dir, "exe")))
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func static(t *testing.T, name, match string) StaticService {
	t.Helper()
	s, err := ParseMatch(match)
	must(t, err)
	s.Name = name
	return s
}

func opened(pid uint32, comm string, role capture.Role, local, remote string) *capture.ConnEvent {
	return &capture.ConnEvent{
		Kind:    capture.ConnOpened,
		Process: capture.Process{PID: pid, Comm: comm},
		Socket:  capture.Socket{Transport: capture.TransportTCP, Role: role, Local: ap(local), Remote: ap(remote)},
	}
}

var dockerID = strings.Repeat("3f1c5b2a", 8)

func TestParseMatch(t *testing.T) {
	tests := []struct {
		in      string
		prefix  string
		addr    string
		wantErr bool
	}{
		{in: "127.0.0.40:8000", addr: "127.0.0.40:8000"},
		{in: "[::1]:9000", addr: "[::1]:9000"},
		{in: "10.1.0.0/16", prefix: "10.1.0.0/16"},
		{in: "10.1.2.3/16", prefix: "10.1.0.0/16"},
		{in: "192.168.1.7", prefix: "192.168.1.7/32"},
		{in: "::1", prefix: "::1/128"},
		{in: "", wantErr: true},
		{in: "example.com:80", wantErr: true},
		{in: "10.0.0.1:0", wantErr: true},
		{in: "10.0.0.0/33", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseMatch(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseMatch(%q) = %+v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMatch(%q): %v", tt.in, err)
			continue
		}
		if tt.prefix != "" && got.Prefix != netip.MustParsePrefix(tt.prefix) {
			t.Errorf("ParseMatch(%q).Prefix = %v, want %s", tt.in, got.Prefix, tt.prefix)
		}
		if tt.addr != "" && got.AddrPort != ap(tt.addr) {
			t.Errorf("ParseMatch(%q).AddrPort = %v, want %s", tt.in, got.AddrPort, tt.addr)
		}
	}
}

func TestParseCgroup(t *testing.T) {
	tests := []struct {
		name, content, id, unit string
		fromV2                  bool
	}{
		{"v2 systemd service", "0::/system.slice/nginx.service\n", "", "nginx", true},
		{"docker systemd driver", "0::/system.slice/docker-" + dockerID + ".scope\n", dockerID, "", true},
		{"docker cgroupfs, v1 only", "12:memory:/docker/" + dockerID + "\n1:name=systemd:/docker/" + dockerID + "\n", dockerID, "", false},
		// This machine: cgroup v1 with the unified hierarchy beside it; runc joins both.
		{"docker cgroupfs, hybrid", "9:name=systemd:/docker/" + dockerID + "\n4:memory:/docker/" + dockerID + "\n0::/docker/" + dockerID + "\n", dockerID, "", true},
		{"hybrid, runtime leaves unified alone", "4:memory:/docker/" + dockerID + "\n0::/system.slice/containerd.service\n", dockerID, "", false},
		{"kubepods cgroupfs", "0::/kubepods/burstable/pod1234-5678/" + dockerID + "\n", dockerID, "", true},
		{"containerd systemd", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12_34.slice/cri-containerd-" + dockerID + ".scope\n", dockerID, "", true},
		{"private cgroup namespace", "0::/../../kubepods-besteffort-pod12_34.slice/cri-containerd-" + dockerID + ".scope\n", dockerID, "", true},
		{"cri-o", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podab.slice/crio-" + dockerID + ".scope\n", dockerID, "", true},
		{"cri-o conmon is not the container", "0::/kubepods.slice/crio-conmon-" + dockerID + ".scope\n", "", "", true},
		{"podman", "0::/machine.slice/libpod-" + dockerID + ".scope/container\n", dockerID, "", true},
		{"user session", "0::/user.slice/user-1000.slice/session-3.scope\n", "", "", true},
		{"user session, private namespace", "0::/../user.slice/user-1000.slice/session-3.scope\n", "", "", true},
		{"user manager", "0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.service\n", "", "", true},
		{"hybrid prefers v2", "1:name=systemd:/system.slice/old.service\n0::/system.slice/haproxy.service\n", "", "haproxy", true},
		{"v1 systemd unit", "1:name=systemd:/system.slice/cron.service\n0::/\n", "", "cron", false},
		{"root", "0::/\n", "", "", true},
		{"no v2 line", "4:memory:/\n", "", "", false},
	}
	for _, tt := range tests {
		ref, fromV2 := parseCgroup(tt.content)
		if ref.containerID != tt.id || ref.unit != tt.unit || fromV2 != tt.fromV2 {
			t.Errorf("%s: parseCgroup = (%+v, v2 %v), want (%q, %q, v2 %v)", tt.name, ref, fromV2, tt.id, tt.unit, tt.fromV2)
		}
	}
}

func TestServiceNameFromEnviron(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"PATH=/bin\x00OTEL_SERVICE_NAME=checkout\x00", "checkout"},
		{"OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod,service.name=cart\x00", "cart"},
		{"OTEL_RESOURCE_ATTRIBUTES=service.name=cart\x00OTEL_SERVICE_NAME=checkout\x00", "checkout"},
		{"OTEL_SERVICE_NAME=\x00HOME=/root\x00", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := serviceNameFromEnviron([]byte(tt.env)); got != tt.want {
			t.Errorf("serviceNameFromEnviron(%q) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

// TestLocalNamingOrder walks the order of DESIGN §5 for local processes.
func TestLocalNamingOrder(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 100, []string{"OTEL_SERVICE_NAME=checkout"}, "0::/system.slice/checkout.service\n", "/usr/bin/java")
	fakeProc(t, root, 200, nil, "0::/system.slice/nginx.service\n", "/usr/sbin/nginx")
	fakeProc(t, root, 300, nil, "0::/system.slice/docker-"+dockerID+".scope\n", "/app/server (deleted)")
	fakeProc(t, root, 400, nil, "0::/user.slice/user-0.slice/session-1.scope\n", "")
	fakeProc(t, root, 500, []string{"OTEL_SERVICE_NAME=ignored"}, "", "/usr/bin/redis-server")

	r := New(Options{
		ProcRoot: root, HostName: "node-1",
		Services: []StaticService{static(t, "cache", "127.0.0.50:6379")},
	})
	tests := []struct {
		pid        uint32
		comm       string
		addr       string
		want, exe  string
		containter string
	}{
		{pid: 100, comm: "java", addr: "127.0.0.1:8080", want: "checkout", exe: "java"},
		{pid: 200, comm: "nginx", addr: "127.0.0.1:80", want: "nginx", exe: "nginx"},
		{pid: 300, comm: "server", addr: "127.0.0.1:81", want: "server", exe: "server", containter: dockerID},
		{pid: 400, comm: "python3", addr: "127.0.0.1:82", want: "python3", exe: "python3"},
		{pid: 500, comm: "redis-server", addr: "127.0.0.50:6379", want: "cache", exe: "redis-server"},
	}
	for _, tt := range tests {
		x := &l7.Exchange{
			Side:   l7.SideServer,
			Client: l7.Endpoint{Addr: ap("127.0.0.1:40000")},
			Server: l7.Endpoint{Addr: ap(tt.addr), Process: capture.Process{PID: tt.pid, Comm: tt.comm}},
		}
		got := r.Server(x)
		if got.Name != tt.want || !got.Local || got.Resource.ServiceName != tt.want ||
			got.Resource.PID != tt.pid || got.Resource.ExecutableName != tt.exe ||
			got.Resource.ContainerID != tt.containter || got.Resource.HostName != "node-1" {
			t.Errorf("pid %d: Server = %+v, want name %q exe %q container %q", tt.pid, got, tt.want, tt.exe, tt.containter)
		}
	}
}

// TestProxyIsOneService: a proxy serving the mapped 127.0.0.40:8000 calls its upstream from
// 127.0.0.1:ephemeral; both halves of that call name the proxy by its mapping.
func TestProxyIsOneService(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 10, nil, "", "/usr/sbin/haproxy")
	fakeProc(t, root, 20, nil, "", "/usr/sbin/nginx")
	r := New(Options{ProcRoot: root, Services: []StaticService{
		static(t, "frontend", "127.0.0.40:8000"),
		static(t, "backend", "127.0.0.41/32"),
	}})
	r.Conn(opened(10, "haproxy", capture.RoleServer, "127.0.0.40:8000", "127.0.0.1:50000"))
	r.Conn(opened(20, "nginx", capture.RoleServer, "127.0.0.41:9000", "127.0.0.1:50001"))
	r.Conn(opened(10, "haproxy", capture.RoleClient, "127.0.0.1:50001", "127.0.0.41:9000"))

	clientHalf := &l7.Exchange{
		Side:   l7.SideClient,
		Client: l7.Endpoint{Addr: ap("127.0.0.1:50001"), Process: capture.Process{PID: 10, Comm: "haproxy"}},
		Server: l7.Endpoint{Addr: ap("127.0.0.41:9000")},
	}
	serverHalf := &l7.Exchange{
		Side:   l7.SideServer,
		Client: l7.Endpoint{Addr: ap("127.0.0.1:50001")},
		Server: l7.Endpoint{Addr: ap("127.0.0.41:9000"), Process: capture.Process{PID: 20, Comm: "nginx"}},
	}
	for _, x := range []*l7.Exchange{clientHalf, serverHalf} {
		c, s := r.Client(x), r.Server(x)
		if c.Name != "frontend" || !c.Local || c.Resource.PID != 10 {
			t.Errorf("%v half: client = %+v, want local frontend pid 10", x.Side, c)
		}
		if s.Name != "backend" || !s.Local || s.Resource.PID != 20 {
			t.Errorf("%v half: server = %+v, want local backend pid 20", x.Side, s)
		}
	}

	// Once the client socket closes, its address names haproxy until the next Settle (the
	// kernel's aggregates of its last exchanges are named in between), then no longer.
	closed := opened(10, "haproxy", capture.RoleClient, "127.0.0.1:50001", "127.0.0.41:9000")
	closed.Kind = capture.ConnClosed
	r.Conn(closed)
	if c := r.Client(serverHalf); c.Name != "frontend" {
		t.Errorf("after close, before Settle: client = %+v, want frontend", c)
	}
	r.Settle()
	if c := r.Client(serverHalf); c.Local || c.Name != "clients of backend" {
		t.Errorf("after close and Settle: client = %+v, want remote clients of backend", c)
	}

	// The same address opened again before the Settle (a reused port) stays named.
	r.Conn(opened(10, "haproxy", capture.RoleClient, "127.0.0.1:50001", "127.0.0.41:9000"))
	r.Conn(closed)
	r.Conn(opened(10, "haproxy", capture.RoleClient, "127.0.0.1:50001", "127.0.0.41:9000"))
	r.Settle()
	if c := r.Client(serverHalf); c.Name != "frontend" {
		t.Errorf("reopened before Settle: client = %+v, want frontend", c)
	}
}

func TestRemoteNamingOrder(t *testing.T) {
	r := New(Options{ProcRoot: t.TempDir(), Services: []StaticService{static(t, "payments-api", "10.9.0.0/16")}})
	r.Learn(&l7.Exchange{Protocol: l7.ProtocolDNS, DNS: &l7.DNS{Name: "api.example.com", RCode: 0,
		Answers: []netip.Addr{netip.MustParseAddr("93.184.216.34")}}})
	r.Learn(&l7.Exchange{Protocol: l7.ProtocolDNS, DNS: &l7.DNS{Name: "gone.example.com", RCode: 3,
		Answers: []netip.Addr{netip.MustParseAddr("93.184.216.99")}}})
	r.Learn(&l7.Exchange{Protocol: l7.ProtocolTLS, Server: l7.Endpoint{Addr: ap("151.101.1.1:443")}, TLS: &l7.TLS{SNI: "cdn.example.org"}})
	r.Learn(&l7.Exchange{Protocol: l7.ProtocolTLS, Server: l7.Endpoint{Addr: ap("93.184.216.34:443")}, TLS: &l7.TLS{SNI: "sni-loses.example.com"}})

	tests := []struct{ server, want string }{
		{"10.9.3.4:443", "payments-api"},
		{"93.184.216.34:443", "api.example.com"},
		{"151.101.1.1:443", "cdn.example.org"},
		{"151.101.1.1:8443", "151.101.1.1:8443"},
		{"93.184.216.99:80", "93.184.216.99:80"},
		{"[2001:db8::1]:443", "[2001:db8::1]:443"},
	}
	for _, tt := range tests {
		x := &l7.Exchange{Client: l7.Endpoint{Addr: ap("10.0.0.1:1234"), Process: capture.Process{PID: 1}}, Server: l7.Endpoint{Addr: ap(tt.server)}}
		got := r.Server(x)
		if got.Name != tt.want || got.Local || got.Resource.ServiceName != tt.want || got.Resource.PID != 0 {
			t.Errorf("Server(%s) = %+v, want remote %q", tt.server, got, tt.want)
		}
	}
	// A remote client is named without its ephemeral port.
	x := &l7.Exchange{Client: l7.Endpoint{Addr: ap("192.0.2.7:51515")}, Server: l7.Endpoint{Addr: ap("127.0.0.1:80")}}
	if c := r.Client(x); c.Name != "192.0.2.7" || c.Local {
		t.Errorf("remote client = %+v, want 192.0.2.7", c)
	}
}

// TestProcessExitEviction: a closed connection of a process that has exited forgets it and
// the addresses it served; a reused pid (another comm) is read again.
func TestProcessExitEviction(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 42, []string{"OTEL_SERVICE_NAME=old"}, "", "/bin/old")
	r := New(Options{ProcRoot: root})
	r.Conn(opened(42, "old", capture.RoleServer, "127.0.0.1:7000", "127.0.0.1:40000"))
	x := &l7.Exchange{Client: l7.Endpoint{Addr: ap("127.0.0.2:1")}, Server: l7.Endpoint{Addr: ap("127.0.0.1:7000")}}
	if s := r.Server(x); s.Name != "old" {
		t.Fatalf("server = %+v, want old", s)
	}

	// Still running: a close keeps it.
	closed := opened(42, "old", capture.RoleServer, "127.0.0.1:7000", "127.0.0.1:40000")
	closed.Kind = capture.ConnClosed
	r.Conn(closed)
	if c := r.Counters(); c.Processes != 1 || c.ProcessesExited != 0 {
		t.Fatalf("after close of a live process: %+v", c)
	}
	// Exited: the next close and Settle forget it and its listening address; until the
	// Settle it still names what the kernel counted for it.
	must(t, os.RemoveAll(filepath.Join(root, "42")))
	r.Conn(closed)
	if s := r.Server(x); s.Name != "old" {
		t.Fatalf("server after exit, before Settle = %+v, want old", s)
	}
	r.Settle()
	if c := r.Counters(); c.Processes != 0 || c.Listeners != 0 || c.ProcessesExited != 1 {
		t.Fatalf("after exit: %+v", c)
	}
	if s := r.Server(x); s.Local || s.Name != "127.0.0.1:7000" {
		t.Fatalf("server after exit = %+v, want remote 127.0.0.1:7000", s)
	}

	// The pid comes back as another program.
	fakeProc(t, root, 42, []string{"OTEL_SERVICE_NAME=new"}, "", "/bin/new")
	r.Conn(opened(42, "new", capture.RoleServer, "127.0.0.1:7000", "127.0.0.1:40001"))
	if s := r.Server(x); s.Name != "new" {
		t.Fatalf("server after pid reuse = %+v, want new", s)
	}
	fakeProc(t, root, 43, nil, "", "/bin/other")
	_ = os.RemoveAll(filepath.Join(root, "42"))
	fakeProc(t, root, 42, []string{"OTEL_SERVICE_NAME=newer"}, "", "/bin/newer")
	// Seen with another comm: the cached process and the address it served are dropped.
	if s := r.Server(&l7.Exchange{Server: l7.Endpoint{Addr: ap("127.0.0.1:1"), Process: capture.Process{PID: 42, Comm: "newer"}}}); s.Name != "newer" {
		t.Fatalf("server after second pid reuse = %+v, want newer", s)
	}
	if s := r.Server(x); s.Local {
		t.Fatalf("the reused pid kept the old process's address: %+v", s)
	}
}

func TestDataLearnsPreexistingSockets(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 7, []string{"OTEL_SERVICE_NAME=worker"}, "", "/bin/worker")
	r := New(Options{ProcRoot: root})
	r.Data(&capture.DataEvent{Process: capture.Process{PID: 7, Comm: "worker"},
		Socket: capture.Socket{Transport: capture.TransportTCP, Role: capture.RoleClient, Local: ap("127.0.0.1:45000"), Remote: ap("127.0.0.9:80")}})
	x := &l7.Exchange{Side: l7.SideServer, Client: l7.Endpoint{Addr: ap("127.0.0.1:45000")}, Server: l7.Endpoint{Addr: ap("127.0.0.9:80")}}
	if c := r.Client(x); c.Name != "worker" || !c.Local || c.Resource.PID != 7 {
		t.Fatalf("client = %+v, want local worker", c)
	}
}

func TestConnEnds(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 5, nil, "", "/usr/bin/nmap")
	r := New(Options{ProcRoot: root, HostName: "h"})
	failed := &capture.ConnEvent{Kind: capture.ConnFailed, Reason: capture.FailureRefused, Process: capture.Process{PID: 5, Comm: "nmap"},
		Socket: capture.Socket{Role: capture.RoleClient, Local: ap("127.0.0.1:41000"), Remote: ap("127.0.0.1:22")}}
	c, s := r.ConnEnds(failed)
	if c.Name != "nmap" || !c.Local || s.Name != "127.0.0.1:22" || s.Local {
		t.Errorf("failed connect: client %+v server %+v", c, s)
	}
	// The kernel's RST for a closed port: no process, no role; the peer is the client.
	rst := &capture.ConnEvent{Kind: capture.ConnResetSent, Process: capture.Process{PID: 5, Comm: "nmap"},
		Socket: capture.Socket{Local: ap("127.0.0.1:23"), Remote: ap("192.0.2.9:61000")}}
	c, s = r.ConnEnds(rst)
	if c.Name != "192.0.2.9" || s.Name != "127.0.0.1:23" {
		t.Errorf("reset sent: client %+v server %+v", c, s)
	}
}

func TestCachesAreBounded(t *testing.T) {
	r := New(Options{ProcRoot: t.TempDir(), MaxProcesses: 8, MaxAddresses: 16})
	for i := 0; i < 1000; i++ {
		pid := uint32(1000 + i)
		local := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)}), 8080)
		r.Conn(opened(pid, "p", capture.RoleServer, local.String(), "127.0.0.1:1"))
		r.Conn(opened(pid, "p", capture.RoleClient, netip.AddrPortFrom(local.Addr(), 30000).String(), "127.0.0.1:1"))
		r.Learn(&l7.Exchange{DNS: &l7.DNS{Name: "n", Answers: []netip.Addr{local.Addr()}}})
		r.Learn(&l7.Exchange{Server: l7.Endpoint{Addr: local}, TLS: &l7.TLS{SNI: "s"}})
	}
	c := r.Counters()
	if c.Processes != 8 || c.Listeners != 16 || c.Sockets != 16 || c.DNSNames != 16 || c.SNINames != 16 {
		t.Errorf("sizes over the caps: %+v", c)
	}
	if c.ProcessesEvicted != 992 || c.ListenersEvicted != 984 || c.SocketsEvicted != 984 || c.DNSNamesEvicted != 984 || c.SNINamesEvicted != 984 {
		t.Errorf("eviction counters: %+v", c)
	}
}

// TestRealProc names this test process from the real /proc.
func TestRealProc(t *testing.T) {
	exe, err := os.Executable()
	must(t, err)
	pid := uint32(os.Getpid())
	r := New(Options{})
	x := &l7.Exchange{Server: l7.Endpoint{Addr: ap("127.0.0.1:1"), Process: capture.Process{PID: pid}}}
	s := r.Server(x)
	want := filepath.Base(exe)
	if s.Resource.PID != pid || s.Resource.ExecutableName != want || !s.Local || s.Name == "" || s.Resource.HostName == "" {
		t.Fatalf("Server = %+v, want pid %d executable %q", s, pid, want)
	}
	if os.Getenv("OTEL_SERVICE_NAME") == "" && s.Resource.ContainerID == "" {
		ref, _ := parseCgroup(string(mustRead(t, "/proc/self/cgroup")))
		if ref.unit == "" && s.Name != want {
			t.Errorf("name = %q, want the executable %q", s.Name, want)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	must(t, err)
	return b
}

// TestLearnFromObservedEnds: a UDP DNS server has no accept; the server half of an exchange
// teaches which process owns its address, so the client half names it too.
func TestLearnFromObservedEnds(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 53, nil, "0::/system.slice/dnsmasq.service\n", "/usr/sbin/dnsmasq")
	fakeProc(t, root, 99, nil, "", "/usr/bin/dig")
	r := New(Options{ProcRoot: root})
	server := &l7.Exchange{Protocol: l7.ProtocolDNS, Side: l7.SideServer,
		Client: l7.Endpoint{Addr: ap("127.0.0.1:41234")},
		Server: l7.Endpoint{Addr: ap("127.0.0.53:53"), Process: capture.Process{PID: 53, Comm: "dnsmasq"}}}
	client := &l7.Exchange{Protocol: l7.ProtocolDNS, Side: l7.SideClient,
		Client: l7.Endpoint{Addr: ap("127.0.0.1:41234"), Process: capture.Process{PID: 99, Comm: "dig"}},
		Server: l7.Endpoint{Addr: ap("127.0.0.53:53")}}
	if s := r.Server(client); s.Local {
		t.Fatalf("before learning: %+v", s)
	}
	r.Learn(server)
	r.Learn(client)
	for _, x := range []*l7.Exchange{server, client} {
		if s := r.Server(x); s.Name != "dnsmasq" || !s.Local || s.Resource.PID != 53 {
			t.Errorf("%v half: server = %+v, want dnsmasq", x.Side, s)
		}
		if c := r.Client(x); c.Name != "dig" || !c.Local || c.Resource.PID != 99 {
			t.Errorf("%v half: client = %+v, want dig", x.Side, c)
		}
	}
}

func TestMappedAddressesAreOneAddress(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 8, []string{"OTEL_SERVICE_NAME=api"}, "", "/bin/api")
	r := New(Options{ProcRoot: root})
	r.Conn(opened(8, "api", capture.RoleServer, "[::ffff:127.0.0.7]:8080", "[::ffff:127.0.0.1]:50000"))
	x := &l7.Exchange{Client: l7.Endpoint{Addr: ap("127.0.0.1:50000")}, Server: l7.Endpoint{Addr: ap("127.0.0.7:8080")}}
	if s := r.Server(x); s.Name != "api" || !s.Local {
		t.Fatalf("server = %+v, want api", s)
	}
	y := &l7.Exchange{Server: l7.Endpoint{Addr: ap("[::ffff:10.0.0.1]:443")}}
	if s := r.Server(y); s.Name != "10.0.0.1:443" {
		t.Fatalf("remote mapped server = %q", s.Name)
	}
}

// TestClosedSocketsWaitBounded: closed sockets wait for the Settle up to MaxAddresses of them;
// beyond, the oldest are forgotten at once and counted.
func TestClosedSocketsWaitBounded(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 10, []string{"OTEL_SERVICE_NAME=frontend"}, "", "/bin/frontend")
	r := New(Options{ProcRoot: root, MaxAddresses: 8})
	for port := 50000; port < 50020; port++ {
		local := fmt.Sprintf("127.0.0.1:%d", port)
		r.Conn(opened(10, "frontend", capture.RoleClient, local, "127.0.0.41:9000"))
		closed := opened(10, "frontend", capture.RoleClient, local, "127.0.0.41:9000")
		closed.Kind = capture.ConnClosed
		r.Conn(closed)
	}
	c := r.Counters()
	if c.SettledEarly == 0 || c.Sockets > 8 {
		t.Fatalf("20 closes with room for 8: %+v", c)
	}
	// The latest close still names its client until the Settle.
	x := &l7.Exchange{Side: l7.SideServer, Client: l7.Endpoint{Addr: ap("127.0.0.1:50019")}, Server: l7.Endpoint{Addr: ap("127.0.0.41:9000")}}
	if got := r.Client(x); got.Name != "frontend" {
		t.Errorf("latest closed socket before Settle: %+v", got)
	}
	r.Settle()
	if c := r.Counters(); c.Sockets != 0 {
		t.Errorf("after Settle: %d sockets", c.Sockets)
	}
}
