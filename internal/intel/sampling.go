package intel

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
)

// randomnessBits is the width of the trace id's randomness (its last 7 bytes) in OTel
// probability sampling.
const randomnessBits = 56

const maxThreshold = uint64(1) << randomnessBits

// decide keeps a forced exchange (an error, a finding, a hot edge) and samples the others by
// OTel consistent probability sampling: keep when the trace id's randomness is at least the
// threshold (1-p)·2^56. Both halves of one exchange share the trace id, so both decide alike,
// on this node and on the other.
func (e *Engine) decide(id [16]byte, forced bool) Decision {
	p := e.opts.SpanSampling
	if forced || p >= 1 {
		return Decision{Export: true, Probability: 1}
	}
	if p <= 0 {
		return Decision{Export: false, Probability: 0}
	}
	r := binary.BigEndian.Uint64(id[8:]) & (maxThreshold - 1)
	return Decision{Export: r >= threshold(p), Probability: p}
}

func threshold(p float64) uint64 {
	// Round the kept fraction, not the rejected one: 1-p loses p's low bits in floating point.
	return maxThreshold - uint64(math.Round(p*float64(maxThreshold)))
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
	th := strconv.FormatUint(threshold(d.Probability), 16)
	th = strings.Repeat("0", 14-len(th)) + th
	th = strings.TrimRight(th, "0")
	if th == "" {
		th = "0"
	}
	return "ot=th:" + th
}
