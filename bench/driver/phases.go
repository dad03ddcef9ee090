package main

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The measured phases of one session, with or without the collector.

// scenario is what the load requests.
type scenario struct {
	name    string
	label   string             // in the report
	wrkPath string             // what wrk requests, unless script says otherwise
	script  string             // wrk script
	path    func(i int) string // the fixed-rate load's i-th path
}

func constant(path string) func(int) string { return func(int) string { return path } }

// rootScenario requests /: 1% of the answers are 503.
var rootScenario = scenario{name: "root", label: "`/`", wrkPath: "/", path: constant("/")}

// healthyScenario requests /healthy, which never fails: what the kernel's aggregation does
// when no error keeps a route's exchanges crossing to user space.
var healthyScenario = scenario{name: "healthy", label: "`/healthy` (no errors)", wrkPath: "/healthy", path: constant("/healthy")}

// outageScenario requests /outage, half of whose answers are 503: an outage, whose errors the
// kernel sends whole only up to each key's bound per drain and counts beyond it.
var outageScenario = scenario{name: "outage", label: "`/outage` (50% errors)", wrkPath: "/outage", path: constant("/outage")}

// itemsScenario requests /items/<random id of 100000>: paths of high cardinality, one route
// (1% 503 as on /).
func itemsScenario(work string) (scenario, error) {
	script, err := highCardScript(work)
	return scenario{
		name:    "items",
		label:   "`/items/<id>`",
		wrkPath: "/",
		script:  script,
		path:    func(int) string { return fmt.Sprintf("/items/%d", rand.IntN(100000)+1) },
	}, err
}

// sample is one session: wrk at saturation and, with the collector, the kernel-time phases
// and what the collector exported.
type sample struct {
	Scenario scenario
	Round    int
	With     bool
	Hooks    bool // no collector, the no-op hooks attached (bench/hooks)
	Started  time.Time

	Wrk          wrkResult // saturation, bpf_stats off
	CPUAll       float64   // nginx + wrk + collector CPU seconds over the saturation phase
	CPUCollector float64   // the collector's part
	CPUOther     float64   // CPU seconds the rest of the host used meanwhile (noise)

	// With the collector only.
	Fixed             loadResult // kernel time at a fixed rate (bpf_stats on)
	Kernel            kernelTime
	CPUCollectorFixed float64   // the collector's CPU seconds over the fixed-rate phase
	WrkStats          wrkResult // kernel time at saturation: wrk for half the duration (bpf_stats on)
	KernelSat         kernelTime
	Served5xx         uint64 // 5xx nginx logged over the session's loads
	PeakRSS, AnonRSS  int64
	Exported          *exported
	StopClean         bool
}

func (s sample) side() string {
	if s.Hooks {
		return "hooks"
	}
	if s.With {
		return "with"
	}
	return "without"
}

// answered is every request of the session that got a response.
func (s sample) answered() uint64 { return s.Wrk.Requests + s.Fixed.answered() + s.WrkStats.Requests }

// failed is the answered requests that were not 2xx.
func (s sample) failed() uint64 {
	return s.Wrk.Non2xx + s.Fixed.ServerErr + s.Fixed.Other + s.WrkStats.Non2xx
}

// settle is how long the collector gets after the saturation phase to finish the events it
// was sent: its CPU over that second counts toward the saturation's requests.
const settle = time.Second

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func measure(ctx context.Context, o options, work string, ng *nginx, sc scenario, round int, with bool) (s sample, err error) {
	s = sample{Scenario: sc, Round: round, With: with}
	dir := filepath.Join(work, fmt.Sprintf("%s-round%d-%s", sc.name, round, s.side()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return s, err
	}
	var col *proc
	var colPids []int
	if with {
		if col, err = startCollector(o, dir); err != nil {
			return s, err
		}
		defer func() {
			if col != nil {
				col.stop()
			}
		}()
		colPids = []int{col.pid()}
	}
	served0 := ng.served5xx()

	// Saturation: throughput and CPU, with bpf_stats off.
	if err := s.saturate(ctx, o, o.duration, ng, dir, colPids); err != nil {
		return s, err
	}
	if !with {
		return s, nil
	}

	// Kernel time with bpf_stats on: at saturation, right after the saturation phase (wrk's
	// edge does not go idle in between: the hot-edge sampler would take a burst of spans
	// when it comes back), then at a fixed rate.
	var wrkErr error
	s.KernelSat, err = measureKernel(func() uint64 {
		s.WrkStats, wrkErr = runWrk(ctx, o, o.duration/2, sc.wrkPath, sc.script, filepath.Join(dir, "wrk-bpf-stats.txt"))
		return s.WrkStats.Requests
	})
	if err == nil {
		err = wrkErr
	}
	if err != nil {
		return s, err
	}
	log.Printf("%s round %d kernel time at saturation: wrk %.0f req/s (bpf_stats on); %.2f µs and %.1f program runs per request",
		sc.name, round, s.WrkStats.RPS, s.KernelSat.usPerRequest(), s.KernelSat.runsPerRequest())
	col2 := cpuOf(colPids)
	s.Kernel, err = measureKernel(func() uint64 {
		s.Fixed = fixedRate(ctx, "http://"+o.addr, o.rate, o.conns, o.duration, sc.path)
		return s.Fixed.answered()
	})
	s.CPUCollectorFixed = cpuOf(colPids) - col2
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return s, err
	}
	log.Printf("%s round %d kernel time at %d req/s: %s; %.2f µs and %.1f program runs per request",
		sc.name, round, o.rate, s.Fixed, s.Kernel.usPerRequest(), s.Kernel.runsPerRequest())

	// Two flushes, so the files hold the final totals.
	if err := sleep(ctx, 5*time.Second); err != nil {
		return s, err
	}
	s.Served5xx = ng.served5xx() - served0
	s.PeakRSS, _ = peakRSS(col.pid())
	s.AnonRSS, _ = anonRSS(col.pid())
	s.StopClean = col.stop()
	col = nil
	if s.Exported, err = readExported(dir); err != nil {
		return s, err
	}
	web := map[string]string{"service.name": "web"}
	log.Printf("%s round %d exported: web counted %.0f of %d answered, 503 %.0f of %d (nginx logged %d); %d bench records; routes %v",
		sc.name, round, s.Exported.total("http.server.request.duration", web), s.answered(),
		s.Exported.total("http.server.request.duration", map[string]string{"service.name": "web", "http.response.status_code": "503"}),
		s.failed(), s.Served5xx, s.Exported.BenchLogRecords+s.Exported.BenchSpans, s.Exported.routes("web"))
	return s, nil
}

// measureHooks is a saturation phase with the no-op hooks attached and no collector: what
// tracing these syscalls costs before any program does anything.
func measureHooks(ctx context.Context, o options, d time.Duration, work string, ng *nginx, sc scenario, round int) (s sample, err error) {
	s = sample{Scenario: sc, Round: round, Hooks: true}
	dir := filepath.Join(work, fmt.Sprintf("%s-round%d-%s", sc.name, round, s.side()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return s, err
	}
	logPath := filepath.Join(dir, "hooks.log")
	h, err := start(logPath, o.hooks)
	if err != nil {
		return s, err
	}
	defer h.stop()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if b, _ := os.ReadFile(logPath); strings.Contains(string(b), "attached") {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			return s, fmt.Errorf("no-op hooks did not attach: %s", b)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return s, err
		}
	}
	return s, s.saturate(ctx, o, d, ng, dir, nil)
}

// measureThroughput is a session of a throughput round: wrk at saturation for
// o.throughputDuration and nothing else, without the collector, with it (started, measured,
// stopped) or with the no-op hooks. Many short rounds of adjacent sessions estimate the
// throughput ratio, which this machine's drift makes noisy, better than a few long ones.
func measureThroughput(ctx context.Context, o options, work string, ng *nginx, round int, mode string) (s sample, err error) {
	if mode == "hooks" {
		return measureHooks(ctx, o, o.throughputDuration, work, ng, rootScenario, round)
	}
	s = sample{Scenario: rootScenario, Round: round, With: mode == "with"}
	dir := filepath.Join(work, fmt.Sprintf("%s-round%d-%s", s.Scenario.name, round, s.side()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return s, err
	}
	var pids []int
	if s.With {
		col, err := startCollector(o, dir)
		if err != nil {
			return s, err
		}
		defer col.stop()
		pids = []int{col.pid()}
	}
	return s, s.saturate(ctx, o, o.throughputDuration, ng, dir, pids)
}

// saturate runs wrk at saturation for d and reads what it cost: the CPU of nginx, wrk and the
// collector (colPids, if any) over it and the settle second after it, and what the rest of the
// host used meanwhile.
func (s *sample) saturate(ctx context.Context, o options, d time.Duration, ng *nginx, dir string, colPids []int) (err error) {
	s.Started = time.Now()
	nginx0, col0, host0 := cpuOf(ng.pids()), cpuOf(colPids), hostBusySeconds()
	if s.Wrk, err = runWrk(ctx, o, d, s.Scenario.wrkPath, s.Scenario.script, filepath.Join(dir, "wrk.txt")); err != nil {
		return err
	}
	if err := sleep(ctx, settle); err != nil {
		return err
	}
	nginx1, col1, host1 := cpuOf(ng.pids()), cpuOf(colPids), hostBusySeconds()
	s.CPUCollector = col1 - col0
	s.CPUAll = nginx1 - nginx0 + s.Wrk.CPU + s.CPUCollector
	s.CPUOther = host1 - host0 - s.CPUAll
	log.Printf("%s round %d %-7s wrk %.0f req/s (%d requests, %d non-2xx%s); CPU all %.2fs, collector %.2fs, rest of the host %.2fs",
		s.Scenario.name, s.Round, s.side(), s.Wrk.RPS, s.Wrk.Requests, s.Wrk.Non2xx, prefixed("; ", s.Wrk.Errors), s.CPUAll, s.CPUCollector, s.CPUOther)
	return nil
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}
