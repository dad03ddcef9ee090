package intel

import (
	"math"
	"slices"
	"time"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// routeKey is what one latency baseline describes.
type routeKey struct {
	dest, method, route string
}

const (
	// baselineStep is how far (in log space, ≈5%) each sample moves a baseline towards itself.
	// The estimate is a streaming median: one outlier moves it by one step whatever its size,
	// while a level that persists is reached in a few dozen samples.
	baselineStep = 0.05
	// maxWarmupSamples bounds the samples kept to seed a baseline with their exact median.
	maxWarmupSamples = 64
)

// baseline tracks the median latency of one route, in log nanoseconds.
type baseline struct {
	samples     uint64
	logMedian   float64
	seeded      bool      // logMedian holds the median of the first samples
	warmup      []float64 // the first samples, until seeded
	lastAnomaly time.Time
}

func (b *baseline) ready(warmup int) bool { return b.seeded && b.samples >= uint64(warmup) }

func (b *baseline) value() time.Duration { return time.Duration(math.Exp(b.logMedian)) }

func (b *baseline) add(d time.Duration, warmup int) {
	v := math.Log(float64(max(d, time.Nanosecond)))
	b.samples++
	if !b.seeded {
		b.warmup = append(b.warmup, v)
		if b.samples >= uint64(warmup) || len(b.warmup) == maxWarmupSamples {
			slices.Sort(b.warmup)
			b.logMedian = b.warmup[len(b.warmup)/2]
			b.warmup, b.seeded = nil, true
		}
		return
	}
	switch {
	case v > b.logMedian:
		b.logMedian = min(b.logMedian+baselineStep, v)
	case v < b.logMedian:
		b.logMedian = max(b.logMedian-baselineStep, v)
	}
}

// observeLatency checks a latency sample against its route's baseline, then learns from it.
// It reports whether a latency_anomaly was emitted.
func (e *Engine) observeLatency(x *l7.Exchange, id [16]byte, o *outcome, key EdgeKey, server identity.Service, d time.Duration, t time.Time) bool {
	rk := routeKey{dest: key.Dest, method: o.method, route: o.route}
	b, ok := e.baselines.Get(rk)
	if !ok {
		b = &baseline{}
		e.baselines.Put(rk, b)
	}
	var base time.Duration
	var factor float64
	anomalous := false
	if b.ready(e.opts.BaselineWarmup) {
		base = b.value()
		if base > 0 {
			factor = float64(d) / float64(base)
		}
		anomalous = factor > e.opts.LatencyDeviationFactor && d > e.opts.LatencyFloor
	}
	slow := d > e.opts.SlowRequestThreshold
	samples := b.samples
	b.add(d, e.opts.BaselineWarmup)
	if !anomalous && !slow {
		return false
	}
	if !b.lastAnomaly.IsZero() && t.Sub(b.lastAnomaly) < e.opts.LatencyAnomalyInterval {
		e.c.AnomaliesSuppressed++
		return false
	}
	b.lastAnomaly = t
	sev := SeverityMedium
	if slow || factor >= 10 {
		sev = SeverityHigh
	}
	e.emit(Finding{
		Kind: KindLatencyAnomaly, Time: t, Severity: sev, Subject: server, Example: exampleOf(x, id, server),
		LatencyAnomaly: &LatencyAnomaly{
			Edge: key, Method: o.method, Route: o.route, Latency: d,
			Baseline: base, DeviationFactor: factor, Samples: samples,
		},
	})
	return true
}
