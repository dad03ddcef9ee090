//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"text/template"
	"time"
)

// render fills testdata/<tmpl> with data and writes it to the scenario's directory.
func (s *scenario) render(tmpl, out string, data any) string {
	s.t.Helper()
	t, err := template.ParseFiles(filepath.Join(repoRoot, "e2e", "testdata", tmpl))
	if err != nil {
		s.t.Fatal(err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		s.t.Fatal(err)
	}
	path := s.path(out)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// nginx starts an nginx named name on listen ("127.0.0.21:8081") with the given location
// blocks, and waits until it accepts connections.
func (s *scenario) nginx(name, listen, locations string) {
	s.t.Helper()
	s.nginxWith(name, listen, "", locations)
}

// nginxWith is nginx with http-level directives (upstream blocks) beside the server.
func (s *scenario) nginxWith(name, listen, httpBlock, locations string) {
	s.t.Helper()
	if err := os.MkdirAll(s.path(name+"-tmp"), 0o755); err != nil {
		s.t.Fatal(err)
	}
	cfg := s.render("nginx.conf.tmpl", name+".nginx.conf", map[string]string{
		"Name": name, "Listen": listen, "Dir": s.dir, "Locations": locations, "HTTP": httpBlock,
	})
	s.startProcess(name, "nginx", "-p", s.dir, "-e", s.path(name+".error.log"), "-c", cfg)
	s.waitTCP(listen)
}

// haproxy starts haproxy in the foreground on listen, forwarding every request to backend.
func (s *scenario) haproxy(name, listen, backend string) {
	s.t.Helper()
	cfg := s.render("haproxy.cfg.tmpl", name+".haproxy.cfg", map[string]string{
		"Listen": listen, "Backend": backend,
	})
	s.startProcess(name, "haproxy", "-f", cfg, "-db")
	s.waitTCP(listen)
}

// dnsmasq serves svc.test (→ 127.0.0.9) authoritatively on addr:53; any other name under
// .test is NXDOMAIN. It never forwards anywhere.
func (s *scenario) dnsmasq(addr string) {
	s.t.Helper()
	s.startProcess("dnsmasq", "dnsmasq", "--no-daemon", "--keep-in-foreground", "--port", "53",
		"--listen-address", addr, "--bind-interfaces", "--no-resolv", "--no-hosts",
		"--pid-file="+s.path("dnsmasq.pid"), "--local=/test/", "--address=/svc.test/127.0.0.9",
		"--log-facility=-")
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := s.run(5*time.Second, "dig", "@"+addr, "+short", "+tries=1", "+time=1", "svc.test")
		if err == nil && strings.Contains(out, "127.0.0.9") {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("dnsmasq on %s does not answer svc.test: %v %s", addr, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// --- the latency backend ------------------------------------------------------------------

const (
	roleEnv           = "NETINTEL_E2E_ROLE"
	roleLatencyServer = "latency-server"
)

// latencyServer describes the backend of the latency scenario: every request takes Base;
// after SIGUSR1, requests to SlowPath take Base+Slow.
type latencyServer struct {
	Addr     string
	Base     time.Duration
	Slow     time.Duration
	SlowPath string
	cmd      *exec.Cmd
}

// startLatencyServer runs this test binary again as the backend, a process of its own.
func (s *scenario) startLatencyServer(ls *latencyServer) {
	s.t.Helper()
	self, err := os.Executable()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := s.startProcessEnv("latency-server", []string{
		roleEnv + "=" + roleLatencyServer,
		"LATENCY_ADDR=" + ls.Addr,
		"LATENCY_BASE=" + ls.Base.String(),
		"LATENCY_SLOW=" + ls.Slow.String(),
		"LATENCY_SLOW_PATH=" + ls.SlowPath,
	}, self)
	ls.cmd = cmd
	s.waitTCP(ls.Addr)
}

// turnSlow makes SlowPath slow from now on.
func (ls *latencyServer) turnSlow() error { return ls.cmd.Process.Signal(syscall.SIGUSR1) }

func (s *scenario) startProcessEnv(name string, env []string, argv ...string) *exec.Cmd {
	s.t.Helper()
	return s.startProcessWith(name, func(c *exec.Cmd) { c.Env = append(os.Environ(), env...) }, argv...)
}

// runLatencyServer is the backend's main (see TestMain).
func runLatencyServer() {
	addr := os.Getenv("LATENCY_ADDR")
	base, _ := time.ParseDuration(os.Getenv("LATENCY_BASE"))
	slow, _ := time.ParseDuration(os.Getenv("LATENCY_SLOW"))
	slowPath := os.Getenv("LATENCY_SLOW_PATH")
	var slowOn atomic.Bool
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		for range sig {
			slowOn.Store(true)
			fmt.Println("slow mode on")
		}
	}()
	srv := &http.Server{
		Addr:              addr,
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d := base
			if slowOn.Load() && r.URL.Path == slowPath {
				d += slow
			}
			time.Sleep(d)
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintln(w, "ok")
		}),
	}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
