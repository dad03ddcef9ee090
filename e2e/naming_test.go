//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The naming scenario: three busybox httpd servers in containers, a host nginx, and a busybox
// wget loop in a container calling all four, with no services map. Every container uses the
// host network and an address of its own.
const (
	shopAPIAddr  = "127.0.0.131:8131" // Docker container shop-api
	ledgerAddr   = "127.0.0.132:8132" // Docker container ledger-box, OTEL_SERVICE_NAME=ledger
	checkoutAddr = "127.0.0.133:8133" // containerd container of pod shop/checkout-7d9f8b6c5-x2k4q
	hostWebAddr  = "127.0.0.134:8134" // nginx on the host

	checkoutPod = "checkout-7d9f8b6c5-x2k4q"
	namingLoops = 15
)

// hostServiceName is what a process this test starts on the host is called: its systemd
// unit when the test itself runs in one (then every host process it starts is in it), else
// its executable.
func hostServiceName(t *testing.T, exe string) string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var v2, v1 string
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		switch {
		case len(parts) != 3:
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case parts[1] == "name=systemd":
			v1 = parts[2]
		}
	}
	for _, p := range []string{v2, v1} {
		if strings.Contains(p, "user.slice") {
			continue
		}
		segs := strings.Split(p, "/")
		for i := len(segs) - 1; i >= 0; i-- {
			if u, ok := strings.CutSuffix(segs[i], ".service"); ok {
				t.Logf("this test runs in systemd unit %s.service: host processes are named %q", u, u)
				return u
			}
		}
	}
	return exe
}

// namingTopology is what the naming scenarios started: the containers' ids and the names
// host processes go by.
type namingTopology struct {
	shopAPI, ledger, shopWeb string
	pod                      podContainer
	hostWeb, curl            string
}

func TestNaming(t *testing.T) {
	s := newScenario(t)
	topo := s.namingServers()
	s.startCollector(receiverConfig{}) // no services map: every name comes from the node
	s.namingClients(&topo)
	s.checkNaming(topo)
}

// TestNamingFromAPod runs the collector the way the DaemonSet does: in a container with the
// host's pid namespace, its own network namespace, a read-only root, and the host paths
// naming reads mounted read-only under /host (naming.host_root). The names must be the same
// as from the host. (The capabilities are the DaemonSet's with SYS_ADMIN standing in for
// BPF and PERFMON, which Debian 12's Docker 20.10 cannot grant by name; the capture's
// least-privilege test checks the exact set.)
func TestNamingFromAPod(t *testing.T) {
	s := newScenario(t)
	topo := s.namingServers()
	s.startCollectorWith(receiverConfig{Naming: map[string]any{"host_root": "/host"}}, s.podCollector)
	s.namingClients(&topo)
	s.checkNaming(topo)
}

// podCollector is the docker run of the collector as deploy/kubernetes/30-daemonset.yaml
// runs it: hostPID, no hostNetwork, capabilities, mounts.
func (s *scenario) podCollector(bin, config string) []string {
	const name = "netintel-node"
	_, _ = s.run(30*time.Second, "docker", "rm", "-f", name)
	s.t.Cleanup(func() { _, _ = s.run(30*time.Second, "docker", "rm", "-f", name) })
	args := []string{"docker", "run", "--rm", "--name", name,
		"--pid=host", "--network=none", "--user=0:0", "--read-only",
		"--cap-drop=ALL", "--cap-add=SYS_ADMIN", "--cap-add=SYS_PTRACE",
		"-v", bin + ":/otelcol-netintel:ro",
		"-v", s.dir + ":" + s.dir,
		"-v", "/sys/kernel/tracing:/sys/kernel/tracing:ro",
		"-v", "/sys/fs/bpf:/sys/fs/bpf",
	}
	for _, p := range []string{"/proc", "/sys/fs/cgroup", "/run/containerd/io.containerd.runtime.v2.task", "/var/lib/docker/containers"} {
		args = append(args, "-v", p+":/host"+p+":ro")
	}
	return append(args, busyboxImage, "/otelcol-netintel", "--config", config)
}

// namingServers starts the runtimes, the three servers in containers and the host nginx.
func (s *scenario) namingServers() namingTopology {
	t := s.t
	t.Helper()
	s.containerRuntimes()
	httpd := func(addr string) []string { return []string{"httpd", "-f", "-p", addr, "-h", "/www"} }
	var topo namingTopology
	topo.shopAPI = s.dockerRun("shop-api", nil, httpd(shopAPIAddr)...)
	topo.ledger = s.dockerRun("ledger-box", []string{"OTEL_SERVICE_NAME=ledger"}, httpd(ledgerAddr)...)
	topo.pod = podContainer{ID: randomHex(32), Namespace: "shop", Pod: checkoutPod, UID: newPodUID(), Container: "checkout"}
	s.ctrRunPod(topo.pod, httpd(checkoutAddr)...)
	s.nginx("host-web", hostWebAddr, `
        location / { return 200 "host ok\n"; }`)
	for _, addr := range []string{shopAPIAddr, ledgerAddr, checkoutAddr} {
		s.waitTCP(addr)
	}
	topo.hostWeb, topo.curl = hostServiceName(t, "nginx"), hostServiceName(t, "curl")
	return topo
}

// namingClients runs shop-web's wget loop and a few host curls, and waits for the loop's end.
func (s *scenario) namingClients(topo *namingTopology) {
	t := s.t
	t.Helper()
	// One wget per request, each a process of its own that exits at once: shop-web's only
	// long-lived process is the shell, which never touches the network.
	loop := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do
		for u in http://%s/items http://%s/items http://%s/items http://%s/items; do wget -q -O /dev/null $u || echo "failed $u"; done
		i=$((i+1)); sleep 0.2
	done; echo done; sleep 600`, namingLoops, shopAPIAddr, ledgerAddr, checkoutAddr, hostWebAddr)
	topo.shopWeb = s.dockerRun("shop-web", nil, "sh", "-c", loop)
	if codes := s.curl(5, "http://"+shopAPIAddr+"/items"); codes["200"] != 5 {
		t.Fatalf("shop-api does not serve /items: %v", codes)
	}
	s.waitFor("shop-web's wget loop", func() error {
		out, _ := s.run(10*time.Second, "docker", "logs", "shop-web")
		if strings.Contains(out, "failed") {
			t.Fatalf("shop-web's wget failed:\n%s", out)
		}
		if !strings.Contains(out, "done") {
			return fmt.Errorf("not done yet: %q", out)
		}
		return nil
	})
}

// checkNaming asserts what issue 13 asks of the names, resources and findings.
func (s *scenario) checkNaming(topo namingTopology) {
	t := s.t
	t.Helper()
	shopAPI, ledger, shopWeb, pod, hostWeb, curl := topo.shopAPI, topo.ledger, topo.shopWeb, topo.pod, topo.hostWeb, topo.curl
	edges := []struct{ src, dst string }{
		{"shop-web", "shop-api"}, {"shop-web", "ledger"}, {"shop-web", "checkout"}, {"shop-web", hostWeb}, {curl, "shop-api"},
	}
	s.eventually(60*time.Second, fmt.Sprintf("service_dependency events %v, named from Docker, the CRI annotations, OTEL_SERVICE_NAME and the host", edges),
		func(o *output) (bool, string) {
			for _, e := range edges {
				if len(o.events(evDependency, attrs{aSource: e.src, aDest: e.dst})) == 0 {
					return false, o.dumpEvents(evDependency)
				}
			}
			return true, ""
		})

	// Each server's SERVER spans sit in the resource of its container and pod.
	servers := []struct {
		name string
		res  map[string]any
	}{
		{"shop-api", map[string]any{"container.id": shopAPI, "container.name": "shop-api"}},
		{"ledger", map[string]any{"container.id": ledger, "container.name": "ledger-box"}},
		{"checkout", map[string]any{"container.id": pod.ID, "k8s.namespace.name": "shop", "k8s.pod.name": checkoutPod,
			"k8s.pod.uid": pod.UID, "k8s.container.name": "checkout"}},
		{hostWeb, map[string]any{"process.executable.name": "nginx"}},
	}
	o := s.eventually(60*time.Second, fmt.Sprintf("≥%d SERVER spans GET /items of each server, in its container's resource, each paired with a CLIENT span of shop-web that carries shop-web's container.id", namingLoops),
		func(o *output) (bool, string) {
			var found strings.Builder
			ok := true
			for _, srv := range servers {
				paired, clients, spans := o.pairs("shop-web", srv.name, attrs{aURLPath: "/items", aHTTPStatus: 200})
				inResource := 0
				for _, sp := range spans {
					if hasAll(sp.Res, srv.res) && sp.Res["container.id"] == srv.res["container.id"] {
						inResource++
					}
				}
				clientsInContainer := 0
				for _, c := range clients {
					if c.Res["container.id"] == shopWeb && c.Res["container.name"] == "shop-web" {
						clientsInContainer++
					}
				}
				fmt.Fprintf(&found, "%s: %d server spans (%d in the expected resource %v), %d shop-web client spans (%d with its container.id), %d paired\n",
					srv.name, len(spans), inResource, srv.res, len(clients), clientsInContainer, paired)
				if inResource < namingLoops || clientsInContainer < namingLoops || paired < namingLoops {
					ok = false
				}
			}
			if !ok {
				found.WriteString(dumpSpansWithResource(o.spans))
			}
			return ok, found.String()
		})

	// Findings carry the resource of the service they are about: the dependency edges start
	// at shop-web, whose resource is its container.
	deps := o.events(evDependency, attrs{aSource: "shop-web"})
	for _, d := range deps {
		if d.Res["container.id"] != shopWeb {
			t.Errorf("service_dependency %v from shop-web: resource %v, want container.id %s", d.Attrs, d.Res, shopWeb)
		}
	}
	// Per-service metrics of the pod's container carry the pod.
	o = s.eventually(30*time.Second, fmt.Sprintf("≥%d requests in http.server.request.duration of checkout, every stream of it in a resource with k8s.pod.name=%s", namingLoops, checkoutPod),
		func(o *output) (bool, string) {
			for _, p := range o.metrics {
				if p.Name == "http.server.request.duration" && p.Service == "checkout" && !strings.Contains(p.Resource, "k8s.pod.name="+checkoutPod) {
					return false, "a stream without its pod: " + p.Resource
				}
			}
			n := o.metricTotal("http.server.request.duration", attrs{"service.name": "checkout"})
			return n >= namingLoops, fmt.Sprintf("%v requests\n%s", n, o.dumpMetric("http.server.request.duration"))
		})
	// What the issue saw before: every edge "wget -> httpd". Nothing is named after the
	// busybox applets, and no host process after a container.
	s.never(o, "services named wget or httpd (the busybox applets in the containers)", func(o *output) (int, string) {
		var bad []string
		for _, l := range o.logs {
			src, _ := attrAny(l.Attrs, aSource)
			dst, _ := attrAny(l.Attrs, aDest)
			if l.Service == "wget" || l.Service == "httpd" || src == "wget" || dst == "httpd" || src == "httpd" || dst == "wget" {
				bad = append(bad, fmt.Sprintf("%s %s → %s (resource %s)", l.EventName, src, dst, l.Service))
			}
		}
		for _, sp := range o.spans {
			if sp.Service == "wget" || sp.Service == "httpd" {
				bad = append(bad, fmt.Sprintf("%s span %q in resource %v", sp.Kind, sp.Name, sp.Res))
			}
		}
		return len(bad), strings.Join(bad, "\n")
	})
	s.never(o, "host processes with a container or pod", func(o *output) (int, string) {
		var bad []string
		for _, sp := range o.spans {
			if sp.Service == hostWeb || sp.Service == curl {
				for _, k := range []string{"container.id", "k8s.pod.name"} {
					if _, ok := sp.Res[k]; ok {
						bad = append(bad, fmt.Sprintf("%s span of %s in resource %v", sp.Kind, sp.Service, sp.Res))
					}
				}
			}
		}
		return len(bad), strings.Join(bad, "\n")
	})
}

func hasAll(got, want map[string]any) bool {
	for k, v := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

func dumpSpansWithResource(spans []span) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  (%d spans)\n", len(spans))
	for i, s := range spans {
		if i == dumpLimit {
			fmt.Fprintf(&b, "  … %d more\n", len(spans)-dumpLimit)
			break
		}
		fmt.Fprintf(&b, "  %s %q resource={%s} {%s}\n", s.Kind, s.Name, attrString(s.Res), attrString(s.Attrs))
	}
	return b.String()
}
