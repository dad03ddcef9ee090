// Command netintel-bench measures what the collector costs the traffic it watches: nginx on
// loopback (`return 200`, 1% random 503) under wrk at saturation, with and without the
// collector, alternating over several rounds. Each collector session then measures the
// kernel time of its eBPF programs (bpf_stats) at a fixed rate and at saturation, and checks
// what it exported against what the clients got. Throughput rounds follow: short sessions that
// measure only throughput, many of them, because this machine drifts more between two sessions
// than the collector costs. Then a pair of sessions requests /items/<id> of
// 100000 ids (high-cardinality paths), and a pair /healthy, which never fails. It writes
// results.md and results.png (bench/run.sh is the one command that runs it).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type options struct {
	collector string
	hooks     string // the no-op hooks (bench/hooks): the floor of tracing these syscalls
	build     string // the collector binary's description, for the report
	out       string
	addr      string
	rounds    int
	duration  time.Duration
	// Throughput rounds: short adjacent sessions that measure only throughput.
	throughputRounds   int
	throughputDuration time.Duration
	rate               int
	conns              int
	wrkThreads         int
	wrkConns           int
}

func main() {
	var o options
	flag.StringVar(&o.collector, "collector", "dist/otelcol-netintel", "the collector binary")
	flag.StringVar(&o.hooks, "hooks", "", "no-op hooks on the same syscalls (bench/hooks), measured each round too; empty: not measured")
	flag.StringVar(&o.out, "out", "bench", "directory for results.md and results.png (work files go to <out>/out/)")
	flag.StringVar(&o.addr, "addr", "127.0.0.80:8080", "nginx listen address (loopback)")
	flag.IntVar(&o.rounds, "rounds", 6, "rounds; each measures without and with the collector, alternating which goes first")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each load phase")
	flag.IntVar(&o.throughputRounds, "throughput-rounds", 24, "throughput rounds after the rounds: sessions without and with the collector (and the no-op hooks) that measure only throughput, alternating")
	flag.DurationVar(&o.throughputDuration, "throughput-duration", 5*time.Second, "length of a throughput round's sessions")
	flag.IntVar(&o.rate, "rate", 2000, "rate of the kernel-time phase, requests per second")
	flag.IntVar(&o.conns, "conns", 20, "keep-alive connections of the fixed-rate load")
	flag.IntVar(&o.wrkThreads, "wrk-threads", 2, "wrk threads")
	flag.IntVar(&o.wrkConns, "wrk-conns", 50, "wrk connections")
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
	// On SIGINT/SIGTERM the running phase ends early and everything below unwinds: the
	// collector and nginx are stopped and bpf_stats is restored.
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	work, err := filepath.Abs(filepath.Join(o.out, "out", time.Now().UTC().Format("20060102T150405")))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	log.Printf("work directory %s", work)
	if o.collector, o.build, err = copyCollector(o.collector, work); err != nil {
		return fmt.Errorf("collector binary: %w", err)
	}
	log.Printf("collector %s", o.build)

	// bpf_stats is off for the throughput phases whatever it was, and restored at the end.
	prev, err := readStatsSysctl()
	if err != nil {
		return fmt.Errorf("kernel.bpf_stats_enabled: %w", err)
	}
	if prev != "0" {
		log.Printf("kernel.bpf_stats_enabled was %s: off except while kernel time is measured, %s again at the end", prev, prev)
	}
	if err := writeStatsSysctl("0"); err != nil {
		return fmt.Errorf("kernel.bpf_stats_enabled: %w", err)
	}
	defer func() {
		if err := writeStatsSysctl(prev); err != nil {
			log.Printf("kernel.bpf_stats_enabled not restored to %s: %v", prev, err)
		}
	}()

	ng, err := startNginx(work, o.addr)
	if err != nil {
		return err
	}
	defer ng.stop()

	// Without, with, and (with -hooks) the no-op hooks alone, the order rotating by round.
	modes := []string{"without", "with", "hooks"}
	if o.hooks == "" {
		modes = modes[:2]
	}
	order := func(r int) []string {
		out := make([]string, len(modes))
		for i := range modes {
			out[i] = modes[(i+r-1)%len(modes)]
		}
		return out
	}
	var samples, hooks, throughput []sample
	for r := 1; r <= o.rounds; r++ {
		for _, mode := range order(r) {
			if mode == "hooks" {
				s, err := measureHooks(ctx, o, o.duration, work, ng, rootScenario, r)
				if err != nil {
					return fmt.Errorf("round %d (no-op hooks): %w", r, err)
				}
				hooks = append(hooks, s)
				continue
			}
			s, err := measure(ctx, o, work, ng, rootScenario, r, mode == "with")
			if err != nil {
				return fmt.Errorf("round %d (%s the collector): %w", r, mode, err)
			}
			samples = append(samples, s)
		}
	}
	// Throughput rounds are numbered on from the rounds.
	for r := o.rounds + 1; r <= o.rounds+o.throughputRounds; r++ {
		for _, mode := range order(r) {
			s, err := measureThroughput(ctx, o, work, ng, r, mode)
			if err != nil {
				return fmt.Errorf("throughput round %d (%s): %w", r, mode, err)
			}
			throughput = append(throughput, s)
		}
	}
	items, err := itemsScenario(work)
	if err != nil {
		return err
	}
	for _, sc := range []scenario{items, healthyScenario, outageScenario} {
		for _, with := range []bool{false, true} {
			s, err := measure(ctx, o, work, ng, sc, 1, with)
			if err != nil {
				return fmt.Errorf("%s run (collector %v): %w", sc.name, with, err)
			}
			samples = append(samples, s)
		}
	}
	return report(o, work, samples, hooks, throughput)
}
