package intel

import (
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/l7"
)

// A load generator that stops closes its connections with requests in flight: those requests
// were abandoned by the client, not failed by the server — no error, no retry storm.
func TestAbandonedRequestsAreNoErrors(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	var s stream
	for i := 0; i < 50; i++ {
		x := s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/", 0, t0.Add(time.Second), 0)
		x.Failure = l7.FailureAbandoned
		if d := e.Exchange(x, svc("wrk"), svc("web")); d.Export && d.Probability == 1 {
			t.Fatalf("an abandoned request was forced into a span: %+v", d)
		}
	}
	fs := e.Findings(t0.Add(30 * time.Second))
	requireLen(t, "error patterns", kinds(fs, KindErrorPattern), 0)
	requireLen(t, "retry storms", kinds(fs, KindRetryStorm), 0)
	if st := e.Edges(); len(st) != 1 || st[0].Errors != 0 {
		t.Fatalf("edges = %+v", st)
	}
}

// Many connections failing at one instant is one event, not a client retrying; the same
// failures spread over two seconds at 25/s are a storm.
func TestFailuresAtOneInstantAreNoRetryStorm(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	var s stream
	for i := 0; i < 17; i++ {
		x := s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/", 0, t0.Add(time.Second), 0)
		x.Failure = l7.FailureClosed
		e.Exchange(x, svc("wrk"), svc("web"))
	}
	fs := e.Findings(t0.Add(30 * time.Second))
	requireLen(t, "retry storms", kinds(fs, KindRetryStorm), 0)
	requireLen(t, "error patterns", kinds(fs, KindErrorPattern), 1)

	for i := 0; i < 50; i++ {
		x := s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/", 0, t0.Add(40*time.Second+time.Duration(i)*40*time.Millisecond), 0)
		x.Failure = l7.FailureClosed
		e.Exchange(x, svc("wrk"), svc("web"))
	}
	requireLen(t, "retry storms", kinds(e.Findings(t0.Add(60*time.Second)), KindRetryStorm), 1)
}
