package identity

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// host is a fake node under a temporary HostRoot: /proc, the cgroup v2 tree and the state
// directories of Docker, containerd and CRI-O, laid out as the runtimes write them.
type host struct {
	t    testing.TB
	root string
}

func newHost(t testing.TB) *host {
	h := &host{t: t, root: t.TempDir()}
	h.mkdir("sys/fs/cgroup/unified") // hybrid, like this machine
	h.write("sys/fs/cgroup/unified/cgroup.controllers", "cpu memory pids\n")
	return h
}

func (h *host) path(rel string) string { return filepath.Join(h.root, rel) }

func (h *host) mkdir(rel string) {
	h.t.Helper()
	must(h.t, os.MkdirAll(h.path(rel), 0o755))
}

func (h *host) write(rel, content string) {
	h.t.Helper()
	h.mkdir(filepath.Dir(rel))
	must(h.t, os.WriteFile(h.path(rel), []byte(content), 0o644))
}

func (h *host) writeJSON(rel string, v any) {
	h.t.Helper()
	b, err := json.Marshal(v)
	must(h.t, err)
	h.write(rel, string(b))
}

// cgroup creates a cgroup v2 directory and returns its id, as the kernel programs see it.
func (h *host) cgroup(path string) uint64 {
	h.t.Helper()
	dir := filepath.Join("sys/fs/cgroup/unified", path)
	h.mkdir(dir)
	var st syscall.Stat_t
	must(h.t, syscall.Stat(h.path(dir), &st))
	return st.Ino
}

func (h *host) removeCgroup(path string) {
	must(h.t, os.RemoveAll(h.path(filepath.Join("sys/fs/cgroup/unified", path))))
}

// proc writes /proc/<pid> of a process in cgroup path (v1 lines beside the v2 one, as on a
// hybrid host); env nil means environ is unreadable.
func (h *host) proc(pid uint32, env []string, path, exe string) {
	h.t.Helper()
	dir := filepath.Join("proc", strconv.Itoa(int(pid)))
	h.write(filepath.Join(dir, "cgroup"), "4:memory:"+path+"\n0::"+path+"\n")
	if env != nil {
		h.write(filepath.Join(dir, "environ"), strings.Join(env, "\x00")+"\x00")
	}
	if exe != "" {
		must(h.t, os.Symlink(exe, h.path(filepath.Join(dir, "exe"))))
	}
}

func (h *host) exit(pid uint32) {
	must(h.t, os.RemoveAll(h.path(filepath.Join("proc", strconv.Itoa(int(pid))))))
}

// docker writes the container's config.v2.json under the default data root.
func (h *host) docker(id, name string, env []string, labels map[string]string) {
	cfg := map[string]any{"ID": id, "Name": "/" + name, "Config": map[string]any{"Env": env, "Labels": labels}}
	h.writeJSON(filepath.Join("var/lib/docker/containers", id, "config.v2.json"), cfg)
}

// oci writes a runc bundle config.json with annotations and env at rel.
func (h *host) oci(rel string, env []string, annotations map[string]string) {
	spec := map[string]any{
		"ociVersion":  "1.0.2-dev",
		"process":     map[string]any{"args": []string{"httpd"}, "env": env, "cwd": "/"},
		"annotations": annotations,
		"linux":       map[string]any{"cgroupsPath": "/kubepods/x"},
	}
	h.writeJSON(rel, spec)
}

func (h *host) containerd(ns, id string, env []string, annotations map[string]string) string {
	rel := filepath.Join("run/containerd/io.containerd.runtime.v2.task", ns, id, "config.json")
	h.oci(rel, env, annotations)
	return rel
}

func (h *host) resolver(services ...StaticService) *Resolver {
	return New(Options{HostRoot: h.root, HostName: "node-1", Services: services})
}

func hexID(seed string) string { return strings.Repeat(seed, 64/len(seed))[:64] }

func criAnnotations(pod, namespace, uid, container string) map[string]string {
	return map[string]string{
		"io.kubernetes.cri.container-type":    "container",
		"io.kubernetes.cri.container-name":    container,
		"io.kubernetes.cri.sandbox-name":      pod,
		"io.kubernetes.cri.sandbox-namespace": namespace,
		"io.kubernetes.cri.sandbox-uid":       uid,
		"io.kubernetes.cri.sandbox-id":        hexID("5a"),
	}
}

func serverExchange(pid uint32, comm string, cgroupID uint64, addr string) *l7.Exchange {
	return &l7.Exchange{
		Side:   l7.SideServer,
		Client: l7.Endpoint{Addr: ap("127.0.0.1:40000")},
		Server: l7.Endpoint{Addr: ap(addr), Process: capture.Process{PID: pid, Comm: comm, CgroupID: cgroupID}},
	}
}

// TestContainerNamingOrder walks DESIGN §5 for processes in containers: OTEL_SERVICE_NAME of
// the process, the Kubernetes workload, the Docker name; and the resource attributes.
func TestContainerNamingOrder(t *testing.T) {
	h := newHost(t)
	const podUID = "0a5c3c7e-4f7e-4b9a-9d1e-2f3c4b5a6d7e"
	var (
		shopAPI  = hexID("a1")
		ledger   = hexID("b2")
		checkout = hexID("c3")
		payments = hexID("d4")
		crio     = hexID("e5")
		kubelet  = hexID("f6")
		unknown  = hexID("07")
	)
	h.docker(shopAPI, "shop-api", []string{"PATH=/bin"}, nil)
	h.docker(ledger, "ledger-box", []string{"OTEL_SERVICE_NAME=ledger"}, nil)
	// Docker's own containerd bundle of the same container says nothing of its name.
	h.containerd("moby", shopAPI, []string{"PATH=/bin"}, nil)
	h.containerd("k8s.io", checkout, []string{"PATH=/bin"}, criAnnotations("checkout-7d9f8b6c5-x2k4q", "shop", podUID, "checkout"))
	h.containerd("k8s.io", payments, []string{"OTEL_SERVICE_NAME=payments-api"}, criAnnotations("payments-0", "shop", "uid-p", "app"))
	h.oci(filepath.Join("run/containers/storage/overlay-containers", crio, "userdata/config.json"), nil, map[string]string{
		"io.kubernetes.pod.name": "kube-proxy-s9vzj", "io.kubernetes.pod.namespace": "kube-system",
		"io.kubernetes.pod.uid": "uid-kp", "io.kubernetes.container.name": "kube-proxy",
	})
	// Kubernetes on Docker (cri-dockerd): the pod is in the container's labels.
	h.docker(kubelet, "k8s_web_web-0_default_uid-w_0", nil, map[string]string{
		"io.kubernetes.pod.name": "web-0", "io.kubernetes.pod.namespace": "default",
		"io.kubernetes.pod.uid": "uid-w", "io.kubernetes.container.name": "web",
	})

	h.proc(10, []string{"HOME=/"}, "/docker/"+shopAPI, "/bin/busybox")
	h.proc(11, []string{"OTEL_SERVICE_NAME=ledger"}, "/docker/"+ledger, "/bin/busybox")
	h.proc(12, []string{"HOME=/"}, "/kubepods/besteffort/pod"+podUID+"/"+checkout, "/bin/busybox")
	h.proc(13, []string{"OTEL_SERVICE_NAME=from-process"}, "/kubepods/besteffort/pod"+podUID+"/"+checkout, "/bin/busybox")
	h.proc(14, nil, "/kubepods.slice/kubepods-pod.slice/cri-containerd-"+payments+".scope", "/app")
	h.proc(15, []string{}, "/kubepods.slice/kubepods-besteffort.slice/crio-"+crio+".scope", "/usr/local/bin/kube-proxy")
	h.proc(16, []string{}, "/docker/"+kubelet, "/usr/sbin/nginx")
	h.proc(17, []string{}, "/system.slice/docker-"+unknown+".scope", "/usr/bin/redis-server")
	h.proc(18, []string{}, "/system.slice/nginx.service", "/usr/sbin/nginx")
	h.proc(19, []string{}, "/user.slice/user-0.slice/session-1.scope", "/usr/bin/curl")

	r := h.resolver()
	tests := []struct {
		pid                          uint32
		want, container, cname       string
		namespace, pod, uid, k8sName string
	}{
		{pid: 10, want: "shop-api", container: shopAPI, cname: "shop-api"},
		{pid: 11, want: "ledger", container: ledger, cname: "ledger-box"},
		{pid: 12, want: "checkout", container: checkout, namespace: "shop", pod: "checkout-7d9f8b6c5-x2k4q", uid: podUID, k8sName: "checkout"},
		{pid: 13, want: "from-process", container: checkout, namespace: "shop", pod: "checkout-7d9f8b6c5-x2k4q", uid: podUID, k8sName: "checkout"},
		// environ unreadable: the container's configured environment names it.
		{pid: 14, want: "payments-api", container: payments, namespace: "shop", pod: "payments-0", uid: "uid-p", k8sName: "app"},
		{pid: 15, want: "kube-proxy", container: crio, namespace: "kube-system", pod: "kube-proxy-s9vzj", uid: "uid-kp", k8sName: "kube-proxy"},
		{pid: 16, want: "web", container: kubelet, cname: "k8s_web_web-0_default_uid-w_0", namespace: "default", pod: "web-0", uid: "uid-w", k8sName: "web"},
		// A container no runtime state describes: its executable (its scope is no unit).
		{pid: 17, want: "redis-server", container: unknown},
		{pid: 18, want: "nginx"},
		{pid: 19, want: "curl"},
	}
	for _, tt := range tests {
		got := r.Server(serverExchange(tt.pid, "", 0, "127.0.0.1:8080"))
		want := Resource{
			ServiceName: tt.want, PID: tt.pid, ExecutableName: got.Resource.ExecutableName, HostName: "node-1",
			ContainerID: tt.container, ContainerName: tt.cname,
			K8sNamespace: tt.namespace, K8sPodName: tt.pod, K8sPodUID: tt.uid, K8sContainer: tt.k8sName,
		}
		if got.Name != tt.want || !got.Local || got.Resource != want {
			t.Errorf("pid %d: %+v\n want %+v", tt.pid, got.Resource, want)
		}
	}
	c := r.Counters()
	if c.Containers != 7 || c.ContainerMisses != 1 {
		t.Errorf("counters %+v: want 7 containers (one of them the miss), 1 miss", c)
	}
	// The static map still comes first.
	r = h.resolver(static(t, "edge", "127.0.0.131:80"))
	if s := r.Server(serverExchange(12, "", 0, "127.0.0.131:80")); s.Name != "edge" || s.Resource.K8sPodName != "checkout-7d9f8b6c5-x2k4q" {
		t.Errorf("static map: %+v", s)
	}
}

// TestContainerReadOncePerContainer: the runtime state is read on the first process of a
// container; its other processes, and the processes of other containers, do not read it again.
func TestContainerReadOncePerContainer(t *testing.T) {
	h := newHost(t)
	id := hexID("a1")
	h.docker(id, "shop-api", nil, nil)
	path := "/docker/" + id
	cgid := h.cgroup(path)
	for pid := uint32(20); pid < 25; pid++ {
		h.proc(pid, []string{}, path, "/bin/busybox")
	}
	r := h.resolver()
	first := r.Server(serverExchange(20, "httpd", cgid, "127.0.0.1:80"))
	// The state file is gone from now on: only the cache can name the others.
	must(t, os.Rename(h.path("var/lib/docker/containers/"+id), h.path("moved")))
	for pid := uint32(21); pid < 25; pid++ {
		if s := r.Server(serverExchange(pid, "httpd", cgid, "127.0.0.1:80")); s.Name != "shop-api" || s.Resource.ContainerID != id {
			t.Errorf("pid %d: %+v", pid, s)
		}
	}
	if first.Name != "shop-api" {
		t.Fatalf("first: %+v", first)
	}
	if c := r.Counters(); c.Containers != 1 || c.Cgroups != 1 || c.ContainerMisses != 0 {
		t.Errorf("counters %+v", c)
	}
}

// TestGoneProcessNamedByItsCgroup: a short-lived client (wget in a container, run per request)
// exits before its connect event is read. Its cgroup id still names its container: from the
// table when another process of the cgroup was read, else from a walk of the cgroup tree.
func TestGoneProcessNamedByItsCgroup(t *testing.T) {
	h := newHost(t)
	web, api := hexID("a1"), hexID("b2")
	h.docker(web, "shop-web", []string{"OTEL_SERVICE_NAME="}, nil)
	h.docker(api, "shop-api", nil, nil)
	webID := h.cgroup("/docker/" + web)
	apiID := h.cgroup("/docker/" + api)
	unitID := h.cgroup("/system.slice/cron.service")
	h.proc(30, []string{}, "/docker/"+api, "/bin/busybox")

	r := h.resolver()
	clock := time.Unix(1000, 0)
	r.now = func() time.Time { return clock }
	connect := func(pid uint32, cg uint64, local string) {
		r.Conn(&capture.ConnEvent{Kind: capture.ConnOpened, Process: capture.Process{PID: pid, Comm: "wget", CgroupID: cg},
			Socket: capture.Socket{Role: capture.RoleClient, Local: ap(local), Remote: ap("127.0.0.131:80")}})
	}
	named := func(local string) Service {
		return r.Client(&l7.Exchange{Side: l7.SideServer, Client: l7.Endpoint{Addr: ap(local)},
			Server: l7.Endpoint{Addr: ap("127.0.0.131:80"), Process: capture.Process{PID: 30, Comm: "httpd", CgroupID: apiID}}})
	}

	// The server's /proc was read: its cgroup id is known without a walk.
	if s := r.Server(serverExchange(30, "httpd", apiID, "127.0.0.131:80")); s.Name != "shop-api" {
		t.Fatalf("server: %+v", s)
	}
	connect(31, apiID, "127.0.0.1:41000") // a process of shop-api, already gone
	if c := named("127.0.0.1:41000"); c.Name != "shop-api" || c.Resource.PID != 31 || c.Resource.ExecutableName != "wget" || c.Resource.ContainerID != api {
		t.Errorf("gone process of a known cgroup: %+v", c)
	}
	if c := r.Counters(); c.CgroupWalks != 0 || c.ProcessesGone != 1 {
		t.Errorf("known cgroup: %+v", c)
	}

	// shop-web: no process of it was ever read; the walk finds its cgroup.
	connect(40, webID, "127.0.0.1:42000")
	if c := named("127.0.0.1:42000"); c.Name != "shop-web" || c.Resource.ContainerID != web || c.Resource.ContainerName != "shop-web" {
		t.Errorf("gone process found by the walk: %+v", c)
	}
	// The next ones of the same container, and of a unit the walk saw, need no walk.
	connect(41, webID, "127.0.0.1:42001")
	connect(42, unitID, "127.0.0.1:42002")
	if c := named("127.0.0.1:42001"); c.Name != "shop-web" {
		t.Errorf("second wget: %+v", c)
	}
	if c := named("127.0.0.1:42002"); c.Name != "cron" {
		t.Errorf("unit found by the walk: %+v", c)
	}
	if c := r.Counters(); c.CgroupWalks != 1 || c.CgroupMisses != 0 || c.ProcessesGone != 4 {
		t.Errorf("after one walk: %+v", c)
	}

	// A cgroup created after the walk: the next miss walks again, but not within
	// minWalkInterval of the last walk.
	late := hexID("c3")
	h.docker(late, "late", nil, nil)
	lateID := h.cgroup("/docker/" + late)
	connect(50, lateID, "127.0.0.1:43000")
	if c := named("127.0.0.1:43000"); c.Name != "wget" || c.Resource.ContainerID != "" {
		t.Errorf("right after the last walk: %+v, want the comm", c)
	}
	clock = clock.Add(minWalkInterval)
	connect(51, lateID, "127.0.0.1:43001")
	if c := named("127.0.0.1:43001"); c.Name != "late" {
		t.Errorf("after minWalkInterval: %+v", c)
	}
	if c := r.Counters(); c.CgroupWalks != 2 || c.CgroupMisses != 1 {
		t.Errorf("misses: %+v", c)
	}

	// A one-shot container, gone with its cgroup before its processes are read: one walk
	// says so, its other processes cost none.
	clock = clock.Add(minWalkInterval)
	for pid := uint32(60); pid < 65; pid++ {
		connect(pid, 999999999, "127.0.0.1:"+strconv.Itoa(44000+int(pid)))
		clock = clock.Add(minWalkInterval)
	}
	if c := r.Counters(); c.CgroupWalks != 3 || c.CgroupMisses != 6 {
		t.Errorf("removed cgroup: %+v, want one more walk and 5 more misses", c)
	}
}

// TestSweepForgetsRemovedCgroups: removed containers and cgroups leave the tables at the next
// sweep, counted; live ones stay.
func TestSweepForgetsRemovedCgroups(t *testing.T) {
	h := newHost(t)
	keep, drop := hexID("a1"), hexID("b2")
	h.docker(keep, "keep", nil, nil)
	h.docker(drop, "drop", nil, nil)
	keepID, dropID := h.cgroup("/docker/"+keep), h.cgroup("/docker/"+drop)
	h.proc(60, []string{}, "/docker/"+keep, "/bin/a")
	h.proc(61, []string{}, "/docker/"+drop, "/bin/b")
	r := h.resolver()
	clock := time.Unix(1000, 0)
	r.now = func() time.Time { return clock }
	r.Server(serverExchange(60, "a", keepID, "127.0.0.1:80"))
	r.Server(serverExchange(61, "b", dropID, "127.0.0.1:81"))
	closed := func(pid uint32) {
		r.Conn(&capture.ConnEvent{Kind: capture.ConnClosed, Process: capture.Process{PID: pid},
			Socket: capture.Socket{Role: capture.RoleServer, Local: ap("127.0.0.1:80"), Remote: ap("127.0.0.1:1")}})
	}
	closed(60) // the first close sweeps: nothing is gone
	if c := r.Counters(); c.Containers != 2 || c.Cgroups != 2 || c.CgroupsGone != 0 {
		t.Fatalf("before removal: %+v", c)
	}
	// docker rm: the process exits, the cgroup and the state go.
	h.exit(61)
	h.removeCgroup("/docker/" + drop)
	must(t, os.RemoveAll(h.path("var/lib/docker/containers/"+drop)))
	clock = clock.Add(10 * time.Second)
	closed(61) // forgets the process at the Settle; not yet time to sweep
	r.Settle()
	if c := r.Counters(); c.ProcessesExited != 1 || c.Containers != 2 {
		t.Fatalf("before the sweep: %+v", c)
	}
	clock = clock.Add(sweepInterval)
	closed(60)
	c := r.Counters()
	if c.Containers != 1 || c.ContainersGone != 1 || c.Cgroups != 1 || c.CgroupsGone != 1 {
		t.Fatalf("after the sweep: %+v", c)
	}
	if s := r.Server(serverExchange(60, "a", keepID, "127.0.0.1:80")); s.Name != "keep" {
		t.Errorf("live container after the sweep: %+v", s)
	}
}

// TestSweepWithoutCgroupTree: where the cgroup filesystem is not visible, a cgroup goes with
// its container's runtime state.
func TestSweepWithoutCgroupTree(t *testing.T) {
	h := newHost(t)
	must(t, os.RemoveAll(h.path("sys/fs/cgroup")))
	id := hexID("b2")
	h.docker(id, "drop", nil, nil)
	h.proc(61, []string{}, "/docker/"+id, "/bin/b")
	r := h.resolver()
	clock := time.Unix(1000, 0)
	r.now = func() time.Time { return clock }
	r.Server(serverExchange(61, "b", 777, "127.0.0.1:81"))
	if c := r.Counters(); c.Cgroups != 1 || c.Containers != 1 {
		t.Fatalf("%+v", c)
	}
	must(t, os.RemoveAll(h.path("var/lib/docker/containers/"+id)))
	r.Conn(&capture.ConnEvent{Kind: capture.ConnClosed, Socket: capture.Socket{Role: capture.RoleServer}})
	if c := r.Counters(); c.Cgroups != 0 || c.Containers != 0 || c.ContainersGone != 1 || c.CgroupsGone != 1 || c.CgroupWalks != 0 {
		t.Fatalf("after the sweep: %+v", c)
	}
}

func TestCgroupTablesAreBounded(t *testing.T) {
	h := newHost(t)
	r := New(Options{HostRoot: h.root, MaxCgroups: 4})
	for i := 0; i < 20; i++ {
		id := hexID(strconv.Itoa(10 + i))
		h.docker(id, "c"+strconv.Itoa(i), nil, nil)
		pid := uint32(100 + i)
		h.proc(pid, []string{}, "/docker/"+id, "/bin/x")
		if s := r.Server(serverExchange(pid, "x", uint64(5000+i), "127.0.0.1:80")); s.Name != "c"+strconv.Itoa(i) {
			t.Fatalf("container %d: %+v", i, s)
		}
	}
	if c := r.Counters(); c.Cgroups != 4 || c.Containers != 4 || c.CgroupsEvicted != 16 || c.ContainersEvicted != 16 {
		t.Errorf("counters %+v", c)
	}
}

// TestStateFilesAreBounded: a state file that is not a config (or is cut off) is a miss, not
// a crash or an unbounded read.
func TestStateFilesAreBounded(t *testing.T) {
	h := newHost(t)
	id := hexID("a1")
	h.write(filepath.Join("var/lib/docker/containers", id, "config.v2.json"), `{"Name": "/x", "Config": {"Env": ["`+strings.Repeat("A", maxStateFile)+`"]}}`)
	h.proc(70, []string{}, "/docker/"+id, "/bin/busybox")
	r := h.resolver()
	if s := r.Server(serverExchange(70, "", 0, "127.0.0.1:80")); s.Name != "busybox" || s.Resource.ContainerID != id {
		t.Errorf("oversized state: %+v", s)
	}
	if c := r.Counters(); c.ContainerMisses != 1 {
		t.Errorf("counters %+v", c)
	}
}

// TestRemoteClientsAggregated: remote clients of a local service, with nothing else naming
// them, are one client "clients of <service>", each with its network; remote clients of a
// remote server (a reset for a closed port) keep their address.
func TestRemoteClientsAggregated(t *testing.T) {
	h := newHost(t)
	h.proc(80, []string{}, "/system.slice/nginx.service", "/usr/sbin/nginx")
	r := h.resolver(static(t, "office", "198.51.100.0/24"))
	r.Conn(opened(80, "nginx", capture.RoleServer, "10.0.0.5:443", "203.0.113.7:50000"))
	r.Learn(&l7.Exchange{Protocol: l7.ProtocolDNS, DNS: &l7.DNS{Name: "partner.example.com", Answers: []netip.Addr{netip.MustParseAddr("192.0.2.50")}}})

	tests := []struct{ client, name, network string }{
		{"203.0.113.7:50000", "clients of nginx", "203.0.113.0/24"},
		{"203.0.113.200:1234", "clients of nginx", "203.0.113.0/24"},
		{"8.8.4.4:999", "clients of nginx", "8.8.4.0/24"},
		{"[2001:db8:1:2:3::9]:40000", "clients of nginx", "2001:db8:1:2::/64"},
		{"[::ffff:203.0.113.9]:50001", "clients of nginx", "203.0.113.0/24"},
		{"198.51.100.20:40000", "office", ""},
		{"192.0.2.50:40000", "partner.example.com", ""},
	}
	for _, tt := range tests {
		x := &l7.Exchange{Side: l7.SideServer, Client: l7.Endpoint{Addr: ap(tt.client)},
			Server: l7.Endpoint{Addr: ap("10.0.0.5:443"), Process: capture.Process{PID: 80, Comm: "nginx"}}}
		c := r.Client(x)
		if c.Name != tt.name || c.Local || c.Resource.ServiceName != tt.name || c.Resource.ClientNetwork != tt.network || c.Resource.PID != 0 {
			t.Errorf("client %s: %+v, want %q in %q", tt.client, c, tt.name, tt.network)
		}
	}
	// The same through a connection event (accept), as intel and the metrics see it.
	c, s := r.ConnEnds(opened(80, "nginx", capture.RoleServer, "10.0.0.5:443", "203.0.113.99:40000"))
	if c.Name != "clients of nginx" || s.Name != "nginx" {
		t.Errorf("accept: client %+v server %+v", c, s)
	}
	// A reset for a port nobody serves: no local server, so the scanner keeps its address.
	c, _ = r.ConnEnds(&capture.ConnEvent{Kind: capture.ConnResetSent, Socket: capture.Socket{Local: ap("10.0.0.5:23"), Remote: ap("203.0.113.66:61000")}})
	if c.Name != "203.0.113.66" {
		t.Errorf("reset sent: client %+v", c)
	}
	// Local clients keep their own names.
	h.proc(81, []string{}, "/system.slice/ingest.service", "/usr/bin/ingest")
	x := &l7.Exchange{Side: l7.SideClient, Client: l7.Endpoint{Addr: ap("10.0.0.5:41000"), Process: capture.Process{PID: 81}},
		Server: l7.Endpoint{Addr: ap("10.0.0.5:443")}}
	if c := r.Client(x); c.Name != "ingest" || !c.Local {
		t.Errorf("local client: %+v", c)
	}
}

func TestSources(t *testing.T) {
	h := newHost(t)
	h.mkdir("proc/1")
	h.mkdir("run/containerd/io.containerd.runtime.v2.task")
	h.mkdir("var/lib/docker/containers")
	got := h.resolver().Sources()
	want := Sources{
		Proc:         h.path("proc"),
		CgroupV2:     h.path("sys/fs/cgroup/unified"),
		RuntimeState: []string{h.path("run/containerd/io.containerd.runtime.v2.task"), h.path("var/lib/docker/containers")},
	}
	if got.Proc != want.Proc || got.CgroupV2 != want.CgroupV2 || strings.Join(got.RuntimeState, " ") != strings.Join(want.RuntimeState, " ") {
		t.Errorf("Sources = %+v, want %+v", got, want)
	}
	if s := New(Options{HostRoot: filepath.Join(h.root, "missing")}).Sources(); s.Proc != "" || s.CgroupV2 != "" || len(s.RuntimeState) != 0 {
		t.Errorf("nothing mounted: %+v", s)
	}
}
