package intel

import (
	"fmt"
	"testing"
	"time"
)

// jitter gives a deterministic spread of ±20% around d.
func jitter(d time.Duration, i int) time.Duration {
	return d + d*time.Duration(i*37%41-20)/100
}

func TestLatencyAnomalyAfterWarmup(t *testing.T) {
	e := testEngine(nil)
	var s stream
	for i := 0; i < 50; i++ {
		s.feed(e, call{from: "web", to: "api", path: fmt.Sprintf("/api/items/%d", i), status: 200, at: time.Duration(i) * time.Second, latency: jitter(10*time.Millisecond, i)})
	}
	requireLen(t, "warm-up", kinds(e.Findings(t0.Add(time.Minute)), KindLatencyAnomaly), 0)

	s.feed(e, call{from: "web", to: "api", path: "/api/items/77", status: 200, at: time.Minute, latency: 140 * time.Millisecond})
	la := kinds(e.Findings(t0.Add(time.Minute)), KindLatencyAnomaly)
	requireLen(t, "14x request", la, 1)
	a := la[0].LatencyAnomaly
	if a.Latency != 140*time.Millisecond || a.Baseline < 8*time.Millisecond || a.Baseline > 12*time.Millisecond ||
		a.DeviationFactor < 11 || a.DeviationFactor > 18 || a.Samples != 50 || a.Route != "/api/items/{id}" ||
		a.Edge.Dest != "api" || la[0].Subject.Name != "api" || la[0].Example == nil || la[0].Severity != SeverityHigh {
		t.Fatalf("anomaly = %+v", a)
	}
}

func TestLatencyHealthyStreamIsQuiet(t *testing.T) {
	e := testEngine(nil)
	var s stream
	for i := 0; i < 2000; i++ {
		s.feed(e, call{from: "web", to: "api", path: "/api/items", status: 200, at: time.Duration(i) * time.Second, latency: jitter(10*time.Millisecond, i)})
	}
	// A single outlier under the floor is not news either.
	s.feed(e, call{from: "web", to: "api", path: "/fast", status: 200, at: 0, latency: 100 * time.Microsecond})
	for i := 0; i < 30; i++ {
		s.feed(e, call{from: "web", to: "api", path: "/fast", status: 200, at: time.Duration(i) * time.Second, latency: 100 * time.Microsecond})
	}
	s.feed(e, call{from: "web", to: "api", path: "/fast", status: 200, at: time.Minute, latency: 2 * time.Millisecond})
	requireLen(t, "healthy", kinds(e.Findings(t0.Add(time.Hour)), KindLatencyAnomaly), 0)
}

func TestLatencyNewLevelStopsAlerting(t *testing.T) {
	e := testEngine(nil)
	var s stream
	at := time.Duration(0)
	for i := 0; i < 100; i++ {
		s.feed(e, call{from: "web", to: "api", path: "/search", status: 200, at: at, latency: jitter(10*time.Millisecond, i)})
		at += 10 * time.Second
	}
	// A deploy makes /search permanently 14x slower (still under slow_request_threshold).
	var alerts []int
	for i := 0; i < 300; i++ {
		s.feed(e, call{from: "web", to: "api", path: "/search", status: 200, at: at, latency: jitter(140*time.Millisecond, i)})
		if n := len(kinds(e.Findings(t0.Add(at)), KindLatencyAnomaly)); n > 0 {
			alerts = append(alerts, i)
		}
		at += 10 * time.Second
	}
	t.Logf("alerts at %v", alerts)
	if len(alerts) == 0 || alerts[0] != 0 {
		t.Fatalf("the new level was not reported at once: alerts at %v", alerts)
	}
	if last := alerts[len(alerts)-1]; last > 100 || len(alerts) > 10 {
		t.Fatalf("still alerting on a level that persists: alerts at %v", alerts)
	}
	if c := e.Counters(); c.AnomaliesSuppressed == 0 {
		t.Fatalf("no anomaly was rate limited: %+v", c)
	}
}

func TestSlowRequestThreshold(t *testing.T) {
	e := testEngine(nil)
	var s stream
	// No baseline yet: only the absolute threshold applies.
	s.feed(e, call{from: "web", to: "api", path: "/export", status: 200, latency: 2 * time.Second})
	la := kinds(e.Findings(t0.Add(time.Minute)), KindLatencyAnomaly)
	requireLen(t, "slow request", la, 1)
	if a := la[0].LatencyAnomaly; a.Baseline != 0 || a.Latency != 2*time.Second {
		t.Fatalf("anomaly = %+v", a)
	}
	// Rate limited per route: the next slow request within the interval is suppressed.
	s.feed(e, call{from: "web", to: "api", path: "/export", status: 200, at: time.Second, latency: 2 * time.Second})
	requireLen(t, "rate limited", kinds(e.Findings(t0.Add(2*time.Minute)), KindLatencyAnomaly), 0)
	// Negative twin: under the threshold during warm-up.
	s.feed(e, call{from: "web", to: "api", path: "/other", status: 200, latency: 900 * time.Millisecond})
	requireLen(t, "under threshold", kinds(e.Findings(t0.Add(3*time.Minute)), KindLatencyAnomaly), 0)
}
