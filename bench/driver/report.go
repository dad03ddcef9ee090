package main

import (
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Targets of issue 12 on the 2-core machine.
const (
	targetThroughputRatio = 0.90
	targetCollectorMCPU   = 2.0    // collector CPU-ms per 1k requests (= mCPU per 1k req/s), at saturation
	targetKernelUS        = 2.0    // µs of all eBPF programs per request, both sides
	targetRingBytesPer1k  = 20_000 // ring-buffer bytes per 1k healthy requests (20 KB)
	targetRecordsPer1k    = 25     // exported spans + log records per 1k requests at 1% errors
	targetCountTolerance  = 0.005  // http.server.request.duration count vs requests answered
)

// perThousand converts CPU seconds over n requests to CPU-ms per 1k requests, which is also
// mCPU per 1k req/s.
func perThousand(cpuSeconds float64, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return cpuSeconds * 1e6 / float64(n)
}

func per1k(v float64, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return v * 1000 / float64(n)
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var t float64
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

func check(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// session is what one collector session measured, derived from its sample.
type session struct {
	s                 sample
	collectorSat      float64 // collector CPU-ms per 1k requests at saturation
	collectorFixed    float64 // the same at the fixed rate, bpf_stats on
	allSat            float64 // nginx + wrk + collector CPU-ms per 1k requests at saturation
	kernelUS          float64 // at the fixed rate
	kernelSatUS       float64 // at saturation
	ringPer1k         float64 // per 1k healthy (2xx) requests
	eventsPer1k       float64
	recordsPer1k      float64
	counted, counted5 float64 // web's http.server.request.duration count: all, 503
	failedSG          float64 // service graph failed requests into web
	routes            []string
}

func derive(s sample) session {
	d := session{
		s:              s,
		collectorSat:   perThousand(s.CPUCollector, s.Wrk.Requests),
		collectorFixed: perThousand(s.CPUCollectorFixed, s.Fixed.answered()),
		allSat:         perThousand(s.CPUAll, s.Wrk.Requests),
		kernelUS:       s.Kernel.usPerRequest(),
		kernelSatUS:    s.KernelSat.usPerRequest(),
	}
	if e := s.Exported; e != nil {
		healthy := s.answered() - s.failed()
		d.ringPer1k = per1k(e.total("netintel.receiver.ringbuf_bytes", nil), healthy)
		d.eventsPer1k = per1k(e.total("netintel.receiver.events_read", nil), s.answered())
		d.recordsPer1k = per1k(float64(e.BenchLogRecords+e.BenchSpans), s.answered())
		d.counted = e.total("http.server.request.duration", map[string]string{"service.name": "web"})
		d.counted5 = e.total("http.server.request.duration", map[string]string{"service.name": "web", "http.response.status_code": "503"})
		d.failedSG = e.total("traces_service_graph_request_failed_total", map[string]string{"server": "web"})
		d.routes = e.routes("web")
	}
	return d
}

// countError is the relative deviation of web's count from the requests answered.
func (d session) countError() float64 {
	if d.s.answered() == 0 {
		return math.Inf(1)
	}
	return d.counted/float64(d.s.answered()) - 1
}

// summary is one scenario's sessions: means over the rounds, kernel time summed.
type summary struct {
	label                  string
	sessions               []session // with the collector
	rpsWith, rpsWithout    float64
	allWith, allWithout    float64
	wrkStatsRPS            float64 // throughput while bpf_stats was on
	colSat, colFixed       float64
	ring, events, records  float64
	kernel, kernelSat      kernelTime
	answered               uint64
	counters               map[string]float64 // the receiver's, summed
	routes                 []string           // of the last session
	ratio, kernelUS, satUS float64
}

func summarize(samples []sample) summary {
	var rpsWith, rpsWithout, allWith, allWithout, statsRPS, colSat, colFixed, ring, events, records []float64
	m := summary{counters: map[string]float64{}}
	for _, s := range samples {
		m.label = s.Scenario.label
		if !s.With {
			rpsWithout = append(rpsWithout, s.Wrk.RPS)
			allWithout = append(allWithout, perThousand(s.CPUAll, s.Wrk.Requests))
			continue
		}
		d := derive(s)
		m.sessions = append(m.sessions, d)
		rpsWith, allWith, statsRPS = append(rpsWith, s.Wrk.RPS), append(allWith, d.allSat), append(statsRPS, s.WrkStats.RPS)
		colSat, colFixed = append(colSat, d.collectorSat), append(colFixed, d.collectorFixed)
		ring, events, records = append(ring, d.ringPer1k), append(events, d.eventsPer1k), append(records, d.recordsPer1k)
		m.kernel.add(s.Kernel)
		m.kernelSat.add(s.KernelSat)
		m.answered += s.answered()
		for k, v := range s.Exported.selfCounters() {
			m.counters[k] += v
		}
		m.routes = d.routes
	}
	m.rpsWith, m.rpsWithout, m.allWith, m.allWithout = mean(rpsWith), mean(rpsWithout), mean(allWith), mean(allWithout)
	m.wrkStatsRPS, m.colSat, m.colFixed = mean(statsRPS), mean(colSat), mean(colFixed)
	m.ring, m.events, m.records = mean(ring), mean(events), mean(records)
	m.ratio = m.rpsWith / m.rpsWithout
	m.kernelUS, m.satUS = m.kernel.usPerRequest(), m.kernelSat.usPerRequest()
	return m
}

// ratiosByRound is, in round order, each round's wrk req/s of its num session over its den
// session's (rounds that lack either are left out).
func ratiosByRound(num, den []sample) []float64 {
	n, d := map[int]float64{}, map[int]float64{}
	var rounds []int
	for _, s := range num {
		n[s.Round] = s.Wrk.RPS
		rounds = append(rounds, s.Round)
	}
	for _, s := range den {
		d[s.Round] = s.Wrk.RPS
	}
	sort.Ints(rounds)
	var out []float64
	for _, r := range rounds {
		if d[r] > 0 {
			out = append(out, n[r]/d[r])
		}
	}
	return out
}

// spread is the mean of per-round ratios with its 90% confidence interval (Student's t: the
// rounds' ratios are independent draws of this machine's drift around the true ratio), and
// their median.
type spread struct {
	n                    int
	mean, lo, hi, median float64
}

// t95 is Student's t 0.95 quantile by degrees of freedom (1 to 30; more: 1.68 down to 1.645).
var t95 = []float64{6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761,
	1.753, 1.746, 1.740, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697}

func spreadOf(xs []float64) spread {
	sp := spread{n: len(xs), mean: mean(xs)}
	if sp.n == 0 {
		return sp
	}
	sorted := append([]float64(nil), xs...)
	sort.Float64s(sorted)
	sp.median = sorted[sp.n/2]
	if sp.n%2 == 0 {
		sp.median = (sorted[sp.n/2-1] + sorted[sp.n/2]) / 2
	}
	sp.lo, sp.hi = math.Inf(-1), math.Inf(1)
	if sp.n < 2 {
		return sp
	}
	var ss float64
	for _, x := range xs {
		ss += (x - sp.mean) * (x - sp.mean)
	}
	t := 1.645
	switch df := sp.n - 1; {
	case df <= len(t95):
		t = t95[df-1]
	case df <= 40:
		t = 1.684
	case df <= 60:
		t = 1.671
	}
	half := t * math.Sqrt(ss/float64(sp.n-1)/float64(sp.n))
	sp.lo, sp.hi = sp.mean-half, sp.mean+half
	return sp
}

func (sp spread) String() string {
	return fmt.Sprintf("%.3f (90%% confidence %.3f to %.3f; median %.3f; %d rounds)", sp.mean, sp.lo, sp.hi, sp.median, sp.n)
}

// atLeast judges a target on a spread: met when its whole interval is at or above it, missed
// when its whole interval is below, and not shown when the interval spans it.
func (sp spread) atLeast(target float64) string {
	switch {
	case sp.lo >= target:
		return "met"
	case sp.hi < target:
		return "**missed**"
	}
	return "**not shown** (the interval spans the target)"
}

func formatRatios(xs []float64) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(out, ", ")
}

func routeSummary(routes []string) string {
	if len(routes) <= 4 {
		return fmt.Sprintf("%d (%s)", len(routes), strings.Join(routes, ", "))
	}
	return fmt.Sprintf("%d (%s, …)", len(routes), strings.Join(routes[:4], ", "))
}

func report(o options, work string, samples, hooks, throughput []sample) error {
	byName := map[string][]sample{}
	for _, s := range samples {
		byName[s.Scenario.name] = append(byName[s.Scenario.name], s)
	}
	root, items, healthy, outage := summarize(byName["root"]), summarize(byName["items"]), summarize(byName["healthy"]), summarize(byName["outage"])
	scenarios := []summary{root, items, healthy, outage}
	var all []session
	for _, m := range scenarios {
		all = append(all, m.sessions...)
	}
	worstCount, exact5xx, unread5xx, asNginx, allClean := 0.0, true, true, true, true
	var counted5, clients5, nginx5 float64
	var anonMax, peakMax int64
	var nonCumulative []string
	for _, d := range all {
		if math.Abs(d.countError()) > math.Abs(worstCount) {
			worstCount = d.countError()
		}
		exact5xx = exact5xx && d.counted5 == float64(d.s.failed())
		// What nginx answered but the clients did not read: wrk stops at its deadline with up to
		// one request in flight per connection, over the session's two wrk runs.
		unread := int64(d.s.Served5xx) - int64(d.s.failed())
		unread5xx = unread5xx && unread >= 0 && unread <= int64(2*o.wrkConns)
		asNginx = asNginx && d.counted5 == float64(d.s.Served5xx)
		counted5, clients5, nginx5 = counted5+d.counted5, clients5+float64(d.s.failed()), nginx5+float64(d.s.Served5xx)
		allClean = allClean && d.s.StopClean
		anonMax, peakMax = max(anonMax, d.s.AnonRSS), max(peakMax, d.s.PeakRSS)
		nonCumulative = append(nonCumulative, d.s.Exported.nonCumulative...)
	}

	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# netintel overhead benchmark\n\n")
	fmt.Fprintf(&b, "Generated by `make bench` (bench/run.sh) on %s UTC, %s, %d CPUs (%s), collector %s (copied once: every session runs the same build). ",
		time.Now().UTC().Format("2006-01-02 15:04"), host, runtime.NumCPU(), runtime.GOARCH, o.build)
	fmt.Fprintf(&b, "nginx (1 worker, `return 200`, 1%% random 503 by `split_clients` on the request id) on %s. "+
		"Each session: wrk -t%d -c%d for %s at saturation with `kernel.bpf_stats_enabled=0`; then, with the collector, the kernel time of its eBPF programs with `kernel.bpf_stats_enabled=1`: "+
		"wrk for %s, then a fixed %d req/s over %d keep-alive connections (Go client) for %s; then two flushes and what the collector exported (default sampling, flush 2s, file exporter). "+
		"%d rounds of `/` without and with the collector, and (when measured) with no-op programs on the same syscalls and no collector (bench/hooks: the floor of tracing them), the order rotating by round; then %d throughput rounds of the same three sessions for %s each, measuring only wrk's throughput (the collector started for its session, then stopped); then one pair of sessions requesting `/items/<random id of 100000>` (wrk lua script; the same at the fixed rate), one pair on `/healthy`, which never fails, and one pair on `/outage`, which fails half the time (50%% random 503).\n\n",
		o.addr, o.wrkThreads, o.wrkConns, o.duration, o.duration/2, o.rate, o.conns, o.duration, o.rounds, o.throughputRounds, o.throughputDuration)

	fmt.Fprintf(&b, "## Summary\n\n| measure | value | target | |\n|---|---|---|---|\n")
	row := func(measure, value, target, mark string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", measure, value, target, mark)
	}

	// Throughput: every round's ratio of its adjacent sessions, the full rounds' and the
	// throughput rounds' alike.
	var with, without, hooked []sample
	for _, s := range append(append([]sample(nil), byName["root"]...), throughput...) {
		switch {
		case s.Hooks:
			hooked = append(hooked, s)
		case s.With:
			with = append(with, s)
		default:
			without = append(without, s)
		}
	}
	hooked = append(hooked, hooks...)
	ratios := ratiosByRound(with, without)
	tp := spreadOf(ratios)
	row(fmt.Sprintf("max throughput (wrk saturation), with / without: the mean of the rounds' ratios (each round's two adjacent sessions; %d rounds of %s and %d throughput rounds of %s)",
		o.rounds, o.duration, o.throughputRounds, o.throughputDuration),
		tp.String(), fmt.Sprintf("≥ %.2f", targetThroughputRatio), tp.atLeast(targetThroughputRatio))
	row("the rounds' ratios, in order: the spread is this machine's drift", formatRatios(ratios), "", "")
	row(fmt.Sprintf("the same, the ratio of the mean req/s of the %d rounds", o.rounds),
		fmt.Sprintf("%.3f (%.0f / %.0f req/s)", root.ratio, root.rpsWith, root.rpsWithout), "", "")
	if len(hooked) > 0 {
		row("max throughput, no-op hooks on the same syscalls / without (the floor of tracing them: bench/hooks), by round",
			spreadOf(ratiosByRound(hooked, without)).String(), "", "")
		row("max throughput, with the collector / no-op hooks (what netintel's programs and collector cost), by round",
			spreadOf(ratiosByRound(with, hooked)).String(), "", "")
	}
	row("collector CPU per 1k requests at saturation (= mCPU per 1k req/s)",
		fmt.Sprintf("%.2f", root.colSat), fmt.Sprintf("≤ %.0f", targetCollectorMCPU), check(root.colSat <= targetCollectorMCPU))
	row("kernel time of the eBPF programs per request at saturation, both sides (bpf_stats, wrk)",
		fmt.Sprintf("%.2f µs (%.1f runs; wrk %.0f req/s with bpf_stats on)", root.satUS, root.kernelSat.runsPerRequest(), root.wrkStatsRPS), fmt.Sprintf("≤ %.0f µs", targetKernelUS), check(root.satUS <= targetKernelUS))
	row(fmt.Sprintf("the same at %d req/s (caches cold between requests: docs/kernel-hooks.md)", o.rate),
		fmt.Sprintf("%.2f µs (%.1f runs): %.2f%% of one CPU", root.kernelUS, root.kernel.runsPerRequest(), root.kernelUS*float64(o.rate)/1e4), "— (the targets are at saturation)", "")
	row("ring-buffer bytes per 1k healthy requests at 1% errors (netintel.receiver.ringbuf_bytes / 2xx answered; the errors' records included)",
		fmt.Sprintf("%.0f B", root.ring), fmt.Sprintf("≤ %d B", targetRingBytesPer1k), check(root.ring <= targetRingBytesPer1k))
	row("ring-buffer bytes per 1k requests on `/healthy` (no errors)",
		fmt.Sprintf("%.0f B", healthy.ring), fmt.Sprintf("≤ %d B", targetRingBytesPer1k), check(healthy.ring <= targetRingBytesPer1k))
	row("exported records (spans + log records of web, wrk and the load generator) per 1k requests at 1% errors",
		fmt.Sprintf("%.2f", root.records), fmt.Sprintf("≤ %d", targetRecordsPer1k), check(root.records <= targetRecordsPer1k))
	row("exactness: web's `http.server.request.duration` count vs requests answered (wrk + fixed rate), worst session",
		fmt.Sprintf("%+.3f%%", 100*worstCount), fmt.Sprintf("± %.1f%%", 100*targetCountTolerance), check(math.Abs(worstCount) <= targetCountTolerance))
	row("exactness: web's 503 count = non-2xx the clients got (wrk's `Non-2xx or 3xx` + fixed-rate 5xx), every session",
		fmt.Sprintf("%s: %.0f counted of %.0f (%.0f more: answered by nginx and counted, in flight at wrk's deadline, unread by wrk)",
			map[bool]string{true: "equal", false: "not equal"}[exact5xx], counted5, clients5, counted5-clients5),
		fmt.Sprintf("100%% of what the clients read; nginx's answers to requests in flight at wrk's deadline, unread by wrk, are ≤ %d per session", 2*o.wrkConns),
		check(exact5xx || (asNginx && unread5xx)))
	row("exactness: web's 503 count = 5xx nginx served (its 5xx-only access log), every session",
		fmt.Sprintf("%s: %.0f counted of %.0f", map[bool]string{true: "equal", false: "not equal"}[asNginx], counted5, nginx5), "100%", check(asNginx))
	row("high-cardinality paths: collector CPU per 1k requests at saturation",
		fmt.Sprintf("%.2f", items.colSat), fmt.Sprintf("≤ %.0f", targetCollectorMCPU), check(items.colSat <= targetCollectorMCPU))
	row("high-cardinality paths: kernel time per request at saturation (bpf_stats, wrk)",
		fmt.Sprintf("%.2f µs (at %d req/s %.2f µs, %.1f runs)", items.satUS, o.rate, items.kernelUS, items.kernel.runsPerRequest()), fmt.Sprintf("≤ %.0f µs", targetKernelUS), check(items.satUS <= targetKernelUS))
	row("high-cardinality paths: distinct `http.route` values exported for web (metrics and spans)", routeSummary(items.routes), "1", check(len(items.routes) == 1))
	row("high-cardinality paths: exported records per 1k requests", fmt.Sprintf("%.2f", items.records), "", "")
	row("high-cardinality paths: throughput with / without (one session each)",
		fmt.Sprintf("%.3f (%.0f / %.0f req/s)", items.ratio, items.rpsWith, items.rpsWithout), "", "")
	row("`/healthy` (no errors): throughput with / without; collector CPU per 1k; kernel µs per request",
		fmt.Sprintf("%.3f (%.0f / %.0f req/s); %.2f; %.2f µs (at saturation %.2f µs)", healthy.ratio, healthy.rpsWith, healthy.rpsWithout, healthy.colSat, healthy.kernelUS, healthy.satUS), "", "")
	row("`/outage` (50% errors): throughput with / without; collector CPU per 1k; kernel µs per request; ring-buffer events and exported records per 1k requests",
		fmt.Sprintf("%.3f (%.0f / %.0f req/s); %.2f; %.2f µs (at saturation %.2f µs); %.1f; %.2f", outage.ratio, outage.rpsWith, outage.rpsWithout, outage.colSat, outage.kernelUS, outage.satUS, outage.events, outage.records), "", "")
	row("CPU per 1k requests at saturation, all processes (nginx + wrk + collector, /proc/<pid>/stat, wrk's rusage), without → with",
		fmt.Sprintf("%.1f → %.1f CPU-ms", root.allWithout, root.allWith), "", "")
	row(fmt.Sprintf("collector CPU per 1k requests at %d req/s (bpf_stats on)", o.rate), fmt.Sprintf("%.2f", root.colFixed), "", "")
	row("ring-buffer events per 1k requests (netintel.receiver.events_read)", fmt.Sprintf("%.0f", root.events), "", "")
	row("collector own memory after the load (RssAnon: heap, stacks, ring buffer), largest session", fmt.Sprintf("%.1f MiB", float64(anonMax)/(1<<20)), "", "")
	row("collector peak RSS (VmHWM, includes the executable's shared file pages), largest session", fmt.Sprintf("%.1f MiB", float64(peakMax)/(1<<20)), "", "")
	row("collector exited 0 on SIGTERM every session", fmt.Sprint(allClean), "yes", check(allClean))

	fmt.Fprintf(&b, "\n## Sessions\n\nSaturation columns: wrk with bpf_stats off. \"Rest of the host\": CPU seconds (/proc/stat, tick-sampled: ± a few tenths) that neither nginx, wrk nor the collector used over the saturation phase (%s plus the settle second) — other work on this 2-CPU machine, which lowers that session's throughput. "+
		"Kernel time: bpf_stats on, under wrk for %s (its req/s with bpf_stats on in the last column), then at %d req/s.\n\n", o.duration, o.duration/2, o.rate)
	fmt.Fprintf(&b, "| load | round | collector | wrk req/s | rest of the host, CPU-s | wrk non-2xx | CPU-ms / 1k req, all | collector CPU-ms / 1k req | kernel µs / req (%d req/s) | program runs / req | kernel µs / req (saturation) | collector CPU-ms / 1k req (%d req/s) | ring B / 1k healthy | records / 1k | RssAnon MiB | wrk req/s, bpf_stats on |\n", o.rate, o.rate)
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "| %s | %d | %s | %.0f | %.1f | %d | %.1f | ", s.Scenario.label, s.Round, s.side(), s.Wrk.RPS, s.CPUOther, s.Wrk.Non2xx, perThousand(s.CPUAll, s.Wrk.Requests))
		if !s.With {
			fmt.Fprintf(&b, "— | — | — | — | — | — | — | — | — |\n")
			continue
		}
		d := derive(s)
		fmt.Fprintf(&b, "%.2f | %.2f | %.1f | %.2f | %.2f | %.0f | %.2f | %.1f | %.0f |\n", d.collectorSat, d.kernelUS, s.Kernel.runsPerRequest(),
			d.kernelSatUS, d.collectorFixed, d.ringPer1k, d.recordsPer1k, float64(s.AnonRSS)/(1<<20), s.WrkStats.RPS)
	}

	fmt.Fprintf(&b, "\n## Throughput by round\n\nwrk req/s at saturation (bpf_stats off) of each round's sessions, in the order they ran, and the round's ratios. Rounds 1 to %d are the rounds above (%s sessions); the rest are throughput rounds (%s sessions).\n\n", o.rounds, o.duration, o.throughputDuration)
	roundTable(&b, with, without, hooked)
	fmt.Fprintf(&b, "\n## Kernel time per program\n\n")
	fmt.Fprintf(&b, "From bpf_stats: run count and run time of each loaded program named `ni_*` (names cut to 15 characters by the kernel). "+
		"Main columns: `/` at %d req/s, %d requests summed over the rounds; both sides of every request (nginx and the client) run the programs. "+
		"The last columns: µs per request of the same program under wrk at saturation (`/`), and at %d req/s on `/items/<id>`, `/healthy` and `/outage`.\n\n", o.rate, root.kernel.Requests, o.rate)
	programTable(&b, root.kernel, []kernelTime{root.kernelSat, items.kernel, healthy.kernel, outage.kernel}, []string{"`/` saturation", "`/items/<id>`", "`/healthy`", "`/outage`"})

	fmt.Fprintf(&b, "\n## Exactness\n\nWeb's `http.server.request.duration` count against the responses the clients got (wrk's completed requests and the fixed-rate load's responses, over all phases of the session); its 503 count against the non-2xx they got, and against the 5xx nginx itself logged (an access log of 5xx only). "+
		"wrk stops counting at its deadline while the requests then in flight (up to one per connection) are still answered by nginx, and counted by the collector: the clients' numbers can be a few short of nginx's.\n\n")
	fmt.Fprintf(&b, "| load | round | answered | web counted | deviation | non-2xx answered | 5xx nginx logged | web 503 counted | service graph failed into web |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, d := range all {
		fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %+.3f%% | %d | %d | %.0f | %.0f |\n", d.s.Scenario.label, d.s.Round, d.s.answered(), d.counted,
			100*d.countError(), d.s.failed(), d.s.Served5xx, d.counted5, d.failedSG)
	}
	if len(nonCumulative) > 0 {
		fmt.Fprintf(&b, "\nMetrics exported with delta temporality, undercounted here (the last point is taken as the total): %v.\n", nonCumulative)
	}

	fmt.Fprintf(&b, "\n## The receiver's counters\n\n`netintel.receiver.*` totals (`telemetry.metrics_in_pipeline: true`; each stream's last cumulative value) per 1k requests answered; the rounds of `/` summed. Counters that stayed zero are left out.\n\n")
	counterTable(&b, scenarios)

	other, total := 0, 0
	for _, d := range all {
		e := d.s.Exported
		total += e.LogRecords + e.Spans
		other += e.LogRecords + e.Spans - e.BenchLogRecords - e.BenchSpans
	}
	fmt.Fprintf(&b, "\nRecords of other traffic on the host during the collector's sessions: %d of %d exported records. ", other, total)
	fmt.Fprintf(&b, "CPU-ms per 1k requests equals mCPU per 1k req/s. CPU is read per process (/proc/<pid>/stat utime+stime; wrk's from its rusage); the collector's CPU at saturation includes the second after wrk ends, in which it finishes the events it was sent. "+
		"The eBPF programs run in the syscalls of nginx and the clients and are charged to them, not to the collector: their cost is the kernel time above, measured with bpf_stats, which itself costs time and is on only in the kernel-time phases. "+
		"Chart: `results.png` (throughput, collector CPU and kernel time per request). Raw outputs: `bench/out/` (not committed).\n")

	if err := os.WriteFile(filepath.Join(o.out, "results.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	log.Printf("wrote %s", filepath.Join(o.out, "results.md"))
	fmt.Print(b.String())
	return chart(o, work, samples)
}

// roundTable: per round, each session's req/s in the order they ran, and the round's ratios.
func roundTable(b *strings.Builder, with, without, hooked []sample) {
	byRound := map[int][]sample{}
	for _, s := range append(append(append([]sample(nil), without...), with...), hooked...) {
		byRound[s.Round] = append(byRound[s.Round], s)
	}
	var rounds []int
	for r := range byRound {
		rounds = append(rounds, r)
	}
	sort.Ints(rounds)
	fmt.Fprintf(b, "| round | sessions in order, req/s | with / without | hooks / without | with / hooks |\n|---|---|---|---|---|\n")
	ratio := func(n, d float64) string {
		if n == 0 || d == 0 {
			return "—"
		}
		return fmt.Sprintf("%.3f", n/d)
	}
	for _, r := range rounds {
		ss := byRound[r]
		sort.Slice(ss, func(i, j int) bool { return ss[i].Started.Before(ss[j].Started) })
		rps := map[string]float64{}
		var order []string
		for _, s := range ss {
			rps[s.side()] = s.Wrk.RPS
			order = append(order, fmt.Sprintf("%s %.0f", s.side(), s.Wrk.RPS))
		}
		fmt.Fprintf(b, "| %d | %s | %s | %s | %s |\n", r, strings.Join(order, ", "),
			ratio(rps["with"], rps["without"]), ratio(rps["hooks"], rps["without"]), ratio(rps["with"], rps["hooks"]))
	}
}

// programTable: per program, runs, ns per run and µs per request of main, then µs per request
// of each of others.
func programTable(b *strings.Builder, main kernelTime, others []kernelTime, labels []string) {
	fmt.Fprintf(b, "| program | runs / request | ns / run | µs / request | share |")
	for _, l := range labels {
		fmt.Fprintf(b, " µs / request, %s |", l)
	}
	fmt.Fprintf(b, "\n|---|---|---|---|---|%s\n", strings.Repeat("---|", len(labels)))
	listed := map[string]bool{}
	order := main.byCost()
	for _, k := range others {
		for _, p := range k.byCost() {
			if main.Programs[p.Name] == nil || main.Programs[p.Name].Runs == 0 {
				order = append(order, &progTime{Name: p.Name})
			}
		}
	}
	ns, runs, recursion := main.totalNS()
	for _, p := range order {
		if listed[p.Name] {
			continue
		}
		listed[p.Name] = true
		name := "`" + p.Name + "`"
		if p.Loaded > 1 {
			name += fmt.Sprintf(" (%d programs)", p.Loaded)
		}
		if p.Runs > 0 {
			fmt.Fprintf(b, "| %s | %.3f | %.0f | %.3f | %.1f%% |", name, float64(p.Runs)/float64(main.Requests),
				float64(p.NS)/float64(p.Runs), float64(p.NS)/1e3/float64(main.Requests), 100*float64(p.NS)/float64(ns))
		} else {
			fmt.Fprintf(b, "| %s | 0 | — | 0 | |", name)
		}
		for _, k := range others {
			us := 0.0
			if q := k.Programs[p.Name]; q != nil && k.Requests > 0 {
				us = float64(q.NS) / 1e3 / float64(k.Requests)
			}
			fmt.Fprintf(b, " %.3f |", us)
		}
		b.WriteString("\n")
	}
	nsPerRun := 0.0
	if runs > 0 {
		nsPerRun = float64(ns) / float64(runs)
	}
	fmt.Fprintf(b, "| **all** | %.2f | %.0f | **%.2f** | |", main.runsPerRequest(), nsPerRun, main.usPerRequest())
	for _, k := range others {
		fmt.Fprintf(b, " **%.2f** |", k.usPerRequest())
		_, _, r := k.totalNS()
		recursion += r
	}
	b.WriteString("\n")
	if recursion > 0 {
		fmt.Fprintf(b, "\n%d runs were skipped by the kernel (recursion misses: another program was running on the CPU).\n", recursion)
	}
}

// counterTable: the receiver's nonzero counters per 1k requests, per scenario.
func counterTable(b *strings.Builder, scenarios []summary) {
	nonzero := map[string]bool{}
	for _, m := range scenarios {
		for k, v := range m.counters {
			nonzero[k] = nonzero[k] || v != 0
		}
	}
	var keys []string
	for k, nz := range nonzero {
		if nz {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	fmt.Fprintf(b, "| counter |")
	for _, m := range scenarios {
		fmt.Fprintf(b, " per 1k requests, %s |", m.label)
	}
	fmt.Fprintf(b, "\n|---|%s\n", strings.Repeat("---|", len(scenarios)))
	for _, k := range keys {
		fmt.Fprintf(b, "| `%s` |", k)
		for _, m := range scenarios {
			fmt.Fprintf(b, " %.2f |", per1k(m.counters[k], m.answered))
		}
		b.WriteString("\n")
	}
}
