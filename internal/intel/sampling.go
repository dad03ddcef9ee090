package intel

import (
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// exemplars bounds the error spans forced per error group and flush window: an outage or a
// scanner must not become an export storm when the pipeline is most stressed. The counts
// stay exact in error_pattern and the metrics; errors past the budget are sampled like the
// healthy exchanges of their (hot) edge.
type exemplars struct {
	max, capacity int
	kept          map[groupKey]int
}

func newExemplars(max, capacity int) exemplars {
	return exemplars{max: max, capacity: capacity, kept: make(map[groupKey]int)}
}

// take reports whether one more error of group k may be kept as a span in this window.
func (x *exemplars) take(k groupKey) bool {
	n, ok := x.kept[k]
	if !ok && len(x.kept) >= x.capacity {
		return false
	}
	if n >= x.max {
		return false
	}
	x.kept[k] = n + 1
	return true
}

func (x *exemplars) reset() { clear(x.kept) }

// decide keeps a forced exchange (an error exemplar, the example of a finding) and samples the others
// with probability p by OTel consistent probability sampling (contrib pkg/sampling): keep when
// the trace id's randomness (its last 56 bits) is at least the threshold (1-p)·2^56. Both
// halves of one exchange share the trace id, so both decide alike, on this node and on the
// other.
func (e *Engine) decide(id [16]byte, forced bool, p float64) Decision {
	if forced || p >= 1 {
		return Decision{Export: true, Probability: 1}
	}
	if p <= 0 {
		return Decision{Export: false, Probability: 0}
	}
	th, err := sampling.ProbabilityToThreshold(max(p, sampling.MinSamplingProbability))
	if err != nil {
		return Decision{Export: true, Probability: 1}
	}
	return Decision{Export: th.ShouldSample(sampling.TraceIDToRandomness(pcommon.TraceID(id))), Probability: p}
}

// TraceState is the OTel tracestate entry for a kept span ("ot=th:..."), which lets span
// counts be corrected downstream; empty when the span is not exported.
func (d Decision) TraceState() string {
	if !d.Export {
		return ""
	}
	if d.Probability >= 1 {
		return "ot=th:0"
	}
	th, err := sampling.ProbabilityToThreshold(max(d.Probability, sampling.MinSamplingProbability))
	if err != nil {
		return "ot=th:0"
	}
	return "ot=th:" + th.TValue()
}

// edgeRate estimates an edge's requests per second over the last whole second.
type edgeRate struct {
	windowStart time.Time
	count       uint64
	perSecond   float64
}

func (r *edgeRate) observe(t time.Time, n uint64) {
	if r.windowStart.IsZero() {
		r.windowStart = t
	}
	r.count += n
	if el := t.Sub(r.windowStart); el >= time.Second {
		r.perSecond = float64(r.count) / el.Seconds()
		r.windowStart, r.count = t, 0
	}
}

// hotProbability is the sampling probability of an edge with a recent finding: enough to keep
// about budget healthy spans a second around the incident, never every request of a busy
// edge (a latency anomaly under load must not turn the sampler off). The probability is
// still recorded in tracestate, so span-derived counts stay correct.
func (ed *edge) hotProbability(t time.Time, budget float64) float64 {
	rate := ed.rate.perSecond
	if el := t.Sub(ed.rate.windowStart); el > 0 && rate == 0 {
		// The first second of the edge: extrapolate from what was seen so far.
		rate = float64(ed.rate.count) / max(el.Seconds(), 0.001)
	}
	if rate <= budget {
		return 1
	}
	return budget / rate
}
