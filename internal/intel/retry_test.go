package intel

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/l7"
)

// request is one exchange of a client at an address, with a query string.
func (s *stream) request(e *Engine, from, to, clientAddr, path, query string, status int, at time.Duration) {
	x := s.http(clientAddr, "127.0.0.2:8080", "GET", path, status, t0.Add(at), 5*time.Millisecond)
	x.HTTP.Query = query
	e.Exchange(x, svc(from), svc(to))
}

func storms(fs []Finding) []Finding { return kinds(fs, KindRetryStorm) }

// Healthy twin: an error rate is not a retry storm. Four workers of one client at 600 req/s
// on one URL, 1% of answers a random 503, for a minute.
func TestErrorRateIsNoRetryStorm(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	var s stream
	rng := rand.New(rand.NewPCG(1, 1))
	var all []Finding
	for i := 0; i < 600*60; i++ {
		at := time.Duration(i) * time.Second / 600
		status := 200
		if rng.Float64() < 0.01 {
			status = 503
		}
		s.request(e, "hey", "shop", fmt.Sprintf("127.0.0.1:%d", 40000+i%4), "/api/items/123", "", status, at)
		if i%600 == 0 {
			all = append(all, e.Findings(t0.Add(at))...)
		}
	}
	all = append(all, flushAll(e, t0.Add(61*time.Second))...)
	requireLen(t, "retry storms of a 1% error rate", storms(all), 0)
	if len(kinds(all, KindErrorPattern)) == 0 {
		t.Fatal("the 503s were not reported as error patterns")
	}

	// The same when the healthy exchanges arrive only as kernel batches: the failure ratio
	// still comes out at 1%.
	a := testEngine(nil)
	a.Findings(t0)
	all = nil
	for sec := 0; sec < 60; sec++ {
		for i := 0; i < 6; i++ {
			s.request(a, "hey", "shop", "127.0.0.1:40001", "/api/items/123", "", 503, time.Duration(sec)*time.Second+time.Duration(i)*150*time.Millisecond)
		}
		h := histogramOf(nil, nil)
		h.Counts, h.Count = []uint64{594}, 594
		b := aggregateAt("/api/items/{id}", t0.Add(time.Duration(sec)*time.Second), h)
		a.Aggregate(b, svc("hey"), svc("shop"))
		all = append(all, a.Findings(t0.Add(time.Duration(sec+1)*time.Second))...)
	}
	requireLen(t, "retry storms with batched successes", storms(all), 0)
}

// A client that retries each failing call until it succeeds: a storm, reported once while it
// lasts, with its attempts per logical call.
func TestRetryingClientIsAStorm(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	var s stream
	var all []Finding
	call := 0
	for sec := 0; sec < 30; sec++ {
		for c := 0; c < 10; c++ { // ten logical calls a second
			start := time.Duration(sec)*time.Second + time.Duration(c)*100*time.Millisecond
			call++
			q := fmt.Sprintf("user=%d", call)
			for attempt := 0; attempt < 4; attempt++ {
				status := 503
				if attempt == 3 {
					status = 200
				}
				s.request(e, "mobile-bff", "auth", "127.0.0.5:41000", "/token", q, status, start+time.Duration(attempt)*20*time.Millisecond)
			}
		}
		all = append(all, e.Findings(t0.Add(time.Duration(sec+1)*time.Second))...)
	}
	rs := storms(all)
	requireLen(t, "retry storm", rs, 1)
	r := rs[0].RetryStorm
	if r.Edge.Source != "mobile-bff" || r.Edge.Dest != "auth" || r.Route != "/token" || r.Method != "GET" ||
		r.AttemptsPerCall < 3.9 || r.AttemptsPerCall > 4.1 || r.FailureRatio < 0.74 || r.FailureRatio > 0.76 ||
		r.Attempts != 3*r.Calls || r.Calls < 90 || r.RatePerSec < 25 || rs[0].Subject.Name != "mobile-bff" || rs[0].Example == nil {
		t.Fatalf("retry storm = %+v", r)
	}
	// A client hammering an endpoint that always fails is a storm too.
	h := testEngine(nil)
	h.Findings(t0)
	for i := 0; i < 40; i++ {
		s.request(h, "cron", "auth", "127.0.0.6:41000", "/token", "", 503, 10*time.Second+time.Duration(i)*50*time.Millisecond)
	}
	rs = storms(h.Findings(t0.Add(20 * time.Second)))
	requireLen(t, "hammering", rs, 1)
	if r := rs[0].RetryStorm; r.Attempts != 40 || r.Calls != 1 || r.AttemptsPerCall != 40 || r.FailureRatio != 1 {
		t.Fatalf("hammering storm = %+v", r)
	}
}

// Healthy twins: failures passed on through a chain are not retries; nor are distinct calls
// that all fail because their dependency is down.
func TestFailuresThatAreNotRetries(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	var s stream
	for i := 0; i < 40; i++ {
		at := time.Duration(i) * 50 * time.Millisecond
		id := fmt.Sprint(i)
		// Distinct user requests through gateway → cart → stock, all failing at stock.
		s.request(e, "curl", "gateway", "127.0.0.1:42000", "/checkout/cart/"+id, "", 502, at+3*time.Millisecond)
		s.request(e, "gateway", "cart", "127.0.0.1:42001", "/cart/"+id, "", 502, at+2*time.Millisecond)
		// cart calls stock with the same URL every time: still one call per request it serves.
		s.request(e, "cart", "stock", "127.0.0.1:42002", "/stock", "", 503, at+time.Millisecond)
	}
	fs := e.Findings(t0.Add(10 * time.Second))
	requireLen(t, "retry storms of a failing chain", storms(fs), 0)
	if eps := kinds(fs, KindErrorPattern); len(eps) != 1 || !eps[0].ErrorPattern.IsCascade {
		t.Fatalf("the chain is not one cascade: %+v", eps)
	}
}

// A client whose failing calls are all distinct (random ids, 1% errors at a high rate): the
// calls that can no longer be retried make room, so following them loses nothing while the
// calls within one RetryGap fit the table. Twin: more distinct failures than the table holds
// within one gap are counted as dropped.
func TestRetryTableForgetsCallsPastTheGap(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	var s stream
	// 400 distinct failing calls a second for 10 s: at most 800 within the 2 s gap.
	for i := 0; i < 4000; i++ {
		s.request(e, "loadgen", "shop", "127.0.0.7:41000", fmt.Sprintf("/items/%d", i), "", 503, time.Duration(i)*time.Second/400)
	}
	if d := e.c.RetryCallsDropped; d != 0 {
		t.Fatalf("%d calls dropped, though no more than 800 were open within the retry gap", d)
	}
	requireLen(t, "retry storms of distinct calls", storms(flushAll(e, t0.Add(20*time.Second))), 0)

	f := testEngine(nil)
	f.Findings(t0)
	for i := 0; i < 1500; i++ {
		s.request(f, "loadgen", "shop", "127.0.0.7:41000", fmt.Sprintf("/items/%d", i), "", 503, time.Duration(i)*time.Second/1500)
	}
	if d := f.c.RetryCallsDropped; d != 1500-maxRetryCalls {
		t.Fatalf("%d calls dropped of 1500 distinct within one gap, want %d", d, 1500-maxRetryCalls)
	}
}

// errorBatch is a kernel batch of n errors (status) of one client address on one route: the
// errors beyond the first of their key that the kernel counted instead of sending.
func errorBatch(client, route string, status int, start time.Time, n uint64) *l7.Aggregate {
	h := histogramOf(nil, nil)
	h.Counts, h.Count = []uint64{n}, n
	a := aggregateAt(route, start, h)
	a.Client.Addr = netip.MustParseAddrPort(client)
	a.StatusCode = status
	return a
}

// A storm whose failures mostly reach intel as kernel counts (the kernel sends each key's
// first errors of a drain whole, then counts): still a storm, its attempts exact and its calls
// estimated at the whole failures' attempts per call. Twin: a 1% error rate whose errors are
// mostly counted is not one.
func TestRetryStormFromCountedErrors(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	var s stream
	var all []Finding
	call := 0
	for sec := 0; sec < 30; sec++ {
		// The first eight failures of the second whole: two calls, four attempts each.
		for c := 0; c < 2; c++ {
			call++
			for attempt := 0; attempt < 4; attempt++ {
				at := time.Duration(sec)*time.Second + time.Duration(c*4+attempt)*20*time.Millisecond
				s.request(e, "mobile-bff", "auth", "127.0.0.5:41000", "/token", fmt.Sprintf("user=%d", call), 503, at)
			}
		}
		// 392 more failures counted.
		e.Aggregate(errorBatch("127.0.0.5:0", "/token", 503, t0.Add(time.Duration(sec)*time.Second), 392), svc("mobile-bff"), svc("auth"))
		all = append(all, e.Findings(t0.Add(time.Duration(sec+1)*time.Second))...)
	}
	rs := storms(all)
	requireLen(t, "retry storm", rs, 1)
	r := rs[0].RetryStorm
	if r.AttemptsPerCall != 4 || r.FailureRatio != 1 || r.RatePerSec < 300 || r.Attempts < 800 || r.Calls*4 < r.Attempts-8 || r.Calls*4 > r.Attempts+8 {
		t.Fatalf("retry storm = %+v", r)
	}

	// Twin: 1% errors, all distinct calls; 99% of the successes and most errors as counts.
	h := testEngine(nil)
	h.Findings(t0)
	all = nil
	for sec := 0; sec < 60; sec++ {
		for i := 0; i < 2; i++ {
			s.request(h, "hey", "shop", "127.0.0.1:40001", "/api/items", fmt.Sprintf("n=%d-%d", sec, i), 503, time.Duration(sec)*time.Second+time.Duration(i)*300*time.Millisecond)
		}
		at := t0.Add(time.Duration(sec) * time.Second)
		h.Aggregate(errorBatch("127.0.0.1:0", "/api/items", 503, at, 4), svc("hey"), svc("shop"))
		hb := histogramOf(nil, nil)
		hb.Counts, hb.Count = []uint64{594}, 594
		h.Aggregate(aggregateAt("/api/items", at, hb), svc("hey"), svc("shop"))
		all = append(all, h.Findings(t0.Add(time.Duration(sec+1)*time.Second))...)
	}
	requireLen(t, "retry storms of 1% counted errors", storms(all), 0)
}
