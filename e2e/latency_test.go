//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const catalogAddr = "127.0.0.30:8083"

func TestLatency(t *testing.T) {
	s := newScenario(t)
	const warmup = 20
	ls := &latencyServer{Addr: catalogAddr, Base: 10 * time.Millisecond, Slow: 90 * time.Millisecond, SlowPath: "/slow"}
	s.startLatencyServer(ls)
	s.startCollector(receiverConfig{
		Services:     map[string]string{catalogAddr: "catalog"},
		Intelligence: map[string]any{"baseline_warmup": warmup, "latency_deviation_factor": 3.0},
	})

	// One worker, so every request stands alone; n requests, bounded in time.
	hey := func(n int, path string) {
		s.mustRun(60*time.Second, "hey", "-n", fmt.Sprint(n), "-c", "1", "-t", "5", "http://"+catalogAddr+path)
	}

	// Warm-up and learning: both routes answer in Base. /slow learns over several flush
	// windows (5 s at 40 req/s): a baseline learned from one window that already holds the
	// shift could not tell the shift from the normal.
	s.mustRun(60*time.Second, "hey", "-z", "5s", "-c", "1", "-q", "40", "-t", "5", "http://"+catalogAddr+"/slow")
	hey(3*warmup, "/fast")
	switched := time.Now()
	if err := ls.turnSlow(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	// A shift is judged on distributions: windows of at least 20 requests, two in a row. 160
	// slow requests from two workers take about 8 s: two whole 2 s windows of slow requests
	// even when the first holds the last of the warm-up's and the last is too short to judge.
	s.mustRun(60*time.Second, "hey", "-n", "160", "-c", "2", "-t", "5", "http://"+catalogAddr+"/slow")
	hey(2*warmup, "/fast")

	wantLatency := float64(ls.Base+ls.Slow) / float64(time.Millisecond)
	wantBaseline := float64(ls.Base) / float64(time.Millisecond)
	wantFactor := wantLatency / wantBaseline
	o := s.eventually(60*time.Second, fmt.Sprintf("one latency_anomaly (a p50 shift) for catalog /slow with latency_ms≈%.0f, baseline_ms≈%.0f, deviation_factor≈%.0f (each within 20%%)",
		wantLatency, wantBaseline, wantFactor),
		func(o *output) (bool, string) {
			recs := o.events(evLatency, attrs{aDest: "catalog", aRoute: "/slow", "netintel.quantile": "p50"})
			if len(recs) > 1 {
				return false, "  reported more than once:\n" + dumpLogs(recs)
			}
			for _, r := range recs {
				l, _ := number(r.Attrs, aLatencyMS)
				b, _ := number(r.Attrs, aBaselineMS)
				f, _ := number(r.Attrs, aFactor)
				if within(l, wantLatency, 0.2) && within(b, wantBaseline, 0.2) && within(f, wantFactor, 0.2) {
					return true, ""
				}
			}
			return false, o.dumpEvents(evLatency)
		})
	time.Sleep(4 * time.Second) // two more flushes: anything wrongly emitted shows up
	if o2, err := readOutput(s.dir); err == nil {
		o = o2
	}
	s.never(o, "latency anomaly on the healthy route /fast", func(o *output) (int, string) {
		var bad []logRecord
		for _, r := range o.events(evLatency, attrs{aDest: "catalog"}) {
			if route, _ := attrAny(r.Attrs, strings.Split(aRoute, "|")...); route == "/fast" {
				bad = append(bad, r)
			}
		}
		return len(bad), dumpLogs(bad)
	})
	s.never(o, "latency anomaly before the backend turned slow (during warm-up)", func(o *output) (int, string) {
		var bad []logRecord
		for _, r := range o.events(evLatency, attrs{aDest: "catalog"}) {
			if r.Time.Before(switched) {
				bad = append(bad, r)
			}
		}
		return len(bad), dumpLogs(bad)
	})
}
