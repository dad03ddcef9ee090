package intel

import (
	"math"
	"time"

	"github.com/netintel/netintelreceiver/internal/l7"
)

// The latency sketch is a DDSketch (Masson, Rim, Lee: "DDSketch: a fast and fully-mergeable
// quantile sketch with relative-error guarantees", VLDB 2019): a value v falls in bucket
// ⌈log_γ v⌉ with γ = (1+α)/(1−α), so every quantile it returns is within α of the true value,
// whatever the distribution; two sketches merge by adding their buckets. Weights are floats
// so that a baseline can decay.
const (
	sketchAlpha = 0.02
	// Latencies are clamped to [sketchMin, sketchMax]: below a microsecond is "instant", and
	// nothing waits longer than a quarter of an hour for a first response byte.
	sketchMin = time.Microsecond
	sketchMax = 15 * time.Minute
)

var (
	sketchGamma    = (1 + sketchAlpha) / (1 - sketchAlpha)
	sketchLogGamma = math.Log(sketchGamma)
	sketchMinIndex = sketchIndex(float64(sketchMin))
	sketchMaxIndex = sketchIndex(float64(sketchMax))
)

func sketchIndex(v float64) int { return int(math.Ceil(math.Log(v) / sketchLogGamma)) }

// sketchValue is the value a bucket stands for: within α of every value in the bucket.
func sketchValue(i int) float64 { return 2 * math.Pow(sketchGamma, float64(i)) / (sketchGamma + 1) }

// sketch holds weights for the buckets [offset, offset+len(counts)); memory grows with the
// range of latencies seen (about 60 buckets per factor of 10), never with the sample count.
type sketch struct {
	offset int
	counts []float64
	total  float64
}

func (s *sketch) reset() {
	s.counts = s.counts[:0]
	s.total = 0
}

// add adds weight w at value d.
func (s *sketch) add(d time.Duration, w float64) {
	if w <= 0 {
		return
	}
	v := float64(min(max(d, sketchMin), sketchMax))
	s.addIndex(sketchIndex(v), w)
}

func (s *sketch) addIndex(i int, w float64) {
	i = min(max(i, sketchMinIndex), sketchMaxIndex)
	switch {
	case len(s.counts) == 0:
		s.offset = i
		s.counts = append(s.counts, 0)
	case i < s.offset:
		grown := make([]float64, s.offset-i+len(s.counts))
		copy(grown[s.offset-i:], s.counts)
		s.counts, s.offset = grown, i
	case i >= s.offset+len(s.counts):
		s.counts = append(s.counts, make([]float64, i-s.offset-len(s.counts)+1)...)
	}
	s.counts[i-s.offset] += w
	s.total += w
}

// addHistogram adds a bucketed histogram (the kernel's per-route counts): each bucket's count
// at a representative value inside the bucket — the geometric middle of its bounds, half the
// first bound for the first bucket, and for the bucket above every bound the mean its share
// of Sum implies (at least the last bound). A quantile read back is then within the bucket
// that holds the true quantile (and α).
func (s *sketch) addHistogram(h *l7.Histogram) {
	if len(h.Counts) == 0 || len(h.Counts) != len(h.Bounds)+1 {
		return
	}
	var known float64 // the sum the bounded buckets account for
	for i, c := range h.Counts[:len(h.Bounds)] {
		if c == 0 {
			continue
		}
		rep := bucketValue(h.Bounds, i)
		s.add(time.Duration(rep), float64(c))
		known += rep * float64(c)
	}
	if over := h.Counts[len(h.Bounds)]; over > 0 {
		var last float64 // no bounds at all: the mean is all there is
		if len(h.Bounds) > 0 {
			last = float64(h.Bounds[len(h.Bounds)-1])
		}
		rep := 2 * last
		if mean := (float64(h.Sum) - known) / float64(over); mean > last {
			rep = mean
		}
		if rep > 0 {
			s.add(time.Duration(rep), float64(over))
		}
	}
}

// bucketValue is the representative value of bounded bucket i, (Bounds[i-1], Bounds[i]].
func bucketValue(bounds []time.Duration, i int) float64 {
	hi := float64(bounds[i])
	if i == 0 || bounds[i-1] <= 0 {
		return hi / 2
	}
	return math.Sqrt(float64(bounds[i-1]) * hi)
}

// merge adds every weight of o.
func (s *sketch) merge(o *sketch) {
	for j, w := range o.counts {
		if w > 0 {
			s.addIndex(o.offset+j, w)
		}
	}
}

// scale multiplies every weight by f (decay), dropping buckets that fell below a trace.
func (s *sketch) scale(f float64) {
	s.total = 0
	for j := range s.counts {
		s.counts[j] *= f
		if s.counts[j] < 1e-3 {
			s.counts[j] = 0
		}
		s.total += s.counts[j]
	}
	// Trim empty ends so the range tracks what the route does now.
	lo, hi := 0, len(s.counts)
	for lo < hi && s.counts[lo] == 0 {
		lo++
	}
	for hi > lo && s.counts[hi-1] == 0 {
		hi--
	}
	if lo == hi {
		s.reset()
		return
	}
	if lo > 0 || hi < len(s.counts) {
		s.counts = append(s.counts[:0], s.counts[lo:hi]...)
		s.offset += lo
	}
}

// quantile returns the q-quantile (0 ≤ q ≤ 1), 0 when empty.
func (s *sketch) quantile(q float64) time.Duration {
	if s.total <= 0 {
		return 0
	}
	rank := q * s.total
	var cum float64
	for j, w := range s.counts {
		cum += w
		if cum >= rank && w > 0 {
			return time.Duration(sketchValue(s.offset + j))
		}
	}
	for j := len(s.counts) - 1; j >= 0; j-- {
		if s.counts[j] > 0 {
			return time.Duration(sketchValue(s.offset + j))
		}
	}
	return 0
}
