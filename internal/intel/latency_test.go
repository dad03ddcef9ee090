package intel

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/l7"
)

// lognormal draws a latency with the given median and log-space sigma.
func lognormal(rng *rand.Rand, median time.Duration, sigma float64) time.Duration {
	return time.Duration(float64(median) * math.Exp(sigma*rng.NormFloat64()))
}

// longTail is the healthy route: median 5 ms, p99 ≈ 8× the median, always.
var longTailSigma = math.Log(8) / 2.326

func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[int(math.Ceil(q*float64(len(sorted))))-1]
}

func TestSketchQuantilesWithinAlpha(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s sketch
	var xs []time.Duration
	for i := 0; i < 100000; i++ {
		d := lognormal(rng, 5*time.Millisecond, longTailSigma)
		xs = append(xs, d)
		s.add(d, 1)
	}
	slices.Sort(xs)
	for _, q := range []float64{0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999} {
		want, got := exactQuantile(xs, q), s.quantile(q)
		if rel := math.Abs(float64(got-want)) / float64(want); rel > sketchAlpha+0.005 {
			t.Errorf("q%.3f: sketch %v, exact %v (%.1f%% off, α=%.0f%%)", q, got, want, 100*rel, 100*sketchAlpha)
		}
	}
	// Merging two halves is the same sketch as adding everything to one.
	var a, b sketch
	for i, d := range xs {
		if i%2 == 0 {
			a.add(d, 1)
		} else {
			b.add(d, 1)
		}
	}
	a.merge(&b)
	for _, q := range []float64{0.5, 0.99} {
		if a.quantile(q) != s.quantile(q) || a.total != s.total {
			t.Errorf("merged q%.2f = %v, want %v", q, a.quantile(q), s.quantile(q))
		}
	}
	if n := len(s.counts); n > 400 {
		t.Errorf("%d buckets for a lognormal route", n)
	}
}

// histogramOf buckets samples into the kernel's shape (l7.Histogram).
func histogramOf(bounds []time.Duration, xs []time.Duration) l7.Histogram {
	h := l7.Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds)+1)}
	for _, d := range xs {
		i, _ := slices.BinarySearch(bounds, d)
		h.Counts[i]++
		h.Count++
		h.Sum += d
	}
	return h
}

// The kernel's per-route histograms feed the sketch as each bucket's count at a value inside
// the bucket: a quantile read back lies in the bucket that holds the true quantile (within α).
func TestSketchFromHistogramStaysWithinTheBucket(t *testing.T) {
	var bounds []time.Duration // 1 ms · 2^k, as a kernel histogram would have
	for b := time.Millisecond; b <= 4*time.Second; b *= 2 {
		bounds = append(bounds, b)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name   string
		median time.Duration
		sigma  float64
	}{{"long tail", 5 * time.Millisecond, longTailSigma}, {"narrow", 40 * time.Millisecond, 0.1}, {"sub-ms", 300 * time.Microsecond, 0.5}, {"slow", 3 * time.Second, 0.6}} {
		var xs []time.Duration
		for i := 0; i < 20000; i++ {
			xs = append(xs, lognormal(rng, tc.median, tc.sigma))
		}
		h := histogramOf(bounds, xs)
		var s sketch
		s.addHistogram(&h)
		slices.Sort(xs)
		if s.total != float64(len(xs)) {
			t.Fatalf("%s: sketch holds %v samples, want %d", tc.name, s.total, len(xs))
		}
		for _, q := range []float64{0.5, 0.95, 0.99} {
			want := exactQuantile(xs, q)
			i, _ := slices.BinarySearch(bounds, want)
			lo, hi := time.Duration(0), time.Duration(math.MaxInt64)
			if i > 0 {
				lo = bounds[i-1]
			}
			if i < len(bounds) {
				hi = bounds[i]
			}
			got := s.quantile(q)
			if float64(got) < float64(lo)*(1-sketchAlpha) || float64(got) > float64(hi)*(1+sketchAlpha) {
				t.Errorf("%s q%.2f: sketch %v outside the true quantile's bucket (%v, %v] (exact %v)", tc.name, q, got, lo, hi, want)
			}
		}
	}
}

// routeFeed drives one route with requests of a latency distribution at a rate, flushing the
// engine every 10 s, and returns the latency anomalies.
type routeFeed struct {
	e   *Engine
	s   stream
	now time.Duration // since t0
	rng *rand.Rand
}

func newRouteFeed(e *Engine, seed uint64) *routeFeed {
	f := &routeFeed{e: e, rng: rand.New(rand.NewPCG(seed, seed+1))}
	e.Findings(t0)
	return f
}

// run sends perWindow requests in each of windows 10-second windows.
func (f *routeFeed) run(windows, perWindow int, lat func(*rand.Rand) time.Duration) []Finding {
	var out []Finding
	for w := 0; w < windows; w++ {
		for i := 0; i < perWindow; i++ {
			at := f.now + time.Duration(i)*10*time.Second/time.Duration(perWindow)
			f.s.feed(f.e, call{from: "web", to: "search", path: "/search", status: 200, at: at, latency: max(lat(f.rng), time.Microsecond)})
		}
		f.now += 10 * time.Second
		out = append(out, kinds(f.e.Findings(t0.Add(f.now)), KindLatencyAnomaly)...)
	}
	return out
}

// Healthy twin: a route whose tail is always long (median 5 ms, p99 8× the median) at 200
// req/s for an hour, and the same at 2 req/s, never raise a latency anomaly.
func TestLatencyLongTailIsQuiet(t *testing.T) {
	for _, rate := range []int{2000, 20} {
		f := newRouteFeed(testEngine(nil), uint64(rate))
		got := f.run(360, rate, func(r *rand.Rand) time.Duration { return lognormal(r, 5*time.Millisecond, longTailSigma) })
		if len(got) != 0 {
			t.Fatalf("%d requests per window: %d anomalies on a healthy long-tailed route: %+v", rate, len(got), got[0].LatencyAnomaly)
		}
	}
	// Nor does a single slow request under slow_request_threshold: 40× the median once.
	f := newRouteFeed(testEngine(nil), 9)
	f.run(20, 100, func(r *rand.Rand) time.Duration { return lognormal(r, 5*time.Millisecond, 0.3) })
	f.s.feed(f.e, call{from: "web", to: "search", path: "/search", status: 200, at: f.now, latency: 200 * time.Millisecond})
	if got := f.run(10, 100, func(r *rand.Rand) time.Duration { return lognormal(r, 5*time.Millisecond, 0.3) }); len(got) != 0 {
		t.Fatalf("one outlier raised %+v", got[0].LatencyAnomaly)
	}
}

// A route that moved is reported once, with its before and after quantiles; the shift stops
// being news when it persists (the baseline learns it), and a later shift is reported again.
func TestLatencyShiftReportedOnce(t *testing.T) {
	e := testEngine(nil)
	f := newRouteFeed(e, 7)
	base := func(r *rand.Rand) time.Duration { return lognormal(r, 10*time.Millisecond, 0.4) }
	slow := func(r *rand.Rand) time.Duration { return lognormal(r, 100*time.Millisecond, 0.4) }
	if got := f.run(30, 200, base); len(got) != 0 {
		t.Fatalf("anomaly while learning: %+v", got[0].LatencyAnomaly)
	}
	got := f.run(60, 200, slow) // ten minutes at the new level
	requireLen(t, "shift", got, 1)
	a := got[0].LatencyAnomaly
	if a.Quantile == "" || a.DeviationFactor < 7 || a.DeviationFactor > 14 || a.Route != "/search" || a.Edge.Dest != "search" ||
		a.WindowSamples != 400 || a.Samples < 6000 || !within(a.Before.P50, 10*time.Millisecond, 0.1) ||
		!within(a.After.P50, 100*time.Millisecond, 0.1) || a.Before.P95 == 0 || a.After.P95 == 0 ||
		a.Before.P95 > 20*time.Millisecond || got[0].Severity < SeverityMedium || got[0].Subject.Name != "search" || got[0].Example == nil {
		t.Fatalf("anomaly = %+v", a)
	}
	// Back to normal, then the same shift again: a new episode.
	f.run(60, 200, base)
	requireLen(t, "second shift", f.run(10, 200, slow), 1)
}

func within(got, want time.Duration, frac float64) bool {
	return math.Abs(float64(got-want)) <= frac*float64(want)
}

// One slow window is no shift: it must last two judged windows.
func TestLatencyShiftMustBeSustained(t *testing.T) {
	f := newRouteFeed(testEngine(nil), 11)
	base := func(r *rand.Rand) time.Duration { return lognormal(r, 10*time.Millisecond, 0.3) }
	f.run(20, 200, base)
	got := f.run(1, 200, func(r *rand.Rand) time.Duration { return lognormal(r, 80*time.Millisecond, 0.3) })
	got = append(got, f.run(10, 200, base)...)
	requireLen(t, "one slow window", got, 0)
}

// aggregateAt is a kernel batch of healthy exchanges of one route.
func aggregateAt(route string, start time.Time, h l7.Histogram) *l7.Aggregate {
	return &l7.Aggregate{
		Protocol: l7.ProtocolHTTP1, Side: l7.SideServer,
		Client: l7.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:0")}, Server: l7.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.2:8080")},
		Method: "GET", Route: route, Version: "1.1", StatusCode: 200,
		Start: start, End: start.Add(time.Second), Count: h.Count, Latency: h,
	}
}

// The same shift seen only through the kernel's histograms: detected, once.
func TestLatencyShiftFromAggregates(t *testing.T) {
	var bounds []time.Duration
	for b := 500 * time.Microsecond; b <= 2*time.Second; b = b * 3 / 2 {
		bounds = append(bounds, b)
	}
	e := testEngine(nil)
	e.Findings(t0)
	rng := rand.New(rand.NewPCG(5, 6))
	var found []Finding
	for w := 0; w < 40; w++ {
		median := 10 * time.Millisecond
		if w >= 30 {
			median = 60 * time.Millisecond
		}
		var xs []time.Duration
		for i := 0; i < 300; i++ {
			xs = append(xs, lognormal(rng, median, 0.3))
		}
		at := t0.Add(time.Duration(w) * 10 * time.Second)
		e.Aggregate(aggregateAt("/items/{id}", at, histogramOf(bounds, xs)), svc("web"), svc("items"))
		found = append(found, kinds(e.Findings(at.Add(10*time.Second)), KindLatencyAnomaly)...)
	}
	requireLen(t, "shift in histograms", found, 1)
	if a := found[0].LatencyAnomaly; a.Route != "/items/{id}" || a.DeviationFactor < 4 || a.DeviationFactor > 8 {
		t.Fatalf("anomaly = %+v", a)
	}
	if st := e.Edges(); len(st) != 1 || st[0].Requests != 40*300 || st[0].Latency.Count != 40*300 {
		t.Fatalf("edges = %+v", st)
	}
}

func TestSlowRequestThreshold(t *testing.T) {
	e := testEngine(nil)
	var s stream
	// No baseline yet: only the absolute threshold applies.
	s.feed(e, call{from: "web", to: "api", path: "/export", status: 200, latency: 2 * time.Second})
	la := kinds(e.Findings(t0.Add(time.Minute)), KindLatencyAnomaly)
	requireLen(t, "slow request", la, 1)
	if a := la[0].LatencyAnomaly; a.Baseline != 0 || a.Latency != 2*time.Second || a.Quantile != "" {
		t.Fatalf("anomaly = %+v", a)
	}
	// Rate limited per route: the next slow request within the interval is suppressed.
	s.feed(e, call{from: "web", to: "api", path: "/export", status: 200, at: time.Second, latency: 2 * time.Second})
	requireLen(t, "rate limited", kinds(e.Findings(t0.Add(2*time.Minute)), KindLatencyAnomaly), 0)
	// Negative twin: under the threshold.
	s.feed(e, call{from: "web", to: "api", path: "/other", status: 200, latency: 900 * time.Millisecond})
	requireLen(t, "under threshold", kinds(e.Findings(t0.Add(3*time.Minute)), KindLatencyAnomaly), 0)
}

// Thresholds flow down: per learned route, the baseline's tail × the factor, capped by
// slow_request_threshold; routes still learning are not listed.
func TestLatencyThresholds(t *testing.T) {
	e := testEngine(nil)
	f := newRouteFeed(e, 13)
	f.run(10, 100, func(r *rand.Rand) time.Duration { return lognormal(r, 10*time.Millisecond, 0.2) })
	// A slow route whose tail × 3 is above slow_request_threshold, and a route seen once.
	var s stream
	for i := 0; i < 200; i++ {
		s.feed(e, call{from: "web", to: "reports", path: "/daily", status: 200, at: f.now + time.Duration(i)*time.Millisecond, latency: 800 * time.Millisecond})
	}
	s.feed(e, call{from: "web", to: "reports", path: "/new", status: 200, at: f.now, latency: time.Millisecond})
	e.Findings(t0.Add(f.now + 10*time.Second))

	th := e.LatencyThresholds()
	if len(th) != 2 {
		t.Fatalf("thresholds = %+v", th)
	}
	if th[0].Dest != "reports" || th[0].Route != "/daily" || th[0].Method != "GET" || th[0].Threshold != e.opts.SlowRequestThreshold {
		t.Fatalf("capped threshold = %+v", th[0])
	}
	// 1000 samples, σ 0.2: p99 ≈ 10 ms · e^(2.33·0.2) ≈ 16 ms, × 3 ≈ 48 ms.
	if th[1].Dest != "search" || th[1].Route != "/search" || !within(th[1].Threshold, 48*time.Millisecond, 0.15) {
		t.Fatalf("learned threshold = %+v", th[1])
	}
	// A request above it is still judged one by one; a request below it is what the kernel
	// may only count. Neither is an anomaly alone.
	requireLen(t, "thresholds raise nothing", kinds(e.Findings(t0.Add(time.Hour)), KindLatencyAnomaly), 0)
}

// A shift right after a short warm-up: the baseline holds 60 samples, the slow windows hold
// 40, 40 and 26. The first slow window must not become the baseline the second is judged
// against.
func TestLatencyShiftOnAYoungBaseline(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	var s stream
	at := time.Duration(0)
	for i := 0; i < 60; i++ {
		s.feed(e, call{from: "hey", to: "catalog", path: "/slow", status: 200, at: at, latency: jitter(10*time.Millisecond, i)})
		at += 10 * time.Millisecond
	}
	var got []Finding
	for w, n := range []int{34, 40, 26} {
		for i := 0; i < n; i++ {
			s.feed(e, call{from: "hey", to: "catalog", path: "/slow", status: 200, at: at, latency: jitter(100*time.Millisecond, i)})
			at += 50 * time.Millisecond
		}
		got = append(got, kinds(e.Findings(t0.Add(time.Duration(w+1)*10*time.Second)), KindLatencyAnomaly)...)
	}
	requireLen(t, "shift after a short warm-up", got, 1)
	if a := got[0].LatencyAnomaly; a.DeviationFactor < 7 || a.DeviationFactor > 13 || a.Quantile != "p50" {
		t.Fatalf("anomaly = %+v", a)
	}
}

// jitter gives a deterministic spread of ±20% around d.
func jitter(d time.Duration, i int) time.Duration {
	return d + d*time.Duration(i*37%41-20)/100
}
