//go:build e2e

package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The three-tier shop used by the topology and cascade scenarios:
// curl → haproxy (frontend) → nginx (api, proxy_pass) → nginx (inventory).
const (
	frontendAddr  = "127.0.0.20:8080"
	apiAddr       = "127.0.0.21:8081"
	inventoryAddr = "127.0.0.22:8082"
)

var shopServices = map[string]string{
	frontendAddr:  "frontend",
	apiAddr:       "api",
	inventoryAddr: "inventory",
}

// shopEdges are the calls between local services, client first.
var shopEdges = [][2]string{{"frontend", "api"}, {"api", "inventory"}}

func (s *scenario) startShop() {
	s.t.Helper()
	s.nginx("inventory", inventoryAddr, `
        location /stock { return 503; }
        location / { return 200 "inventory ok\n"; }`)
	s.nginx("api", apiAddr, `
        location / { proxy_pass http://`+inventoryAddr+`; }`)
	s.haproxy("frontend", frontendAddr, apiAddr)
}

func TestTopology(t *testing.T) {
	s := newScenario(t)
	s.startShop()
	s.startCollector(receiverConfig{Services: shopServices})

	const n = 20
	if codes := s.curl(n, "http://"+frontendAddr+"/items"); codes["200"] != n {
		t.Fatalf("the shop itself is broken: %d requests answered %v", n, codes)
	}

	s.eventually(60*time.Second, "a service_dependency event for each edge frontend→api, api→inventory (named by the services map), and one into frontend",
		func(o *output) (bool, string) {
			for _, e := range shopEdges {
				if len(o.events(evDependency, attrs{aSource: e[0], aDest: e[1]})) == 0 {
					return false, o.dumpEvents(evDependency)
				}
			}
			return len(o.events(evDependency, attrs{aDest: "frontend"})) > 0, o.dumpEvents(evDependency)
		})

	s.eventually(60*time.Second, fmt.Sprintf("≥%d CLIENT spans per edge, each paired with a SERVER span (same trace id, server parent = client span id), GET /items 200", n),
		func(o *output) (bool, string) {
			var found strings.Builder
			ok := true
			for _, e := range shopEdges {
				paired, clients, servers := o.pairs(e[0], e[1], attrs{aHTTPMethod: "GET", aURLPath: "/items", aHTTPStatus: 200})
				fmt.Fprintf(&found, "edge %s→%s: %d paired; client spans:\n%sserver spans:\n%s", e[0], e[1], paired, dumpSpans(clients), dumpSpans(servers))
				if paired < n {
					ok = false
				}
			}
			if !ok {
				fmt.Fprintf(&found, "all spans:\n%s", dumpSpans(o.spans))
			}
			return ok, found.String()
		})

	s.eventually(30*time.Second, fmt.Sprintf("exact RED counts: http.server.request.duration{http.route=/items, 200} = %d in frontend, api and inventory", n),
		func(o *output) (bool, string) {
			for _, svc := range []string{"frontend", "api", "inventory"} {
				if o.metricTotal("http.server.request.duration", attrs{"service.name": svc, "http.route": "/items", aHTTPStatus: 200}) != n {
					return false, o.dumpMetric("http.server.request.duration")
				}
			}
			return true, ""
		})
	o := s.eventually(30*time.Second, "service-graph request counts ≥ n for each edge (traces_service_graph_request_total{client,server})",
		func(o *output) (bool, string) {
			for _, e := range shopEdges {
				if o.metricTotal("traces_service_graph_request_total", attrs{"client": e[0], "server": e[1]}) < n {
					return false, o.dumpMetric("traces_service_graph_request_total")
				}
			}
			return true, ""
		})
	s.never(o, "error spans in a healthy topology", func(o *output) (int, string) {
		bad := o.spansOf("", attrs{"service.name": oneOf{"frontend", "api", "inventory"}})
		var errs []span
		for _, sp := range bad {
			if sp.Status == statusError {
				errs = append(errs, sp)
			}
		}
		return len(errs), dumpSpans(errs)
	})
}

func TestCascade(t *testing.T) {
	s := newScenario(t)
	// A 5 s error window, so the burst of failures most likely falls in one window.
	s.startShop()
	s.startCollector(receiverConfig{Services: shopServices, Intelligence: map[string]any{"flush_interval": "5s"}})

	// Healthy first, so the edges exist; then inventory's /stock fails and the 503
	// propagates through api and frontend to the client.
	if codes := s.curl(5, "http://"+frontendAddr+"/items"); codes["200"] != 5 {
		t.Fatalf("the shop itself is broken: %v", codes)
	}
	const failed = 12
	if codes := s.curl(failed, "http://"+frontendAddr+"/stock"); codes["503"] != failed {
		t.Fatalf("expected %d × 503 from /stock through the chain, got %v", failed, codes)
	}

	cascades := attrs{aIsCascade: true}
	s.eventually(60*time.Second, "a cascade error_pattern: is_cascade=true, root_cause_service=inventory, affected_services=[inventory api frontend …]",
		func(o *output) (bool, string) {
			return len(o.events(evErrors, cascades)) > 0, o.dumpEvents(evErrors)
		})
	// Give the pipeline two more windows to emit a duplicate, if it would.
	time.Sleep(12 * time.Second)
	s.eventually(5*time.Second, fmt.Sprintf("one cascade finding (two only if the %d failures straddled a window boundary, then in adjacent windows): root cause inventory, affected services in order from the root cause, error_count = the %d failed requests at the endpoint it names, and each hop of netintel.cascade_path carrying %d", failed, failed, failed),
		func(o *output) (bool, string) {
			all := o.events(evErrors, cascades)
			found := dumpLogs(all)
			if len(all) == 0 || len(all) > 2 {
				return false, found
			}
			if len(all) == 2 {
				end, _ := attrAny(all[0].Attrs, "netintel.window_end")
				start, _ := attrAny(all[1].Attrs, "netintel.window_start")
				if end != start {
					return false, "  two cascade findings in windows that do not touch:\n" + found
				}
			}
			var counted, expected float64
			hopErrors := map[string]int{}
			for _, r := range all {
				root, _ := attrAny(r.Attrs, aRootCause)
				affected, _ := attrAny(r.Attrs, aAffected)
				if root != "inventory" || !strings.HasPrefix(affected, "[inventory api frontend") {
					return false, found
				}
				hops, _ := r.Attrs["netintel.cascade_path"].([]any)
				for _, h := range hops {
					// "caller->callee:errors"
					if i := strings.LastIndexByte(fmt.Sprint(h), ':'); i >= 0 {
						n, _ := strconv.Atoi(fmt.Sprint(h)[i+1:])
						hopErrors[fmt.Sprint(h)[:i]] += n
					}
				}
				n, _ := number(r.Attrs, aErrorCount)
				counted += n
			}
			expected = failed
			for _, e := range shopEdges {
				if hopErrors[e[0]+"->"+e[1]] != failed {
					return false, fmt.Sprintf("  hop counts %v, want %d on each of %v\n%s", hopErrors, failed, shopEdges, found)
				}
			}
			return counted == expected, fmt.Sprintf("  error_count %v, expected %v\n%s", counted, expected, found)
		})

	s.eventually(30*time.Second, fmt.Sprintf("every failed request counted on every hop: traces_service_graph_request_failed_total = %d for frontend→api and api→inventory", failed),
		func(o *output) (bool, string) {
			for _, e := range shopEdges {
				if o.metricTotal("traces_service_graph_request_failed_total", attrs{"client": e[0], "server": e[1]}) != failed {
					return false, o.dumpMetric("traces_service_graph_request_failed_total")
				}
			}
			return true, ""
		})

	s.eventually(30*time.Second, fmt.Sprintf("≥%d error spans with 503 on both sides of api→inventory and frontend→api", failed),
		func(o *output) (bool, string) {
			var found strings.Builder
			ok := true
			for _, e := range shopEdges {
				for _, side := range []struct{ kind, svc string }{{kindClient, e[0]}, {kindServer, e[1]}} {
					sp := o.spansOf(side.kind, attrs{"service.name": side.svc, aHTTPStatus: 503, aURLPath: "/stock"})
					var errs int
					for _, x := range sp {
						if x.Status == statusError {
							errs++
						}
					}
					fmt.Fprintf(&found, "%s spans of %s with 503: %d, status Error: %d\n", side.kind, side.svc, len(sp), errs)
					if errs < failed {
						ok = false
						found.WriteString(dumpSpans(sp))
					}
				}
			}
			return ok, found.String()
		})
}
