package intel

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/l7"
)

// External calls are audited: a destination outside internal_networks is flagged on its
// service_dependency, named as the client resolved it, with the address it called.
func TestExternalDependency(t *testing.T) {
	e := testEngine(nil)
	var s stream
	x := s.http("10.0.0.5:40000", "198.51.100.3:80", "GET", "/v1/rates", 200, t0, 20*time.Millisecond)
	e.Exchange(x, svc("pricing"), remoteSvc("api.partner.example"))
	y := s.http("10.0.0.5:40001", "10.0.0.8:8080", "GET", "/", 200, t0, time.Millisecond)
	e.Exchange(y, svc("pricing"), svc("inventory"))
	z := s.http("[fd00::1]:40002", "[fd00::9]:8080", "GET", "/", 200, t0, time.Millisecond)
	e.Exchange(z, svc("pricing"), svc("ledger"))
	deps := kinds(e.Findings(t0.Add(time.Second)), KindServiceDependency)
	requireLen(t, "dependencies", deps, 3)
	byDest := map[string]*Dependency{}
	for _, d := range deps {
		byDest[d.Dependency.Edge.Dest] = d.Dependency
	}
	if d := byDest["api.partner.example"]; d == nil || !d.External || d.DestAddr != netip.MustParseAddrPort("198.51.100.3:80") {
		t.Fatalf("external dependency = %+v", d)
	}
	for _, internal := range []string{"inventory", "ledger"} {
		if d := byDest[internal]; d == nil || d.External || d.DestAddr.IsValid() {
			t.Fatalf("internal dependency %s = %+v", internal, d)
		}
	}
	// internal_networks is configurable: with 198.51.100.0/24 declared internal, it is not external.
	o := testEngine(func(o *Options) {
		o.InternalNetworks = append(o.InternalNetworks, netip.MustParsePrefix("198.51.100.0/24"))
	})
	o.Exchange(x, svc("pricing"), remoteSvc("api.partner.example"))
	if deps := kinds(o.Findings(t0.Add(time.Second)), KindServiceDependency); len(deps) != 1 || deps[0].Dependency.External {
		t.Fatalf("declared internal = %+v", deps)
	}
}

// Kernel batches count wherever exchanges count: the graph's requests (a new edge from a
// batch is a dependency), errors when the batch's status is one; a client-side batch of a
// local server is left to the server's side.
func TestAggregatesCountOnce(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	h := l7.Histogram{Bounds: []time.Duration{time.Millisecond, 10 * time.Millisecond}, Counts: []uint64{10, 80, 10}, Count: 100, Sum: 600 * time.Millisecond}
	server := aggregateAt("/items/{id}", t0, h)
	client := aggregateAt("/items/{id}", t0, h)
	client.Side = l7.SideClient
	e.Aggregate(server, svc("web"), svc("items"))
	e.Aggregate(client, svc("web"), svc("items")) // the same exchanges, counted on the client socket
	failing := aggregateAt("/items/{id}", t0, l7.Histogram{Counts: []uint64{5}, Count: 5})
	failing.StatusCode = 503
	e.Aggregate(failing, svc("web"), svc("items"))
	st := e.Edges()
	if len(st) != 1 || st[0].Requests != 105 || st[0].Errors != 5 || st[0].Latency.Count != 105 || st[0].Latency.Max != 10*time.Millisecond {
		t.Fatalf("edges = %+v", st)
	}
	fs := e.Findings(t0.Add(10 * time.Second))
	requireLen(t, "dependency from a batch", kinds(fs, KindServiceDependency), 1)
	eps := kinds(fs, KindErrorPattern)
	requireLen(t, "batched errors", eps, 1)
	if p := eps[0].ErrorPattern; p.ErrorCount != 5 || p.Route != "/items/{id}" || p.StatusCode != 503 || eps[0].Example != nil {
		t.Fatalf("error pattern = %+v", p)
	}
	if c := e.Counters(); c.Aggregated != 105 || c.AggregatesSkipped != 100 {
		t.Fatalf("counters = %+v", c)
	}
	// A client-side batch of a remote server is the only count there is: counted.
	r := testEngine(nil)
	r.Aggregate(client, svc("web"), remoteSvc("203.0.113.5:443"))
	if st := r.Edges(); len(st) != 1 || st[0].Requests != 100 {
		t.Fatalf("remote server batch: %+v", st)
	}
}

// Error spans are bounded exemplars per group and window: an outage does not become an
// export storm, while the error counts stay exact.
func TestErrorSpansAreBoundedExemplars(t *testing.T) {
	e := testEngine(func(o *Options) { o.SpanSampling = 0; o.HotEdgeSpansPerSecond = 1 })
	e.Findings(t0)
	var s stream
	forced := 0
	for i := 0; i < 1000; i++ {
		x := s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/pay", 503, t0.Add(time.Duration(i)*time.Millisecond), time.Millisecond)
		if d := e.Exchange(x, svc("web"), svc("payments")); d.Export && d.Probability == 1 {
			forced++
		}
	}
	if forced != e.opts.ErrorSpanExemplars {
		t.Fatalf("%d error spans forced, want the %d exemplars", forced, e.opts.ErrorSpanExemplars)
	}
	eps := kinds(e.Findings(t0.Add(10*time.Second)), KindErrorPattern)
	if len(eps) != 1 || eps[0].ErrorPattern.ErrorCount != 1000 || eps[0].Example == nil {
		t.Fatalf("error pattern = %+v", eps)
	}
	if c := e.Counters(); c.ErrorSpansSampled != 1000-uint64(e.opts.ErrorSpanExemplars) {
		t.Fatalf("counters = %+v", c)
	}
	// The next window has its own exemplars; another group has its own.
	x := s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/pay", 503, t0.Add(11*time.Second), time.Millisecond)
	y := s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/refund", 500, t0.Add(11*time.Second), time.Millisecond)
	if d := e.Exchange(x, svc("web"), svc("payments")); d.Probability != 1 {
		t.Fatalf("next window's first error = %+v", d)
	}
	if d := e.Exchange(y, svc("web"), svc("payments")); d.Probability != 1 {
		t.Fatalf("other group's first error = %+v", d)
	}
}
