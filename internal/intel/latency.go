package intel

import (
	"slices"
	"strings"
	"time"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/lru"
)

// The latency_anomaly detector compares distributions, not requests: per route, a window
// sketch against a decayed baseline sketch (both DDSketches, fed by single exchanges and by
// the kernel's bucketed histograms alike). A quantile is judged only on enough samples to
// know it: with tailSamples beyond it in the window and in the baseline, so a route whose
// tail is always long is quiet (its window tail is its baseline tail), and a single slow
// request is no shift. A route whose quantile moved beyond factor × the baseline's for
// sustainWindows judged windows in a row is reported once, with both sets of quantiles; it
// is reported again only after a judged window back within its baseline.
const (
	tailSamples    = 5
	minJudged      = 20 // samples a window needs before its median is judged
	sustainWindows = 2
	// baselineDecay weighs the baseline down at each judged window (a memory of about 20
	// windows): a level that persists becomes the baseline, and the anomaly ends by itself.
	baselineDecay = 0.95
	// maxWindowAge: a quiet route's window grows over flushes until it has minJudged samples,
	// at most this long; then it only feeds the baseline.
	maxWindowAge = time.Minute
)

// judgedQuantiles are compared, in this order.
var judgedQuantiles = [...]struct {
	name string
	q    float64
}{{"p50", 0.50}, {"p95", 0.95}, {"p99", 0.99}}

// minSamples is how many samples tell quantile q: tailSamples beyond it.
func minSamples(q float64) float64 { return max(minJudged, tailSamples/(1-q)) }

// routeKey is what one latency baseline describes.
type routeKey struct {
	dest, method, route string
}

type latencyDetector struct {
	e      *Engine
	routes *lru.Cache[routeKey, *routeLatency]
}

// routeLatency is the state of one route.
type routeLatency struct {
	edge           EdgeKey // the first edge seen calling the route
	server         identity.Service
	base, win      sketch
	pending        sketch // shifted windows not yet folded into the baseline
	pendingWindows int
	seen           uint64 // samples learned, all time
	winSamples     uint64
	winStart       time.Time
	shiftSamples   uint64    // samples of the consecutive shifted windows
	before         Quantiles // the baseline's quantiles when the shift began
	shifted        int       // consecutive judged windows beyond the baseline
	anomalous      bool      // reported; quiet until a judged window is back within the baseline
	lastSlow       time.Time
	slowest        time.Duration // the window's slowest single exchange, and its span
	example        lazyRef
	hasExample     bool
}

func newLatencyDetector(e *Engine) *latencyDetector {
	return &latencyDetector{e: e, routes: lru.New[routeKey, *routeLatency](e.opts.MaxRoutes)}
}

func (l *latencyDetector) route(k routeKey, key EdgeKey, server identity.Service) *routeLatency {
	r, ok := l.routes.Get(k)
	if !ok {
		r = &routeLatency{edge: key, server: server}
		l.routes.Put(k, r)
	}
	return r
}

// ready: the baseline may judge a median.
func (l *latencyDetector) ready(r *routeLatency) bool {
	return r.seen >= uint64(l.e.opts.BaselineWarmup) && r.base.total >= minSamples(0.5)
}

// exchange adds one sample to its route's window, and reports a request slower than
// slow_request_threshold at once (rate limited per route). It reports whether a finding was
// emitted.
func (l *latencyDetector) exchange(ob *observation) bool {
	d := ob.x.Duration()
	r := l.route(routeKey{dest: ob.key.Dest, method: ob.out.method, route: ob.out.route}, ob.key, ob.server)
	if r.winSamples == 0 {
		r.winStart = ob.t
	}
	r.win.add(d, 1)
	r.winSamples++
	if d > r.slowest || !r.hasExample {
		r.slowest, r.example, r.hasExample = d, ob.lazyRef(), true
	}
	if d <= l.e.opts.SlowRequestThreshold {
		return false
	}
	if !r.lastSlow.IsZero() && ob.t.Sub(r.lastSlow) < l.e.opts.LatencyAnomalyInterval {
		l.e.c.AnomaliesSuppressed++
		return false
	}
	r.lastSlow = ob.t
	a := &LatencyAnomaly{Edge: ob.key, Method: ob.out.method, Route: ob.out.route, Latency: d, Samples: r.seen}
	if l.ready(r) {
		a.Baseline = r.base.quantile(0.5)
		a.Before = l.quantiles(&r.base)
		if a.Baseline > 0 {
			a.DeviationFactor = float64(d) / float64(a.Baseline)
		}
	}
	l.e.emit(Finding{Kind: KindLatencyAnomaly, Time: ob.t, Severity: SeverityHigh, Subject: ob.server, Example: ob.example(), LatencyAnomaly: a})
	return true
}

// aggregate adds a kernel histogram to its route's window.
func (l *latencyDetector) aggregate(b *batch) {
	r := l.route(routeKey{dest: b.key.Dest, method: b.out.method, route: b.out.route}, b.key, b.server)
	if r.winSamples == 0 {
		r.winStart = b.a.Start
	}
	r.win.addHistogram(&b.a.Latency)
	r.winSamples += b.a.Latency.Count
}

func (l *latencyDetector) quantiles(s *sketch) Quantiles {
	var q Quantiles
	for i, jq := range judgedQuantiles {
		if s.total < minSamples(jq.q) {
			continue
		}
		v := s.quantile(jq.q)
		switch i {
		case 0:
			q.P50 = v
		case 1:
			q.P95 = v
		case 2:
			q.P99 = v
		}
	}
	return q
}

// judge compares a window with its baseline: the quantile that moved most beyond the factor
// (and beyond the floor), if any, and whether the baseline could judge at all.
func (l *latencyDetector) judge(r *routeLatency) (name string, win, base time.Duration, factor float64, judged bool) {
	if !l.ready(r) {
		return "", 0, 0, 0, false
	}
	for _, jq := range judgedQuantiles {
		need := minSamples(jq.q)
		if r.win.total < need || r.base.total < need {
			break
		}
		judged = true
		w, b := r.win.quantile(jq.q), r.base.quantile(jq.q)
		if b <= 0 {
			continue
		}
		f := float64(w) / float64(b)
		if f > l.e.opts.LatencyDeviationFactor && w-b > l.e.opts.LatencyFloor && f > factor {
			name, win, base, factor = jq.name, w, b, f
		}
	}
	return name, win, base, factor, judged
}

// flush judges every route whose window is complete, then folds the window into the baseline.
func (l *latencyDetector) flush(w window) []Finding {
	var out []Finding
	for k, r := range l.routes.All() {
		if r.winSamples == 0 {
			continue
		}
		if r.win.total < minJudged && w.clock.Sub(r.winStart) < maxWindowAge && w.end.Sub(r.winStart) < maxWindowAge {
			continue // too few samples yet: the window goes on
		}
		name, win, base, factor, judged := l.judge(r)
		switch {
		case judged && name != "":
			if r.shifted == 0 {
				r.before = l.quantiles(&r.base)
			}
			r.shifted++
			r.shiftSamples += r.winSamples
			if r.shifted >= sustainWindows && !r.anomalous {
				r.anomalous = true
				out = append(out, l.finding(k, r, w, name, win, base, factor))
			}
			if !r.anomalous {
				// A window that moved is held out of the baseline until the shift is confirmed
				// or over, so that it cannot hide the next one's.
				r.pending.merge(&r.win)
				r.pendingWindows++
				l.nextWindow(r)
				continue
			}
		case judged:
			r.shifted, r.shiftSamples, r.anomalous = 0, 0, false
		}
		for ; r.pendingWindows > 0; r.pendingWindows-- {
			r.base.scale(baselineDecay)
		}
		r.base.merge(&r.pending)
		r.pending.reset()
		if judged {
			r.base.scale(baselineDecay)
		}
		r.base.merge(&r.win)
		l.nextWindow(r)
	}
	slices.SortFunc(out, func(a, b Finding) int {
		la, lb := a.LatencyAnomaly, b.LatencyAnomaly
		if c := strings.Compare(la.Edge.Dest, lb.Edge.Dest); c != 0 {
			return c
		}
		if c := strings.Compare(la.Route, lb.Route); c != 0 {
			return c
		}
		return strings.Compare(la.Method, lb.Method)
	})
	return out
}

// nextWindow starts a route's next window; what it saw is counted as learned.
func (l *latencyDetector) nextWindow(r *routeLatency) {
	r.seen += r.winSamples
	r.win.reset()
	r.winSamples, r.slowest, r.hasExample = 0, 0, false
}

func (l *latencyDetector) finding(k routeKey, r *routeLatency, w window, name string, win, base time.Duration, factor float64) Finding {
	sev := SeverityMedium
	if factor >= 10 || win > l.e.opts.SlowRequestThreshold {
		sev = SeverityHigh
	}
	var example *ExchangeRef
	if r.hasExample {
		example = r.example.ref()
	}
	return Finding{
		Kind: KindLatencyAnomaly, Time: w.end, Severity: sev, Subject: r.server, Example: example,
		LatencyAnomaly: &LatencyAnomaly{
			Edge: r.edge, Method: k.method, Route: k.route, Quantile: name,
			Latency: win, Baseline: base, DeviationFactor: factor,
			Samples: r.seen, WindowSamples: r.shiftSamples,
			Before: r.before, After: l.quantiles(&r.win),
		},
	}
}

// RouteThreshold is the latency above which a single request of a route must still be sent
// up one by one (rather than only counted in the kernel's histogram): the learned baseline's
// best-known tail quantile (p99, else p95, else the median) × latency_deviation_factor,
// capped by slow_request_threshold.
type RouteThreshold struct {
	Dest, Method, Route string
	Threshold           time.Duration
}

// LatencyThresholds lists the threshold of every route whose baseline is learned, sorted;
// routes not listed use slow_request_threshold.
func (e *Engine) LatencyThresholds() []RouteThreshold {
	l := e.latency
	var out []RouteThreshold
	for k, r := range l.routes.All() {
		if !l.ready(r) {
			continue
		}
		var q float64
		for _, jq := range judgedQuantiles {
			if r.base.total >= minSamples(jq.q) {
				q = jq.q
			}
		}
		th := time.Duration(float64(r.base.quantile(q)) * e.opts.LatencyDeviationFactor)
		th = min(th, e.opts.SlowRequestThreshold)
		out = append(out, RouteThreshold{Dest: k.dest, Method: k.method, Route: k.route, Threshold: th})
	}
	slices.SortFunc(out, func(a, b RouteThreshold) int {
		if c := strings.Compare(a.Dest, b.Dest); c != 0 {
			return c
		}
		if c := strings.Compare(a.Route, b.Route); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return out
}
