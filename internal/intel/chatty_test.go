package intel

import (
	"fmt"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/l7"
)

// orders serves a request and, for each, calls stockdb perRequest times (the N+1 pattern when
// perRequest is large).
func nPlusOne(e *Engine, s *stream, requests, perRequest int, start time.Duration) {
	for r := 0; r < requests; r++ {
		at := start + time.Duration(r)*200*time.Millisecond
		for c := 0; c < perRequest; c++ {
			s.feed(e, call{from: "orders", to: "stockdb", path: fmt.Sprintf("/item/%d", c), status: 200, at: at + time.Duration(c)*time.Millisecond})
		}
		s.feed(e, call{from: "web", to: "orders", path: "/orders", status: 200, at: at + 50*time.Millisecond})
	}
}

func TestChattyCommunication(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	var s stream
	nPlusOne(e, &s, 10, 25, 0)
	fs := kinds(e.Findings(t0.Add(10*time.Second)), KindChattyCommunication)
	requireLen(t, "N+1", fs, 1)
	c := fs[0].Chatty
	if c.Edge.Source != "orders" || c.Edge.Dest != "stockdb" || c.CallsPerRequest != 25 || c.RequestCount != 10 ||
		c.CallCount != 250 || c.Window != 10*time.Second || fs[0].Subject.Name != "orders" || fs[0].Severity != SeverityMedium {
		t.Fatalf("chatty = %+v", c)
	}
	// Still chatty in the next windows: reported once per episode.
	nPlusOne(e, &s, 10, 25, 10*time.Second)
	requireLen(t, "same episode", kinds(e.Findings(t0.Add(20*time.Second)), KindChattyCommunication), 0)

	// Healthy twins: a few calls per request; many calls but from a service that served
	// almost nothing (a batch job's start-up); the frontend of a chatty service is not chatty.
	h := testEngine(nil)
	h.Findings(t0)
	nPlusOne(h, &s, 40, 3, 0)
	requireLen(t, "3 calls per request", kinds(h.Findings(t0.Add(10*time.Second)), KindChattyCommunication), 0)
	b := testEngine(nil)
	b.Findings(t0)
	nPlusOne(b, &s, 2, 100, 0)
	requireLen(t, "two requests", kinds(b.Findings(t0.Add(10*time.Second)), KindChattyCommunication), 0)
}

// The calls and the requests arrive as kernel batches just the same.
func TestChattyFromAggregates(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	batch := func(n uint64) *l7.Aggregate {
		a := aggregateAt("/item/{id}", t0.Add(time.Second), l7.Histogram{Counts: []uint64{n}, Count: n, Sum: time.Duration(n) * time.Millisecond})
		a.Count = n
		return a
	}
	e.Aggregate(batch(600), svc("orders"), svc("stockdb"))
	e.Aggregate(batch(20), svc("web"), svc("orders"))
	fs := kinds(e.Findings(t0.Add(10*time.Second)), KindChattyCommunication)
	requireLen(t, "batched N+1", fs, 1)
	if c := fs[0].Chatty; c.CallsPerRequest != 30 || c.RequestCount != 20 || c.CallCount != 600 {
		t.Fatalf("chatty = %+v", c)
	}
}
