// Command netintel-bench measures what the collector costs the traffic it watches: nginx on
// loopback under wrk (saturation) and a fixed-rate load, with and without the collector,
// alternating over several rounds, then a run with injected 5xx for recall. It writes
// results.md and results.png (bench/run.sh is the one command that runs it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	collector  string
	out        string
	addr       string
	rounds     int
	duration   time.Duration
	rate       int
	conns      int
	wrkThreads int
	wrkConns   int
	errEvery   int
}

// sample is one measured phase pair (saturation + fixed rate) with or without the collector.
type sample struct {
	Round int
	With  bool

	WrkRPS      float64 // saturation throughput
	WrkRequests float64

	Fixed        loadResult
	CPUAll       float64 // nginx + load generator + collector, CPU seconds during the fixed-rate phase
	CPUCollector float64

	PeakRSS   int64
	AnonRSS   int64
	Exported  *exported
	StopClean bool
}

func main() {
	var o options
	flag.StringVar(&o.collector, "collector", "dist/otelcol-netintel", "the collector binary")
	flag.StringVar(&o.out, "out", "bench", "directory for results.md and results.png (work files go to <out>/out/)")
	flag.StringVar(&o.addr, "addr", "127.0.0.80:8080", "nginx listen address (loopback)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each measures without and with the collector, alternating which goes first")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each load phase")
	flag.IntVar(&o.rate, "rate", 2000, "fixed rate, requests per second")
	flag.IntVar(&o.conns, "conns", 20, "keep-alive connections of the fixed-rate load")
	flag.IntVar(&o.wrkThreads, "wrk-threads", 2, "wrk threads")
	flag.IntVar(&o.wrkConns, "wrk-conns", 50, "wrk connections")
	flag.IntVar(&o.errEvery, "err-every", 100, "in the recall run, every N-th request hits the 500 route (100 = 1%)")
	flag.Parse()
	log.SetFlags(log.Ltime)
	if !strings.HasPrefix(o.addr, "127.") {
		log.Fatalf("-addr %s: load goes to loopback (127.0.0.0/8) only", o.addr)
	}
	if os.Geteuid() != 0 {
		log.Fatal("bench: run as root (the collector loads eBPF programs)")
	}
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	work, err := filepath.Abs(filepath.Join(o.out, "out", time.Now().UTC().Format("20060102T150405")))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	log.Printf("work directory %s", work)
	ng, err := startNginx(work, o.addr)
	if err != nil {
		return err
	}
	defer ng.stop()

	var samples []sample
	for r := 1; r <= o.rounds; r++ {
		order := []bool{false, true}
		if r%2 == 0 {
			order = []bool{true, false}
		}
		for _, with := range order {
			s, err := measure(o, work, ng, r, with)
			if err != nil {
				return fmt.Errorf("round %d (collector %v): %w", r, with, err)
			}
			samples = append(samples, s)
		}
	}
	rec, err := recall(o, work, ng)
	if err != nil {
		return fmt.Errorf("recall run: %w", err)
	}
	return report(o, work, samples, rec)
}

// --- processes ----------------------------------------------------------------------------

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func start(logPath string, argv ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM to the process group and waits up to 20 s; it reports whether the
// process exited by itself with status 0.
func (p *proc) stop() bool {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err == nil
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return false
	}
}

func startNginx(work, addr string) (*proc, error) {
	tmp := filepath.Join(work, "nginx-tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx.error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    default_type text/plain;
    server {
        listen %[3]s;
        location = /err { return 500; }
        location / { return 200 "ok\n"; }
    }
}
`, work, tmp, addr)
	path := filepath.Join(work, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := start(filepath.Join(work, "nginx.log"), "nginx", "-p", work, "-e", filepath.Join(work, "nginx.error.log"), "-c", path)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(childrenOf(p.cmd.Process.Pid)) == 0 {
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("nginx started no worker in 10 s; see nginx.error.log")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p, nil
}

func nginxPids(ng *proc) []int {
	return append([]int{ng.cmd.Process.Pid}, childrenOf(ng.cmd.Process.Pid)...)
}

// startCollector writes a config for dir and waits for the collector to be ready.
func startCollector(o options, dir string) (*proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`{
  "receivers": {"net_intel": {
    "services": [{"name": "web", "match": %q}],
    "intelligence": {"flush_interval": "2s"}
  }},
  "exporters": {
    "file/logs": {"path": %q, "flush_interval": "1s"},
    "file/traces": {"path": %q, "flush_interval": "1s"},
    "file/metrics": {"path": %q, "flush_interval": "1s"}
  },
  "service": {
    "telemetry": {"logs": {"level": "info"}, "metrics": {"level": "none"}},
    "pipelines": {
      "logs": {"receivers": ["net_intel"], "exporters": ["file/logs"]},
      "traces": {"receivers": ["net_intel"], "exporters": ["file/traces"]},
      "metrics": {"receivers": ["net_intel"], "exporters": ["file/metrics"]}
    }
  }
}
`, o.addr, filepath.Join(dir, "logs.json"), filepath.Join(dir, "traces.json"), filepath.Join(dir, "metrics.json"))
	path := filepath.Join(dir, "collector.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "collector.log")
	p, err := start(logPath, o.collector, "--config", path)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if b, _ := os.ReadFile(logPath); strings.Contains(string(b), "Everything is ready") {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("collector exited before ready (%v); see %s", p.err, logPath)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("collector not ready after 90 s; see %s", logPath)
		}
	}
}

// --- phases -------------------------------------------------------------------------------

var (
	wrkRPS   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkTotal = regexp.MustCompile(`(\d+) requests in`)
)

func runWrk(o options) (rps, total float64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.duration+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(o.wrkThreads), "-c", strconv.Itoa(o.wrkConns),
		"-d", fmt.Sprintf("%ds", int(o.duration.Seconds())), "http://"+o.addr+"/").CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	m, n := wrkRPS.FindSubmatch(out), wrkTotal.FindSubmatch(out)
	if m == nil || n == nil {
		return 0, 0, fmt.Errorf("wrk: no Requests/sec in\n%s", out)
	}
	rps, _ = strconv.ParseFloat(string(m[1]), 64)
	total, _ = strconv.ParseFloat(string(n[1]), 64)
	return rps, total, nil
}

func measure(o options, work string, ng *proc, round int, with bool) (sample, error) {
	s := sample{Round: round, With: with}
	dir := filepath.Join(work, fmt.Sprintf("round%d-%s", round, map[bool]string{true: "with", false: "without"}[with]))
	var col *proc
	if with {
		var err error
		if col, err = startCollector(o, dir); err != nil {
			return s, err
		}
	}
	var err error
	if s.WrkRPS, s.WrkRequests, err = runWrk(o); err != nil {
		if col != nil {
			col.stop()
		}
		return s, err
	}
	time.Sleep(time.Second)

	pids := append(nginxPids(ng), os.Getpid())
	var colPid int
	if col != nil {
		colPid = col.cmd.Process.Pid
	}
	cpu0, col0 := cpuOf(pids), cpuOf([]int{colPid})
	s.Fixed = fixedRate(context.Background(), "http://"+o.addr, o.rate, o.conns, o.duration, "/", "/err", 0)
	cpu1, col1 := cpuOf(pids), cpuOf([]int{colPid})
	s.CPUAll = cpu1 - cpu0 + col1 - col0
	s.CPUCollector = col1 - col0

	if col != nil {
		time.Sleep(5 * time.Second) // two flushes, so the files hold the final counts
		s.PeakRSS, _ = peakRSS(colPid)
		s.AnonRSS, _ = anonRSS(colPid)
		s.StopClean = col.stop()
		if s.Exported, err = readExported(dir); err != nil {
			return s, err
		}
	}
	log.Printf("round %d collector=%-5v wrk %.0f req/s; fixed %s, CPU all %.3fs collector %.3fs",
		round, with, s.WrkRPS, s.Fixed, s.CPUAll, s.CPUCollector)
	return s, nil
}

// recallResult: a fixed-rate run where 1/errEvery of the requests answer 500.
type recallResult struct {
	Load            loadResult
	CountedServer5x float64 // http.server.request.duration count with status 500
	CountedFailedSG float64 // traces_service_graph_request_failed_total into web
	CountedOK       float64 // http.server.request.duration count with status 200
}

func recall(o options, work string, ng *proc) (recallResult, error) {
	var r recallResult
	dir := filepath.Join(work, "recall")
	col, err := startCollector(o, dir)
	if err != nil {
		return r, err
	}
	r.Load = fixedRate(context.Background(), "http://"+o.addr, o.rate, o.conns, o.duration, "/", "/err", o.errEvery)
	time.Sleep(5 * time.Second)
	col.stop()
	e, err := readExported(dir)
	if err != nil {
		return r, err
	}
	web := func(status string) map[string]string {
		return map[string]string{"service.name": "web", "http.response.status_code": status}
	}
	r.CountedServer5x = e.total("http.server.request.duration", web("500"))
	r.CountedOK = e.total("http.server.request.duration", web("200"))
	r.CountedFailedSG = e.total("traces_service_graph_request_failed_total", map[string]string{"server": "web"})
	log.Printf("recall: %s; counted 5xx %.0f (service graph failed %.0f), 200 %.0f", r.Load, r.CountedServer5x, r.CountedFailedSG, r.CountedOK)
	return r, nil
}
