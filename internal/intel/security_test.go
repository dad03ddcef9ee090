package intel

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

func (s *stream) probe(e *Engine, ua, path string, status int, at time.Duration) {
	x := s.http("127.0.0.9:50000", "127.0.0.2:8080", "GET", path, status, t0.Add(at), time.Millisecond)
	x.HTTP.UserAgent = ua
	e.Exchange(x, svc("127.0.0.9"), svc("shop"))
}

func TestSuspiciousUserAgent(t *testing.T) {
	e := testEngine(nil)
	var s stream
	for i := 0; i < 100; i++ {
		s.probe(e, "sqlmap/1.8.2#stable (https://sqlmap.org)", fmt.Sprintf("/item?id=%d", i), 200, time.Duration(i)*100*time.Millisecond)
	}
	fs := concerns(e.Findings(t0.Add(time.Minute)), ConcernSuspiciousUserAgent)
	requireLen(t, "sqlmap", fs, 1)
	c := fs[0].SecurityConcern
	if c.SourceIP != netip.MustParseAddr("127.0.0.9") || c.DestService != "shop" || c.UserAgent == "" || fs[0].Subject.Name != "shop" || fs[0].Severity != SeverityMedium {
		t.Fatalf("concern = %+v", c)
	}
	// The next scan window reports it again (once).
	s.probe(e, "SQLMAP/1.8", "/", 200, 2*time.Minute)
	s.probe(e, "SQLMAP/1.8", "/", 200, 2*time.Minute+time.Second)
	requireLen(t, "next window", concerns(e.Findings(t0.Add(3*time.Minute)), ConcernSuspiciousUserAgent), 1)

	// Negative twin: ordinary clients.
	h := testEngine(nil)
	for i, ua := range []string{"curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "Go-http-client/1.1", "kube-probe/1.30"} {
		s.probe(h, ua, "/", 200, time.Duration(i)*time.Second)
	}
	requireLen(t, "benign agents", kinds(h.Findings(t0.Add(time.Minute)), KindSecurityConcern), 0)
}

func TestSuspiciousEndpoint(t *testing.T) {
	e := testEngine(nil)
	var s stream
	s.probe(e, "curl/8.5.0", "/.env", 404, 0)
	s.probe(e, "curl/8.5.0", "/.env", 404, 500*time.Millisecond)
	s.probe(e, "curl/8.5.0", "/.git/config", 404, time.Second)
	s.probe(e, "curl/8.5.0", "/app/.env", 404, 2*time.Second) // a dotfile matches at any depth
	s.probe(e, "curl/8.5.0", "/admin/users", 404, 3*time.Second)
	fs := concerns(e.Findings(t0.Add(time.Minute)), ConcernSuspiciousEndpoint)
	// One concern per sensitive endpoint pattern and source in the scan window.
	requireLen(t, "probes", fs, 3)
	for i, want := range []string{"/.env", "/.git/config", "/admin/users"} {
		if c := fs[i].SecurityConcern; c.TargetEndpoint != want || fs[i].Severity != SeverityMedium || c.SourceService != "127.0.0.9" {
			t.Fatalf("concern %d = %+v, want %s", i, c, want)
		}
	}
	// An answered probe is worse.
	e2 := testEngine(nil)
	s.probe(e2, "curl/8.5.0", "/.ENV", 200, 0)
	if fs := concerns(e2.Findings(t0.Add(time.Minute)), ConcernSuspiciousEndpoint); len(fs) != 1 || fs[0].Severity != SeverityHigh {
		t.Fatalf("answered probe = %+v", fs)
	}
	// Negative twin: paths that only share a prefix with a pattern, or hold its word in
	// another segment.
	h := testEngine(nil)
	for i, p := range []string{"/", "/environment", "/api/admins-list", "/administration", "/api/admin", "/static/git.png",
		"/login", "/.envoy/config", "/wp-administrator"} {
		s.probe(h, "curl/8.5.0", p, 200, time.Duration(i)*time.Second)
	}
	requireLen(t, "ordinary paths", kinds(h.Findings(t0.Add(time.Minute)), KindSecurityConcern), 0)
}

// Health checkers are never a concern, whatever they probe: kubelet's probes of a Spring
// actuator, a load balancer's checks of /admin/health.
func TestHealthProbesAreNoConcern(t *testing.T) {
	e := testEngine(func(o *Options) { o.SuspiciousEndpoints = append(o.SuspiciousEndpoints, "/actuator") })
	var s stream
	agents := []string{"kube-probe/1.29", "ELB-HealthChecker/2.0", "GoogleHC/1.0", "Consul Health Check"}
	for i := 0; i < 400; i++ {
		s.probe(e, agents[i%len(agents)], []string{"/actuator/health", "/admin/health", "/.well-known/ready"}[i%3], 200, time.Duration(i)*time.Second)
		e.Findings(t0.Add(time.Duration(i) * time.Second))
	}
	requireLen(t, "health probes", kinds(e.Findings(t0.Add(time.Hour)), KindSecurityConcern), 0)
	if c := e.Counters(); c.HealthProbes != 400 {
		t.Fatalf("counters = %+v", c)
	}
	// The same requests from another agent are concerns: the agent, not the path, is exempt.
	s.probe(e, "python-requests/2.31", "/actuator/health", 200, 2*time.Hour)
	if fs := concerns(e.Findings(t0.Add(3*time.Hour)), ConcernSuspiciousEndpoint); len(fs) != 1 || fs[0].SecurityConcern.TargetEndpoint != "/actuator/health" {
		t.Fatalf("non-probe agent = %+v", fs)
	}
}

// A scanner's user agent and each sensitive endpoint it requested are all reported, in
// whatever order its requests arrive.
func TestScannerAgentAndEndpointsBothReported(t *testing.T) {
	paths := []string{"/index.html", "/.env", "/robots.txt", "/.git/HEAD", "/wp-admin/"}
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {1, 0, 3, 2, 4}, {4, 3, 2, 1, 0}, {3, 1, 4, 0, 2}} {
		e := testEngine(nil)
		var s stream
		for i, j := range order {
			s.probe(e, "gobuster/3.6", paths[j], 404, time.Duration(i)*time.Millisecond)
		}
		fs := e.Findings(t0.Add(time.Second))
		requireLen(t, "user agent", concerns(fs, ConcernSuspiciousUserAgent), 1)
		eps := concerns(fs, ConcernSuspiciousEndpoint)
		var got []string
		for _, f := range eps {
			got = append(got, f.SecurityConcern.TargetEndpoint)
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"/.env", "/.git/HEAD", "/wp-admin/"}) {
			t.Fatalf("order %v: endpoints reported %v", order, got)
		}
	}
}

func TestEndpointEnumeration(t *testing.T) {
	e := testEngine(nil)
	var s stream
	for i := 0; i < 500; i++ {
		s.probe(e, "Mozilla/5.0", fmt.Sprintf("/word%d", i), 404, time.Duration(i)*10*time.Millisecond)
	}
	fs := concerns(e.Findings(t0.Add(time.Minute)), ConcernEnumeration)
	requireLen(t, "gobuster-like sweep", fs, 1)
	if c := fs[0].SecurityConcern; c.Count != uint64(e.opts.EnumerationThreshold) || fs[0].Severity != SeverityHigh {
		t.Fatalf("concern = %+v", c)
	}
	// Negative twins: one missing page requested many times; a few distinct 404s.
	h := testEngine(nil)
	for i := 0; i < 500; i++ {
		s.probe(h, "Mozilla/5.0", "/favicon.ico", 404, time.Duration(i)*10*time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		s.probe(h, "Mozilla/5.0", fmt.Sprintf("/old/%c", 'a'+i), 404, time.Duration(i)*time.Second)
	}
	requireLen(t, "repeated 404", kinds(h.Findings(t0.Add(time.Minute)), KindSecurityConcern), 0)
}

// sweep simulates a connect scan of ports [first, first+n) from 127.0.0.66: each closed port
// refuses the connect and the kernel sends a RST for it.
func sweep(e *Engine, first, n int, scanner string) {
	src := netip.MustParseAddr(scanner)
	for p := first; p < first+n; p++ {
		at := t0.Add(time.Duration(p-first) * time.Millisecond)
		dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p))
		local := netip.AddrPortFrom(src, uint16(40000+p%20000))
		name := fmt.Sprintf("127.0.0.1:%d", p)
		e.Conn(&capture.ConnEvent{Kind: capture.ConnFailed, Time: at, Reason: capture.FailureRefused,
			Socket: capture.Socket{Role: capture.RoleClient, Local: local, Remote: dst}}, svc("nmap"), svc(name))
		e.Conn(&capture.ConnEvent{Kind: capture.ConnResetSent, Time: at,
			Socket: capture.Socket{Local: dst, Remote: local}}, svc(scanner), svc(name))
	}
}

func TestPortScan(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	sweep(e, 1, 200, "127.0.0.66")
	fs := flushAll(e, t0.Add(time.Second))
	ps := concerns(fs, ConcernPortScan)
	requireLen(t, "200-port sweep", ps, 1)
	c := ps[0].SecurityConcern
	if c.SourceIP != netip.MustParseAddr("127.0.0.66") || c.Count != uint64(e.opts.PortScanThreshold) || ps[0].Severity != SeverityHigh {
		t.Fatalf("port scan = %+v", c)
	}
	// The refused connects of the scan are the port scan, not 200 connection failures.
	requireLen(t, "connection failures of a scan", kinds(fs, KindConnectionFailure), 0)
	if n := e.Counters().ConnFailuresFromScans; n != 200 {
		t.Fatalf("ConnFailuresFromScans = %d, want 200", n)
	}

	// Negative twin: a client retrying a few closed ports is no scan.
	h := testEngine(nil)
	h.Findings(t0)
	sweep(h, 8000, 5, "127.0.0.67")
	fs = flushAll(h, t0.Add(time.Second))
	requireLen(t, "few ports", concerns(fs, ConcernPortScan), 0)
	requireLen(t, "few ports fail", kinds(fs, KindConnectionFailure), 5)

	// A server resetting its own connections on many ports is not probing anyone.
	r := testEngine(nil)
	for p := 1; p <= 100; p++ {
		local := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p))
		r.Conn(&capture.ConnEvent{Kind: capture.ConnResetSent, Time: t0,
			Socket: capture.Socket{Role: capture.RoleServer, Local: local, Remote: netip.MustParseAddrPort("127.0.0.1:40000")}}, svc("127.0.0.1"), svc("app"))
	}
	requireLen(t, "server resets", kinds(flushAll(r, t0.Add(time.Second)), KindSecurityConcern), 0)
}

func TestUnauthorizedCommunication(t *testing.T) {
	e := testEngine(func(o *Options) {
		o.AllowedDependencies = [][2]string{{"frontend", "checkout"}, {"checkout", "*"}}
	})
	var s stream
	s.feed(e,
		call{from: "frontend", to: "checkout", path: "/", status: 200},
		call{from: "checkout", to: "payments", path: "/", status: 200},
		call{from: "frontend", to: "db", path: "/", status: 200},
		call{from: "frontend", to: "db", path: "/", status: 200, at: time.Second},
	)
	fs := concerns(e.Findings(t0.Add(time.Minute)), ConcernUnauthorized)
	requireLen(t, "frontend -> db", fs, 1)
	if c := fs[0].SecurityConcern; c.SourceService != "frontend" || c.DestService != "db" || fs[0].Severity != SeverityHigh || fs[0].Example == nil {
		t.Fatalf("concern = %+v", c)
	}
	// Still going on in the next scan window: reported again, once.
	s.feed(e,
		call{from: "frontend", to: "db", path: "/", status: 200, at: 2 * time.Minute},
		call{from: "frontend", to: "db", path: "/", status: 200, at: 2*time.Minute + time.Second},
	)
	fs = concerns(e.Findings(t0.Add(3*time.Minute)), ConcernUnauthorized)
	requireLen(t, "ongoing", fs, 1)
	if c := fs[0].SecurityConcern; c.Count != 3 {
		t.Fatalf("ongoing concern = %+v", c)
	}
	// Negative twin: no allow list, no concern.
	h := testEngine(nil)
	s.feed(h, call{from: "frontend", to: "db", path: "/", status: 200})
	requireLen(t, "no allow list", kinds(h.Findings(t0.Add(time.Minute)), KindSecurityConcern), 0)
}

// TestScannerKeptOutOfErrorPatterns: a directory sweep's 404s are the enumeration concern, not
// hundreds of error patterns, and do not fill the baselines; another client on the same
// address (one node: everyone is 127.0.0.1) still has its errors reported.
func TestScannerKeptOutOfErrorPatterns(t *testing.T) {
	e := testEngine(nil)
	var s stream
	e.Findings(t0)
	for i := 0; i < 1000; i++ {
		x := s.http("127.0.0.1:50000", "127.0.0.2:8080", "GET", fmt.Sprintf("/dir%d", i), 404, t0.Add(time.Duration(i)*time.Millisecond), time.Millisecond)
		x.HTTP.UserAgent = "gobuster/3.6"
		e.Exchange(x, svc("gobuster"), svc("shop"))
	}
	for i := 0; i < 3; i++ {
		x := s.http("127.0.0.1:50001", "127.0.0.2:8080", "GET", "/api/cart", 500, t0.Add(time.Duration(i)*time.Second), time.Millisecond)
		e.Exchange(x, svc("curl"), svc("shop"))
	}
	fs := e.Findings(t0.Add(10 * time.Second))
	eps := kinds(fs, KindErrorPattern)
	requireLen(t, "error patterns", eps, 1)
	if p := eps[0].ErrorPattern; p.Route != "/api/cart" || p.ErrorCount != 3 {
		t.Fatalf("error pattern = %+v", p)
	}
	requireLen(t, "user agent", concerns(fs, ConcernSuspiciousUserAgent), 1)
	if c := e.Counters(); c.ErrorsFromScanners != 1000 || c.Baselines > 1 {
		t.Fatalf("counters = %+v", c)
	}
}
