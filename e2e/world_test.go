//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The noisy world: a service with the shape of a real one (lognormal latency, 1% random
// 503s under steady load from several hey workers, kubelet probes, many client addresses)
// beside nine real faults. Every address is its own, in 127.0.15.0/24 (clients bind
// 127.0.16.0/24); the external host lives in a network namespace the test makes.
const (
	shopAddr     = "127.0.15.10:8080"
	catalog2Addr = "127.0.15.20:8080"
	authAddr     = "127.0.15.30:8080"
	gatewayAddr  = "127.0.15.40:8080"
	cartAddr     = "127.0.15.41:8080"
	stockAddr    = "127.0.15.42:8080"
	ordersAddr   = "127.0.15.50:8080"
	stockdbAddr  = "127.0.15.51:8080"
	poolAddr     = "127.0.15.60:8080"
	stuckAddr    = "127.0.15.70:8080"
	webAddr      = "127.0.15.80:8080"
	appAddr      = "127.0.15.81:8080"
	dbAddr       = "127.0.15.82:8080"
	worldDNS     = "127.0.15.53"

	// The external host, in the test's own network namespace. Its listeners sit behind a
	// DNAT to other ports, so the address a client calls is not an address a process on this
	// node listens on: seen from the node it is a remote peer, as a host elsewhere would be.
	extNetns     = "ni15-ext"
	extHostIf    = "ni15-h"
	extNsIf      = "ni15-n"
	extHostCIDR  = "198.51.100.1/24"
	uploadIP     = "198.51.100.2"
	uploadAddr   = uploadIP + ":9000"
	uploadListen = uploadIP + ":9001"
	partnerIP    = "198.51.100.3"
	partnerName  = "api.partner.example"
	partnerAddr  = partnerIP + ":80"
	partnerListn = partnerIP + ":8080"

	uploadBytes = 30 << 20
	noiseTime   = 55 * time.Second // the noisy load's length
	learnTime   = 20 * time.Second // before the faults: baselines learn
)

var worldServices = map[string]string{
	shopAddr: "shop", catalog2Addr: "catalog", authAddr: "auth",
	gatewayAddr: "gateway", cartAddr: "cart", stockAddr: "stock",
	ordersAddr: "orders", stockdbAddr: "stockdb", poolAddr: "pool", stuckAddr: "stuck",
	webAddr: "web", appAddr: "app", dbAddr: "db", worldDNS + ":53": "dns",
}

// externalNetwork makes the external host: a network namespace joined to the node by a veth
// pair (198.51.100.1 on the node, .2 and .3 inside), with the DNAT rules. It is removed at
// the end of the test.
func (s *scenario) externalNetwork() {
	t := s.t
	t.Helper()
	_, _ = s.run(10*time.Second, "ip", "netns", "del", extNetns) // left by an interrupted run
	_, _ = s.run(10*time.Second, "ip", "link", "del", extHostIf)
	in := func(argv ...string) []string { return append([]string{"ip", "netns", "exec", extNetns}, argv...) }
	for _, argv := range [][]string{
		{"ip", "netns", "add", extNetns},
		{"ip", "link", "add", extHostIf, "type", "veth", "peer", "name", extNsIf},
		{"ip", "link", "set", extNsIf, "netns", extNetns},
		{"ip", "addr", "add", extHostCIDR, "dev", extHostIf},
		{"ip", "link", "set", extHostIf, "up"},
		in("ip", "addr", "add", uploadIP+"/24", "dev", extNsIf),
		in("ip", "addr", "add", partnerIP+"/24", "dev", extNsIf),
		in("ip", "link", "set", extNsIf, "up"),
		in("ip", "link", "set", "lo", "up"),
		in("iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "-d", uploadIP, "--dport", "9000", "-j", "DNAT", "--to-destination", uploadListen),
		in("iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "-d", partnerIP, "--dport", "80", "-j", "DNAT", "--to-destination", partnerListn),
	} {
		if out, err := s.run(10*time.Second, argv...); err != nil {
			t.Fatalf("external network: %s: %v\n%s(iproute2 and iptables are installed by .ci/run)", strings.Join(argv, " "), err, out)
		}
	}
	t.Cleanup(func() {
		_, _ = s.run(10*time.Second, "ip", "netns", "del", extNetns) // takes the veth pair with it
		_, _ = s.run(10*time.Second, "ip", "link", "del", extHostIf)
	})
}

// worldDNSServer serves api.partner.example → 198.51.100.3 on 127.0.15.53, so the answer
// crosses the node where the collector sees it.
func (s *scenario) worldDNSServer() {
	s.t.Helper()
	s.startProcess("dnsmasq", "dnsmasq", "--no-daemon", "--keep-in-foreground", "--port", "53",
		"--listen-address", worldDNS, "--bind-interfaces", "--no-resolv", "--no-hosts",
		"--pid-file="+s.path("dnsmasq.pid"), "--local=/example/", "--address=/"+partnerName+"/"+partnerIP,
		"--log-facility=-")
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := s.run(5*time.Second, "dig", "@"+worldDNS, "+short", "+tries=1", "+time=1", partnerName)
		if err == nil && strings.Contains(out, partnerIP) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("dnsmasq on %s does not answer %s: %v %s", worldDNS, partnerName, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runWith runs a client with extra environment and stdin from a file.
func (s *scenario) runWith(timeout time.Duration, env []string, stdin string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 2 * time.Second
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			return "", err
		}
		defer f.Close()
		cmd.Stdin = f
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// load runs fn in the background until it returns; wait waits for all of them.
type load struct {
	wg  sync.WaitGroup
	mu  sync.Mutex
	log []string
}

func (l *load) goRun(name string, fn func() string) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		out := fn()
		l.mu.Lock()
		l.log = append(l.log, name+": "+out)
		l.mu.Unlock()
	}()
}

// userNames are the many clients' users: letter-only path segments a route must learn.
func userName(i int) string {
	syll := []string{"al", "be", "ca", "do", "el", "fa", "gi", "ho", "ir", "ju"}
	return syll[i%10] + syll[(i/10)%10] + "x"
}

func TestNoisyWorld(t *testing.T) {
	s := newScenario(t)
	s.externalNetwork()
	s.worldDNSServer()

	// The noisy service, and the services beside it.
	s.startRole("shop", roleShop, "", shopAddr, "addr", shopAddr)
	catalog := &latencyServer{Addr: catalog2Addr, Base: 10 * time.Millisecond, Slow: 90 * time.Millisecond, SlowPath: "/search"}
	s.startLatencyServer(catalog)
	s.startRole("auth", roleAuth, "", authAddr, "addr", authAddr, "failures", "3")
	s.nginx("stock", stockAddr, `
        location /stock/ { return 503 "out of stock\n"; }`)
	// The proxies keep their upstream connections alive, as a production nginx does (without,
	// a proxy at 10 req/s opens 10 connections a second: a no_connection_reuse of its own).
	s.nginxWith("cart", cartAddr, keepaliveUpstream("stock", stockAddr), `
        location /cart/ { proxy_pass http://stock/stock/; proxy_http_version 1.1; proxy_set_header Connection ""; }`)
	s.nginxWith("gateway", gatewayAddr, keepaliveUpstream("cart", cartAddr), `
        location /checkout/cart/ { proxy_pass http://cart/cart/; proxy_http_version 1.1; proxy_set_header Connection ""; }`)
	s.nginx("stockdb", stockdbAddr, `
        location /item/ { return 200 "item\n"; }`)
	s.startRole("orders", roleOrders, "", ordersAddr, "addr", ordersAddr, "stock", stockdbAddr, "fanout", "25")
	s.nginx("pool", poolAddr, `
        location / { return 200 "ok\n"; }`)
	s.startRole("stuck", roleStuck, "", stuckAddr, "addr", stuckAddr)
	s.nginx("db", dbAddr, `
        location / { return 200 "rows\n"; }`)
	s.nginx("app", appAddr, `
        location /db { proxy_pass http://`+dbAddr+`/; }
        location / { return 200 "app\n"; }`)
	s.nginx("web", webAddr, `
        location /app { proxy_pass http://`+appAddr+`/; }
        location /direct { proxy_pass http://`+dbAddr+`/; }`)
	s.startRole("upload-sink", roleSink, extNetns, uploadAddr, "addr", uploadListen, "mode", "raw")
	s.startRole("partner", roleSink, extNetns, partnerAddr, "addr", partnerListn, "mode", "http")
	upload := s.path("upload.bin")
	if err := os.WriteFile(upload, make([]byte, uploadBytes), 0o644); err != nil {
		t.Fatal(err)
	}

	s.startCollector(receiverConfig{
		Services: worldServices,
		Intelligence: map[string]any{
			"span_sampling":   0.01,
			"baseline_warmup": 20,
		},
		Security: map[string]any{
			"zones": []map[string]any{
				{"name": "web", "match": []string{"web"}},
				{"name": "app", "match": []string{appAddr}},
				{"name": "db", "match": []string{"127.0.15.82/32"}},
			},
			"allowed_zone_flows": []string{"web -> app", "app -> db"},
		},
	})
	began := time.Now()

	// --- the noise, for noiseTime ---------------------------------------------------------
	var bg load
	secs := fmt.Sprintf("%ds", int(noiseTime.Seconds()))
	bg.goRun("hey shop", func() string {
		out, err := s.run(noiseTime+30*time.Second, "hey", "-z", secs, "-c", "4", "-q", "25", "-t", "5", "http://"+shopAddr+"/api/items/123")
		return fmt.Sprintf("%v %s", err, clip(summaryLines(out), 400))
	})
	bg.goRun("hey catalog", func() string {
		out, err := s.run(noiseTime+30*time.Second, "hey", "-z", secs, "-c", "2", "-q", "10", "-t", "5", "http://"+catalog2Addr+"/search")
		return fmt.Sprintf("%v %s", err, clip(summaryLines(out), 400))
	})
	bg.goRun("hey catalog fast", func() string {
		out, err := s.run(noiseTime+30*time.Second, "hey", "-z", secs, "-c", "1", "-q", "10", "-t", "5", "http://"+catalog2Addr+"/fast")
		return fmt.Sprintf("%v %s", err, clip(summaryLines(out), 400))
	})
	bg.goRun("kube-probe", func() string {
		codes := map[string]int{}
		for time.Since(began) < noiseTime {
			out, _ := s.run(10*time.Second, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
				"-A", "kube-probe/1.29", "http://"+shopAddr+"/actuator/health")
			codes[out]++
			time.Sleep(time.Second)
		}
		return fmt.Sprint(codes)
	})
	bg.goRun("many clients", func() string {
		codes := map[string]int{}
		for i := 0; time.Since(began) < noiseTime; i++ {
			out, _ := s.run(10*time.Second, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
				"--interface", fmt.Sprintf("127.0.16.%d", 1+i%60), "http://"+shopAddr+"/api/users/"+userName(i))
			codes[out]++
			time.Sleep(500 * time.Millisecond)
		}
		return fmt.Sprint(codes)
	})

	time.Sleep(learnTime)

	// --- the faults, each once --------------------------------------------------------------
	faultsAt := time.Now()
	// 1. A latency shift: catalog's /search becomes 10× slower and stays so.
	if err := catalog.turnSlow(); err != nil {
		t.Fatal(err)
	}
	// 5. A client opening a connection per request, 20 a second for 10 s.
	bg.goRun("hey no keep-alive", func() string {
		out, err := s.run(60*time.Second, "hey", "-n", "200", "-c", "2", "-q", "10", "-disable-keepalive", "-t", "5", "http://"+poolAddr+"/")
		return fmt.Sprintf("%v %s", err, clip(summaryLines(out), 400))
	})
	// 2. A retrying client: 50 calls, each failing three times before it succeeds.
	bg.goRun("retry client", func() string {
		out, err := s.runWith(60*time.Second, []string{roleEnv + "=" + roleRetryClient, "WORLD_TARGET=" + authAddr,
			"WORLD_CALLS=50", "WORLD_RATE=10", "OTEL_SERVICE_NAME=mobile-bff"}, "", mustExecutable(t))
		return fmt.Sprintf("%v %s", err, clip(out, 200))
	})
	// 3. A failing chain: 40 distinct user requests through gateway → cart → stock (one
	// keep-alive curl, so no connection churn is part of it).
	var chain []string
	for i := 0; i < 40; i++ {
		chain = append(chain, fmt.Sprintf("http://%s/checkout/cart/%d", gatewayAddr, 1000+i))
	}
	out, _ := s.run(60*time.Second, append([]string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} ", "--max-time", "5"}, chain...)...)
	if strings.Count(out, "503") != 40 {
		t.Fatalf("the chain did not fail 40 times with 503: %q", out)
	}
	// 4. An N+1 caller: 10 orders, each fetching 25 items one by one.
	var orders []string
	for i := 0; i < 10; i++ {
		orders = append(orders, fmt.Sprintf("http://%s/orders/%d", ordersAddr, 7000+i))
	}
	out, _ = s.run(60*time.Second, append([]string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} ", "--max-time", "10"}, orders...)...)
	if strings.Count(out, "200") != 10 {
		t.Fatalf("orders did not answer 10 times: %q", out)
	}
	// 6. A stuck acceptor: six clients at once; the queue takes what its backlog holds, the
	// other SYNs go unanswered until the clients give up.
	var stuckWG sync.WaitGroup
	for i := 0; i < 6; i++ {
		stuckWG.Add(1)
		go func() {
			defer stuckWG.Done()
			_, _ = s.run(10*time.Second, "curl", "-s", "-o", "/dev/null", "--connect-timeout", "2", "--max-time", "3", "http://"+stuckAddr+"/")
		}()
	}
	stuckWG.Wait()
	// 7. A 30 MB upload to an external address.
	if out, err := s.runWith(60*time.Second, []string{"OTEL_SERVICE_NAME=backup-agent"}, upload, "busybox", "nc", uploadIP, "9000"); err != nil {
		t.Fatalf("upload: %v %s", err, out)
	}
	// 8. A call to an external name, resolved through the node's DNS traffic.
	s.mustRun(10*time.Second, "dig", "@"+worldDNS, "+tries=1", "+time=2", partnerName)
	if out := s.mustRun(10*time.Second, "curl", "-s", "--max-time", "5", "--resolve", partnerName+":80:"+partnerIP, "http://"+partnerName+"/v1/rates"); strings.TrimSpace(out) != "ok" {
		t.Fatalf("the partner API answered %q", out)
	}
	// 9. A forbidden zone flow web → db, beside the allowed web → app and app → db.
	for _, u := range []string{"http://" + webAddr + "/app", "http://" + appAddr + "/db", "http://" + webAddr + "/direct"} {
		if codes := s.curl(1, u); codes["200"] != 1 {
			t.Fatalf("%s: %v", u, codes)
		}
	}
	t.Logf("faults injected in %s", time.Since(faultsAt).Round(time.Second))

	// --- what must be reported, once each, with the right fields ----------------------------
	faults := worldFaults()
	s.eventually(60*time.Second, "each of the nine faults reported: "+faultNames(faults), func(o *output) (bool, string) {
		var missing []string
		for _, f := range faults {
			if len(o.matching(f.match)) == 0 {
				missing = append(missing, f.name)
			}
		}
		return len(missing) == 0, fmt.Sprintf("  missing: %v\n%s", missing, dumpLogs(o.logs))
	})
	bg.wg.Wait()
	for _, l := range bg.log {
		t.Logf("load %s", l)
	}
	time.Sleep(5 * time.Second) // two more flushes: a duplicate or a late false finding shows up
	o, err := readOutput(s.dir)
	if err != nil {
		t.Fatal(err)
	}

	detected := 0
	claimed := map[int]bool{}
	for _, f := range faults {
		recs := o.matching(f.match)
		for i := range o.logs {
			if f.match(o.logs[i]) {
				claimed[i] = true
			}
		}
		switch {
		case len(recs) == 0:
			t.Errorf("fault %q not reported", f.name)
		case len(recs) > f.most:
			t.Errorf("fault %q reported %d times (at most %d):\n%s", f.name, len(recs), f.most, dumpLogs(recs))
		default:
			if problem := f.check(recs); problem != "" {
				t.Errorf("fault %q reported with the wrong fields: %s\n%s", f.name, problem, dumpLogs(recs))
			} else {
				detected++
			}
		}
	}
	var false_, noise, outside []logRecord
	for i, r := range o.logs {
		switch {
		case claimed[i]:
		case !ofTheWorld(r):
			outside = append(outside, r) // the machine's own traffic (a go build, its resolver)
		case worldNoise(r):
			noise = append(noise, r)
		default:
			false_ = append(false_, r)
		}
	}
	if len(outside) > 0 {
		t.Logf("%d findings about traffic of this machine outside the test, not counted:\n%s", len(outside), dumpLogs(outside))
	}
	byEvent := map[string]int{}
	for _, r := range o.logs {
		byEvent[r.EventName]++
	}
	t.Logf("noisy world: %d findings %v; %d of %d faults detected with the right fields; %d false findings; %d expected others (dependencies, error patterns of real 503s); %d outside the test; %s in all",
		len(o.logs), byEvent, detected, len(faults), len(false_), len(noise), len(outside), time.Since(began).Round(time.Second))
	if len(false_) > 0 {
		t.Errorf("%d false findings in the noisy world:\n%s", len(false_), dumpLogs(false_))
	}
	// The many clients' user names were learned into one route.
	if n := o.metricTotal("http.server.request.duration", attrs{"service.name": "shop", "http.route": "/api/users/{id}"}); n < 20 {
		t.Errorf("the users' letter-only names were not learned as /api/users/{id} (%v requests):\n%s", n, o.dumpMetric("http.server.request.duration"))
	}
}

func mustExecutable(t *testing.T) string {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return self
}

// fault is one injected fault: which findings report it, how many may, and what they must say.
type fault struct {
	name  string
	most  int
	match func(r logRecord) bool
	check func(recs []logRecord) string
}

func faultNames(fs []fault) string {
	var n []string
	for _, f := range fs {
		n = append(n, f.name)
	}
	return strings.Join(n, ", ")
}

func (o *output) matching(match func(logRecord) bool) []logRecord {
	var out []logRecord
	for _, r := range o.logs {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

func str(r logRecord, key string) string { v, _ := attrAny(r.Attrs, key); return v }

func num(r logRecord, key string) float64 { v, _ := number(r.Attrs, key); return v }

func is(r logRecord, event string, want attrs) bool {
	return r.EventName == event && want.match(r.Service, r.Attrs)
}

const (
	evRetry  = "netintel.retry_storm"
	evChatty = "netintel.chatty_communication"
	evPool   = "netintel.connection_pool_exhaustion"
	evExfil  = "netintel.data_exfiltration"
)

func worldFaults() []fault {
	return []fault{
		{name: "latency shift", most: 1,
			match: func(r logRecord) bool {
				return is(r, evLatency, attrs{aDest: "catalog", "netintel.endpoint": "/search"})
			},
			check: func(recs []logRecord) string {
				r := recs[0]
				f, l, b := num(r, aFactor), num(r, aLatencyMS), num(r, aBaselineMS)
				if str(r, "netintel.quantile") == "" || f < 5 || f > 15 || l < 80 || b > 20 || num(r, "netintel.baseline_p50_ms") == 0 || num(r, "netintel.window_p50_ms") == 0 {
					return fmt.Sprintf("want a p50 shift from ~10 ms to ~100 ms (factor ~10), got quantile %q factor %.1f latency %.0f baseline %.0f", str(r, "netintel.quantile"), f, l, b)
				}
				return ""
			}},
		{name: "retrying client", most: 1,
			match: func(r logRecord) bool { return is(r, evRetry, attrs{aSource: "mobile-bff", aDest: "auth"}) },
			check: func(recs []logRecord) string {
				r := recs[0]
				if str(r, "netintel.endpoint") != "/token" || num(r, "netintel.attempts_per_call") < 3 || num(r, "netintel.attempts_per_call") > 5 ||
					num(r, "netintel.failure_ratio") < 0.6 || num(r, "netintel.failure_ratio") > 0.85 {
					return "want /token, ~4 attempts per call, ~75% failed"
				}
				return ""
			}},
		{name: "failing chain", most: 2, // two only when the 40 failures straddle a window boundary
			match: func(r logRecord) bool { return is(r, evErrors, attrs{aIsCascade: true, aRootCause: "stock"}) },
			check: func(recs []logRecord) string {
				var total float64
				for _, r := range recs {
					if str(r, aAffected) != "[stock cart gateway curl]" || str(r, "netintel.endpoint") != "/stock/{id}" || num(r, aHTTPStatus) != 503 {
						return "want affected [stock cart gateway curl], endpoint /stock/{id}, 503"
					}
					total += num(r, aErrorCount)
				}
				if total != 40 {
					return fmt.Sprintf("error_count %v at the named endpoint, want the 40 failed requests", total)
				}
				return ""
			}},
		{name: "N+1 caller", most: 1,
			match: func(r logRecord) bool { return is(r, evChatty, attrs{aSource: "orders", aDest: "stockdb"}) },
			check: func(recs []logRecord) string {
				r := recs[0]
				per, req, calls := num(r, "netintel.calls_per_request"), num(r, "netintel.request_count"), num(r, "netintel.call_count")
				if per < 20 || per > 30 || req < 5 || req > 10 || calls < 20*req || calls > 30*req {
					return fmt.Sprintf("want ~25 calls per request over 5-10 requests, got %.1f, %v requests, %v calls", per, req, calls)
				}
				return ""
			}},
		{name: "connection per request", most: 1,
			match: func(r logRecord) bool {
				return is(r, evPool, attrs{"netintel.reason": "no_connection_reuse", aSource: "hey", aDest: "pool"})
			},
			check: func(recs []logRecord) string {
				r := recs[0]
				if c, q := num(r, "netintel.connection_count"), num(r, "netintel.request_count"); c < 0.8*q || num(r, "netintel.connections_per_sec") < 10 {
					return fmt.Sprintf("want about one connection per request at ≥10/s, got %v connections for %v requests", c, q)
				}
				return ""
			}},
		{name: "stuck acceptor", most: 1,
			match: func(r logRecord) bool {
				return is(r, evPool, attrs{"netintel.reason": "accept_queue_full", aDest: "stuck"})
			},
			check: func(recs []logRecord) string {
				if n := num(recs[0], "netintel.unanswered_handshakes"); n < 3 {
					return fmt.Sprintf("%v unanswered handshakes", n)
				}
				return ""
			}},
		{name: "30 MB upload to an external address", most: 1,
			match: func(r logRecord) bool { return is(r, evExfil, attrs{aSource: "backup-agent"}) },
			check: func(recs []logRecord) string {
				r := recs[0]
				// The kernel's count may include the SYN and FIN of the connection's sequence space.
				if b := num(r, "netintel.bytes_sent"); str(r, aDest) != uploadAddr || b < uploadBytes || b > uploadBytes+2 ||
					num(r, "netintel.baseline_bytes") != 0 || str(r, "netintel.external") != "true" {
					return fmt.Sprintf("want %s, %d bytes, baseline 0", uploadAddr, uploadBytes)
				}
				return ""
			}},
		{name: "call to an external name", most: 1,
			match: func(r logRecord) bool {
				return is(r, evDependency, attrs{aDest: partnerName, "netintel.external": true})
			},
			check: func(recs []logRecord) string {
				if r := recs[0]; str(r, aSource) != "curl" || str(r, "netintel.dest_address") != partnerAddr {
					return "want curl calling " + partnerAddr
				}
				return ""
			}},
		{name: "forbidden zone flow", most: 1,
			match: func(r logRecord) bool {
				return is(r, evSecurity, attrs{aConcernType: "segmentation_violation"})
			},
			check: func(recs []logRecord) string {
				r := recs[0]
				if str(r, "netintel.source_zone") != "web" || str(r, "netintel.dest_zone") != "db" || str(r, aSource) != "web" || str(r, aDest) != "db" {
					return "want web (zone web) → db (zone db)"
				}
				return ""
			}},
	}
}

// worldNames are the services and clients of the noisy world: a finding that names none of
// them is about other traffic of the machine (CI machines have none; shared ones do).
var worldNames = func() map[string]bool {
	m := map[string]bool{"curl": true, "hey": true, "dig": true, "busybox": true, "mobile-bff": true, "backup-agent": true,
		"e2e.test": true, partnerName: true, uploadAddr: true, stuckAddr: true}
	for _, n := range worldServices {
		m[n] = true
	}
	return m
}()

func ofTheWorld(r logRecord) bool {
	return worldNames[r.Service] || worldNames[str(r, aSource)] || worldNames[str(r, aDest)]
}

// worldNoise is what the noisy world may report that is no fault: its dependencies (all of
// them new to the collector) and the error patterns of the errors it really has — shop's 1%
// random 503s and the retried calls' 503s at auth — none a cascade.
func worldNoise(r logRecord) bool {
	switch r.EventName {
	case evDependency:
		return str(r, "netintel.external") != "true" || str(r, aDest) == uploadAddr
	case evErrors:
		dest := str(r, aDest)
		return str(r, aIsCascade) == "false" && (dest == "shop" || dest == "auth") && num(r, aHTTPStatus) == 503
	}
	return false
}

func keepaliveUpstream(name, addr string) string {
	return "    upstream " + name + " { server " + addr + "; keepalive 4; }"
}
