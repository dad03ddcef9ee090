package intel

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/l7"
)

func TestDependency(t *testing.T) {
	e := testEngine(nil)
	var s stream
	s.feed(e, call{from: "frontend", to: "checkout", path: "/cart", status: 200},
		call{from: "frontend", to: "checkout", path: "/cart", status: 200, at: time.Second})
	deps := kinds(e.Findings(t0.Add(2*time.Second)), KindServiceDependency)
	requireLen(t, "new edge", deps, 1)
	d := deps[0].Dependency
	want := EdgeKey{Source: "frontend", Dest: "checkout", Protocol: "http", Port: 8080}
	if d.Edge != want || d.RequestCount != 2 || !d.FirstSeen.Equal(t0.Add(10*time.Millisecond)) || deps[0].Subject.Name != "frontend" {
		t.Fatalf("dependency = %+v subject %q", d, deps[0].Subject.Name)
	}

	// Negative twin: the same edge, steadily used, is not reported again.
	for i := 0; i < 100; i++ {
		s.feed(e, call{from: "frontend", to: "checkout", path: "/cart", status: 200, at: time.Duration(2+i) * time.Second})
	}
	requireLen(t, "steady edge", kinds(e.Findings(t0.Add(200*time.Second)), KindServiceDependency), 0)

	// Back after more than dependency_ttl of silence.
	s.feed(e, call{from: "frontend", to: "checkout", path: "/cart", status: 200, at: 102*time.Second + e.opts.DependencyTTL + time.Second})
	deps = kinds(e.Findings(t0.Add(time.Hour)), KindServiceDependency)
	requireLen(t, "returning edge", deps, 1)
	if deps[0].Dependency.RequestCount != 103 || !deps[0].Dependency.FirstSeen.Equal(d.FirstSeen) {
		t.Fatalf("returning dependency = %+v", deps[0].Dependency)
	}
}

func TestErrorPattern(t *testing.T) {
	e := testEngine(nil)
	var s stream
	e.Findings(t0)
	for i := 0; i < 5; i++ {
		s.feed(e, call{from: "frontend", to: "users", path: "/api/users/" + string(rune('1'+i)), status: 503, at: time.Duration(i) * time.Second})
	}
	if got := kinds(e.Findings(t0.Add(5*time.Second)), KindErrorPattern); len(got) != 0 {
		t.Fatalf("error pattern before the window closed: %+v", got)
	}
	eps := kinds(e.Findings(t0.Add(10*time.Second)), KindErrorPattern)
	requireLen(t, "five 503s", eps, 1)
	p := eps[0].ErrorPattern
	if p.Route != "/api/users/{id}" || p.Method != "GET" || p.StatusCode != 503 || p.Status != "503" || p.ErrorCount != 5 ||
		p.IsCascade || p.Edge.Dest != "users" || eps[0].Subject.Name != "users" || eps[0].Example == nil ||
		!p.WindowStart.Equal(t0) || !p.WindowEnd.Equal(t0.Add(10*time.Second)) || eps[0].Severity != SeverityMedium {
		t.Fatalf("error pattern = %+v", p)
	}
	// Window reset: the next window without errors reports nothing.
	requireLen(t, "next window", kinds(e.Findings(t0.Add(20*time.Second)), KindErrorPattern), 0)

	// Negative twin: a healthy stream.
	h := testEngine(nil)
	for i := 0; i < 50; i++ {
		s.feed(h, call{from: "frontend", to: "users", path: "/api/users/7", status: 200, at: time.Duration(i) * time.Second})
	}
	requireLen(t, "healthy", kinds(flushAll(h, t0.Add(time.Minute)), KindErrorPattern), 0)
}

func TestErrorClassification(t *testing.T) {
	e := testEngine(nil)
	base := &l7.Exchange{Protocol: l7.ProtocolGRPC, Start: t0, End: t0.Add(time.Millisecond), Server: l7.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.3:50051")}}
	tests := []struct {
		name   string
		mod    func(x *l7.Exchange)
		isErr  bool
		route  string
		status string
	}{
		{"http 200", func(x *l7.Exchange) { x.HTTP = &l7.HTTP{Method: "GET", Path: "/a/1", Status: 200} }, false, "/a/{id}", ""},
		{"http 404", func(x *l7.Exchange) { x.HTTP = &l7.HTTP{Method: "GET", Path: "/a", Status: 404} }, true, "/a", "404"},
		{"http no response", func(x *l7.Exchange) { x.HTTP = &l7.HTTP{Method: "GET", Path: "/a"} }, false, "/a", ""},
		{"grpc ok", func(x *l7.Exchange) {
			x.HTTP = &l7.HTTP{Status: 200}
			x.GRPC = &l7.GRPC{Service: "helloworld.Greeter", Method: "SayHello", StatusName: "OK"}
		}, false, "helloworld.Greeter/SayHello", ""},
		{"grpc unavailable", func(x *l7.Exchange) {
			x.HTTP = &l7.HTTP{Status: 200}
			x.GRPC = &l7.GRPC{Service: "helloworld.Greeter", Method: "SayHello", Status: 14, StatusName: "UNAVAILABLE"}
		}, true, "helloworld.Greeter/SayHello", "UNAVAILABLE"},
		{"dns nxdomain", func(x *l7.Exchange) {
			x.DNS = &l7.DNS{Name: "Nope.Example.com", Type: "A", RCode: 3, RCodeName: "NXDOMAIN"}
		}, true, "nope.example.com", "NXDOMAIN"},
		{"dns noerror", func(x *l7.Exchange) { x.DNS = &l7.DNS{Name: "a.example.com", Type: "A"} }, false, "a.example.com", ""},
		{"reset", func(x *l7.Exchange) {
			x.HTTP = &l7.HTTP{Method: "POST", Path: "/pay"}
			x.Failure = l7.FailureReset
		}, true, "/pay", "connection_reset"},
	}
	for _, tt := range tests {
		x := *base
		tt.mod(&x)
		o := e.classify(&x)
		if o.isErr != tt.isErr || o.route != tt.route || o.status != tt.status {
			t.Errorf("%s: classify = %+v, want err=%v route=%q status=%q", tt.name, o, tt.isErr, tt.route, tt.status)
		}
	}
}

// threeTier: frontend → checkout → payments; payments fails, checkout passes it on.
func threeTier(at time.Duration) []call {
	return []call{
		{from: "checkout", to: "payments", path: "/charge", status: 503, at: at},
		{from: "frontend", to: "checkout", path: "/checkout", status: 502, at: at + 100*time.Millisecond},
	}
}

func TestCascadeThreeTier(t *testing.T) {
	e := testEngine(nil)
	var s stream
	e.Findings(t0)
	for i := 0; i < 4; i++ {
		s.feed(e, threeTier(time.Duration(i)*time.Second)...)
	}
	// An unrelated error elsewhere must stay out of the cascade, and so must a caller's
	// mistake on a service of the cascade.
	s.feed(e, call{from: "cron", to: "reports", path: "/daily", status: 500, at: 2 * time.Second})
	s.feed(e, call{from: "frontend", to: "checkout", path: "/nope", status: 404, at: 2 * time.Second})

	eps := kinds(e.Findings(t0.Add(10*time.Second)), KindErrorPattern)
	var casc []Finding
	var plain []Finding
	for _, f := range eps {
		if f.ErrorPattern.IsCascade {
			casc = append(casc, f)
		} else {
			plain = append(plain, f)
		}
	}
	requireLen(t, "cascades", casc, 1)
	c := casc[0].ErrorPattern
	if c.RootCause != "payments" || !reflect.DeepEqual(c.AffectedServices, []string{"payments", "checkout", "frontend"}) {
		t.Fatalf("cascade root %q affected %v", c.RootCause, c.AffectedServices)
	}
	// error_count is the errors of the endpoint the cascade names (payments /charge); each
	// hop carries its own.
	wantPath := []CascadeHop{
		{Edge: EdgeKey{Source: "checkout", Dest: "payments", Protocol: "http", Port: 8080}, Errors: 4},
		{Edge: EdgeKey{Source: "frontend", Dest: "checkout", Protocol: "http", Port: 8080}, Errors: 4},
	}
	if !reflect.DeepEqual(c.Path, wantPath) || c.Edge != wantPath[0].Edge || c.ErrorCount != 4 || c.Route != "/charge" ||
		c.StatusCode != 503 || casc[0].Subject.Name != "payments" || casc[0].Severity != SeverityHigh {
		t.Fatalf("cascade = %+v", c)
	}
	// The cascade's groups are inside it; the unrelated one is a plain error pattern.
	requireLen(t, "plain error patterns", plain, 2)
	if plain[0].ErrorPattern.Route != "/daily" || plain[1].ErrorPattern.Route != "/nope" {
		t.Fatalf("plain error patterns = %+v, %+v", plain[0].ErrorPattern, plain[1].ErrorPattern)
	}
}

func TestCascadeDeepChainAndFanIn(t *testing.T) {
	e := testEngine(nil)
	var s stream
	e.Findings(t0)
	s.feed(e,
		call{from: "inventory", to: "db", path: "/q", status: 500, at: 0},
		call{from: "checkout", to: "inventory", path: "/stock", status: 500, at: time.Second},
		call{from: "frontend", to: "checkout", path: "/buy", status: 502, at: 2 * time.Second},
		call{from: "admin", to: "inventory", path: "/stock", status: 500, at: 3 * time.Second}, // fan-in
	)
	eps := kinds(e.Findings(t0.Add(10*time.Second)), KindErrorPattern)
	requireLen(t, "one cascade, nothing else", eps, 1)
	c := eps[0].ErrorPattern
	if !c.IsCascade || c.RootCause != "db" ||
		!reflect.DeepEqual(c.AffectedServices, []string{"db", "inventory", "admin", "checkout", "frontend"}) ||
		len(c.Path) != 4 || c.Path[0].Edge.Dest != "db" || c.ErrorCount != 1 || eps[0].Severity != SeverityCritical {
		t.Fatalf("cascade = %+v", c)
	}
}

func TestCascadeOverlapAcrossWindows(t *testing.T) {
	// The callee fails in one flush window, its caller in the next, within cascade_window.
	e := testEngine(nil)
	var s stream
	e.Findings(t0)
	s.feed(e, call{from: "checkout", to: "payments", path: "/charge", status: 503, at: 5 * time.Second})
	requireLen(t, "first window", kinds(e.Findings(t0.Add(10*time.Second)), KindErrorPattern), 1)
	s.feed(e, call{from: "frontend", to: "checkout", path: "/checkout", status: 502, at: 15 * time.Second})
	eps := kinds(e.Findings(t0.Add(20*time.Second)), KindErrorPattern)
	requireLen(t, "second window", eps, 1)
	// The root's errors were reported in the first window: this one's count at the named
	// endpoint is 0, the caller's edge carries its error.
	if p := eps[0].ErrorPattern; !p.IsCascade || p.RootCause != "payments" || p.ErrorCount != 0 || p.Route != "/charge" ||
		len(p.Path) != 2 || p.Path[1].Errors != 1 {
		t.Fatalf("second window = %+v", p)
	}
}

func TestNoCascade(t *testing.T) {
	tests := []struct {
		name  string
		calls []call
		flush time.Duration
		plain int
	}{
		{"three unrelated 404s on unconnected edges", []call{
			{from: "a", to: "b", path: "/x", status: 404, at: 0},
			{from: "c", to: "d", path: "/y", status: 404, at: time.Second},
			{from: "e", to: "f", path: "/z", status: 404, at: 2 * time.Second},
		}, 10 * time.Second, 3},
		{"fan-in without a chain", []call{
			{from: "a", to: "db", path: "/q", status: 500, at: 0},
			{from: "b", to: "db", path: "/q", status: 500, at: time.Second},
		}, 10 * time.Second, 1},
		{"fan-out from one caller", []call{
			{from: "a", to: "b", path: "/q", status: 500, at: 0},
			{from: "a", to: "c", path: "/q", status: 500, at: time.Second},
		}, 10 * time.Second, 2},
		{"connected edges far apart in time", []call{
			{from: "b", to: "c", path: "/q", status: 500, at: 0},
			{from: "a", to: "b", path: "/q", status: 500, at: 2 * time.Minute},
		}, 3 * time.Minute, 2},
		{"connected 404s: the caller's mistakes, not a failing callee", []call{
			{from: "b", to: "c", path: "/missing", status: 404, at: 0},
			{from: "a", to: "b", path: "/q", status: 404, at: time.Second},
		}, 10 * time.Second, 2},
		{"healthy chain", []call{
			{from: "b", to: "c", path: "/q", status: 200, at: 0},
			{from: "a", to: "b", path: "/q", status: 200, at: time.Second},
		}, 10 * time.Second, 0},
	}
	for _, tt := range tests {
		e := testEngine(nil)
		var s stream
		e.Findings(t0)
		var all []Finding
		for _, c := range tt.calls {
			all = append(all, e.Findings(t0.Add(c.at))...)
			s.feed(e, c)
		}
		all = append(all, e.Findings(t0.Add(tt.flush))...)
		eps := kinds(all, KindErrorPattern)
		for _, f := range eps {
			if f.ErrorPattern.IsCascade {
				t.Errorf("%s: unexpected cascade %+v", tt.name, f.ErrorPattern)
			}
		}
		if len(eps) != tt.plain {
			t.Errorf("%s: %d error patterns, want %d", tt.name, len(eps), tt.plain)
		}
	}
}

func TestDeduplicatesBothHalves(t *testing.T) {
	e := testEngine(func(o *Options) { o.SpanSampling = 0.5 })
	var s stream
	e.Findings(t0)
	kept := 0
	for i := 0; i < 200; i++ {
		client := s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/a", 500, t0.Add(time.Duration(i)*time.Millisecond), time.Millisecond)
		client.HTTP.Status = 200
		if i%10 == 0 {
			client.HTTP.Status = 500
		}
		server := *client
		server.Side = l7.SideServer
		d1 := e.Exchange(client, svc("web"), svc("api"))
		d2 := e.Exchange(&server, svc("web"), svc("api"))
		if d1 != d2 {
			t.Fatalf("halves decided differently: %+v vs %+v", d1, d2)
		}
		if d1.Export {
			kept++
		}
	}
	c := e.Counters()
	if c.Exchanges != 200 || c.Deduplicated != 200 {
		t.Fatalf("counters = %+v", c)
	}
	eps := kinds(e.Findings(t0.Add(10*time.Second)), KindErrorPattern)
	requireLen(t, "errors", eps, 1)
	if eps[0].ErrorPattern.ErrorCount != 20 {
		t.Fatalf("error count %d, want 20 (each exchange once)", eps[0].ErrorPattern.ErrorCount)
	}
	if st := e.Edges(); len(st) != 1 || st[0].Requests != 200 || st[0].Errors != 20 {
		t.Fatalf("edges = %+v", st)
	}
	// The error exemplars are kept; the other errors and the healthy rest at the configured
	// probability (the edge carries 1000 req/s, far above the hot-edge budget).
	if kept < 5+60 || kept > 5+140 {
		t.Fatalf("kept %d of 200 (5 exemplars, 195 at 50%%)", kept)
	}
}

func TestSampling(t *testing.T) {
	e := testEngine(func(o *Options) { o.SpanSampling = 0.1 })
	var s stream
	kept := 0
	const n = 20000
	for i := 0; i < n; i++ {
		x := s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/ok", 200, t0.Add(time.Duration(i)*time.Millisecond), time.Millisecond)
		d := e.Exchange(x, svc("web"), svc("api"))
		if d.Probability != 0.1 {
			t.Fatalf("healthy exchange probability %v", d.Probability)
		}
		if d.Export {
			kept++
			if d.TraceState() != "ot=th:e6666666666666" {
				t.Fatalf("tracestate %q", d.TraceState())
			}
		}
	}
	if kept < n*8/100 || kept > n*12/100 {
		t.Fatalf("kept %d of %d at 10%%", kept, n)
	}
	// An error is always kept, and makes its edge hot for HotEdgeDuration.
	at := t0.Add(n * time.Millisecond)
	d := e.Exchange(s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/ok", 500, at, time.Millisecond), svc("web"), svc("api"))
	if !d.Export || d.Probability != 1 || d.TraceState() != "ot=th:0" {
		t.Fatalf("error decision %+v", d)
	}
	// The edge now carries 10 req/s, within HotEdgeSpansPerSecond: once its rate is known
	// (after a second), every exchange is kept.
	for i := 1; i <= 100; i++ {
		d := e.Exchange(s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/ok", 200, at.Add(time.Duration(i)*100*time.Millisecond), time.Millisecond), svc("web"), svc("api"))
		if i > 20 && (!d.Export || d.Probability != 1) {
			t.Fatalf("hot edge exchange %d not kept: %+v", i, d)
		}
	}
	// Another edge is not hot.
	other := 0
	for i := 0; i < 1000; i++ {
		if e.Exchange(s.http("127.0.0.1:40000", "127.0.0.3:8080", "GET", "/ok", 200, at, time.Millisecond), svc("web"), svc("other")).Export {
			other++
		}
	}
	if other > 200 {
		t.Fatalf("other edge kept %d of 1000", other)
	}
	// And the hot edge cools down.
	later := at.Add(e.opts.HotEdgeDuration + time.Minute)
	cool := 0
	for i := 0; i < 1000; i++ {
		if e.Exchange(s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/ok", 200, later, time.Millisecond), svc("web"), svc("api")).Export {
			cool++
		}
	}
	if cool > 200 {
		t.Fatalf("cooled edge kept %d of 1000", cool)
	}
}

func TestConnectionFailureAndRetryStorm(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	fail := func(at time.Duration, port uint16) {
		e.Conn(&capture.ConnEvent{Kind: capture.ConnFailed, Time: t0.Add(at), Reason: capture.FailureRefused,
			Socket: capture.Socket{Role: capture.RoleClient, Local: netip.MustParseAddrPort("127.0.0.1:40000"),
				Remote: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.5"), port)}},
			svc("orders"), svc("postgres"))
	}
	for i := 0; i < 3; i++ {
		fail(time.Duration(i)*time.Second, 5432)
	}
	fs := e.Findings(t0.Add(10 * time.Second))
	cf := kinds(fs, KindConnectionFailure)
	requireLen(t, "connection failures", cf, 1)
	if f := cf[0].ConnectionFailure; f.Count != 3 || f.Reason != "refused" || f.Edge.Port != 5432 || f.Edge.Dest != "postgres" || cf[0].Subject.Name != "orders" {
		t.Fatalf("connection failure = %+v", f)
	}
	requireLen(t, "slow retries are no storm", kinds(fs, KindRetryStorm), 0)

	// Negative twin: connections that open, carry data and close, and a server whose client
	// hangs up with a reset (the client's choice), are no failures.
	h := testEngine(nil)
	h.Findings(t0)
	sock := capture.Socket{Role: capture.RoleClient, Local: netip.MustParseAddrPort("127.0.0.1:40001"), Remote: netip.MustParseAddrPort("127.0.0.5:5432")}
	for _, k := range []capture.ConnKind{capture.ConnOpened, capture.ConnRTT, capture.ConnRetransmit, capture.ConnClosed} {
		h.Conn(&capture.ConnEvent{Kind: k, Time: t0, Socket: sock}, svc("orders"), svc("postgres"))
	}
	srv := capture.Socket{Role: capture.RoleServer, Local: sock.Remote, Remote: sock.Local}
	h.Conn(&capture.ConnEvent{Kind: capture.ConnResetReceived, Time: t0, Socket: srv}, svc("orders"), svc("postgres"))
	requireLen(t, "healthy connections", h.Findings(t0.Add(10*time.Second)), 0)

	// 40 failing requests in 2s: a retry storm.
	var s stream
	for i := 0; i < 40; i++ {
		s.feed(e, call{from: "mobile-bff", to: "auth", path: "/token", status: 503, at: 10*time.Second + time.Duration(i)*50*time.Millisecond})
	}
	rs := kinds(e.Findings(t0.Add(20*time.Second)), KindRetryStorm)
	requireLen(t, "retry storm", rs, 1)
	if r := rs[0].RetryStorm; r.Attempts != 40 || r.Route != "/token" || r.RatePerSec < 19 || r.Edge.Source != "mobile-bff" || rs[0].Subject.Name != "mobile-bff" {
		t.Fatalf("retry storm = %+v", r)
	}
	// Negative twin: the same 40 failures spread over 400s.
	h = testEngine(nil)
	var all []Finding
	h.Findings(t0)
	for i := 0; i < 40; i++ {
		at := time.Duration(i) * 10 * time.Second
		s.feed(h, call{from: "mobile-bff", to: "auth", path: "/token", status: 503, at: at})
		all = append(all, h.Findings(t0.Add(at+5*time.Second))...)
	}
	requireLen(t, "spread failures", kinds(all, KindRetryStorm), 0)
}

// TestReplayClock: replayed events carry the recording's times while Findings is called with
// the wall clock; cascades are still found on the events' clock.
func TestReplayClock(t *testing.T) {
	e := testEngine(nil)
	var s stream
	wall := t0.Add(30 * 24 * time.Hour)
	e.Findings(wall)
	s.feed(e, threeTier(0)...)
	eps := kinds(e.Findings(wall.Add(10*time.Second)), KindErrorPattern)
	if len(eps) != 1 || !eps[0].ErrorPattern.IsCascade {
		t.Fatalf("replayed cascade = %+v", eps)
	}
}

func TestServerFailure(t *testing.T) {
	tests := []struct {
		protocol string
		code     int
		want     bool
	}{
		{"http", 503, true}, {"http", 500, true}, {"http", 429, true}, {"http", 408, true},
		{"http", 404, false}, {"http", 401, false},
		{"grpc", 14, true}, {"grpc", 4, true}, {"grpc", 5, false}, {"grpc", 3, false}, {"grpc", 16, false},
		{"dns", 2, true}, {"dns", 3, false},
		{"tcp", 0, true}, {"http", 0, true},
	}
	for _, tt := range tests {
		if got := serverFailure(tt.protocol, tt.code); got != tt.want {
			t.Errorf("serverFailure(%s, %d) = %v, want %v", tt.protocol, tt.code, got, tt.want)
		}
	}
}

// A busy edge with a finding keeps about HotEdgeSpansPerSecond healthy spans a second, not all
// of them: a latency anomaly under load must not switch sampling off.
func TestHotEdgeSamplingIsBounded(t *testing.T) {
	e := testEngine(func(o *Options) { o.SpanSampling = 0.001; o.HotEdgeSpansPerSecond = 10 })
	var s stream
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) } // 1000 req/s
	for i := 0; i < 2000; i++ {
		e.Exchange(s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/ok", 200, at(i), time.Millisecond), svc("web"), svc("api"))
	}
	if d := e.Exchange(s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/ok", 503, at(2000), time.Millisecond), svc("web"), svc("api")); !d.Export {
		t.Fatal("the error is not kept")
	}
	kept := 0
	for i := 2001; i < 7001; i++ { // five seconds on the hot edge
		d := e.Exchange(s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", "/ok", 200, at(i), time.Millisecond), svc("web"), svc("api"))
		if d.Export {
			kept++
			if d.Probability < 0.009 || d.Probability > 0.011 {
				t.Fatalf("hot probability %v, want about 10/1000", d.Probability)
			}
		}
	}
	if kept < 25 || kept > 100 {
		t.Fatalf("hot edge kept %d healthy spans in 5 s, want about 50", kept)
	}
}

// The cascade: 40 failing user requests through three hops are one cascade whose
// error_count is the 40 errors at the endpoint it names, with each hop's count beside it.
func TestCascadeNamesTheRootEndpoint(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	var s stream
	for i := 0; i < 40; i++ {
		at := time.Duration(i) * 20 * time.Millisecond
		x := s.http("127.0.0.1:40000", "127.0.0.2:8080", "POST", fmt.Sprintf("/checkout/cart/%d", i), 503, t0.Add(at), time.Millisecond)
		e.Exchange(x, svc("cart"), svc("stock"))
		s.feed(e,
			call{from: "gateway", to: "cart", path: fmt.Sprintf("/cart/%d", i), status: 502, at: at + 2*time.Millisecond},
			call{from: "web", to: "gateway", path: fmt.Sprintf("/buy/%d", i), status: 502, at: at + 4*time.Millisecond})
	}
	eps := kinds(e.Findings(t0.Add(10*time.Second)), KindErrorPattern)
	requireLen(t, "one cascade and nothing else", eps, 1)
	c := eps[0].ErrorPattern
	want := []CascadeHop{
		{Edge: EdgeKey{Source: "cart", Dest: "stock", Protocol: "http", Port: 8080}, Errors: 40},
		{Edge: EdgeKey{Source: "gateway", Dest: "cart", Protocol: "http", Port: 8080}, Errors: 40},
		{Edge: EdgeKey{Source: "web", Dest: "gateway", Protocol: "http", Port: 8080}, Errors: 40},
	}
	if !c.IsCascade || c.ErrorCount != 40 || c.Method != "POST" || c.Route != "/checkout/cart/{id}" || c.RootCause != "stock" ||
		c.StatusCode != 503 || !reflect.DeepEqual(c.Path, want) ||
		!reflect.DeepEqual(c.AffectedServices, []string{"stock", "cart", "gateway", "web"}) {
		t.Fatalf("cascade = %+v", c)
	}
}

// Order matters: a caller that was failing before its callee started to is not failing
// because of it. Healthy twin of the cascade rule.
func TestCascadeNeedsTheCalleeToFailFirst(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	var s stream
	for i := 0; i < 5; i++ {
		s.feed(e, call{from: "frontend", to: "checkout", path: "/checkout", status: 500, at: time.Duration(i) * time.Second})
	}
	for i := 0; i < 5; i++ {
		s.feed(e, call{from: "checkout", to: "payments", path: "/charge", status: 503, at: 5*time.Second + time.Duration(i)*100*time.Millisecond})
	}
	eps := kinds(e.Findings(t0.Add(10*time.Second)), KindErrorPattern)
	requireLen(t, "two unrelated error patterns", eps, 2)
	for _, f := range eps {
		if f.ErrorPattern.IsCascade {
			t.Fatalf("cascade from a caller that failed first: %+v", f.ErrorPattern)
		}
	}
}

// A window closes at the tick meant to close it even when that tick reads a hair less than
// FlushInterval after the one that opened it (ticks come late by varying amounts), and not at
// a tick well before its end.
func TestWindowClosesAtItsTick(t *testing.T) {
	e := testEngine(nil)
	var s stream
	open := t0.Add(3 * time.Millisecond) // the opening tick was late by 3 ms, the closing one by 1 ms
	e.Findings(open)
	for i := 0; i < 5; i++ {
		s.feed(e, call{from: "frontend", to: "users", path: "/api/users/1", status: 503, at: time.Duration(i) * time.Second})
	}
	// Twin: a tick one second before the end does not close it.
	requireLen(t, "a second early", kinds(e.Findings(open.Add(9*time.Second)), KindErrorPattern), 0)
	if e.WindowDue(open.Add(9 * time.Second)) {
		t.Fatal("window due a second before its end")
	}
	closing := t0.Add(10*time.Second + time.Millisecond)
	if !e.WindowDue(closing) {
		t.Fatal("window not due at the tick 2 ms short of its end")
	}
	eps := kinds(e.Findings(closing), KindErrorPattern)
	requireLen(t, "the closing tick", eps, 1)
	if p := eps[0].ErrorPattern; !p.WindowEnd.Equal(closing) || p.ErrorCount != 5 {
		t.Fatalf("error pattern = %+v", p)
	}
}

// At shutdown the open window closes early (Last): its errors are reported. Twin: Findings at
// the same moment keeps the window open.
func TestLastClosesTheOpenWindow(t *testing.T) {
	for _, last := range []bool{false, true} {
		e := testEngine(nil)
		var s stream
		e.Findings(t0)
		for i := 0; i < 5; i++ {
			s.feed(e, call{from: "frontend", to: "users", path: "/api/users/1", status: 503, at: time.Duration(i) * time.Second})
		}
		get := e.Findings
		if last {
			get = e.Last
		}
		want := 0
		if last {
			want = 1
		}
		eps := kinds(get(t0.Add(5*time.Second)), KindErrorPattern)
		requireLen(t, fmt.Sprintf("error patterns (last %v)", last), eps, want)
		if last && (eps[0].ErrorPattern.ErrorCount != 5 || !eps[0].ErrorPattern.WindowEnd.Equal(t0.Add(5*time.Second))) {
			t.Fatalf("error pattern = %+v", eps[0].ErrorPattern)
		}
	}
}
