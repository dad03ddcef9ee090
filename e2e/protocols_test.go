//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	h2webAddr    = "127.0.0.40"
	h2webPort    = "8090"
	greeterAddr  = "127.0.0.45:50051"
	routeGuide   = "127.0.0.1:50052" // route_guide's server listens on localhost only
	dnsAddr      = "127.0.0.53"
	grpcScratch  = "/tmp/grpcex"
	grpcBuildMax = 8 * time.Minute
)

func TestHTTP2(t *testing.T) {
	s := newScenario(t)
	docroot := s.path("htdocs")
	if err := os.MkdirAll(docroot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(docroot, "index.html"), []byte("<p>hello over h2c</p>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.startProcess("nghttpd", "nghttpd", "--no-tls", "-a", h2webAddr, "-d", docroot, h2webPort)
	s.waitTCP(h2webAddr + ":" + h2webPort)
	s.startCollector(receiverConfig{Services: map[string]string{h2webAddr + ":" + h2webPort: "h2web"}})

	const ok, missing = 40, 20
	base := "http://" + h2webAddr + ":" + h2webPort
	out := s.mustRun(60*time.Second, "h2load", "-n", fmt.Sprint(ok), "-c", "2", "-m", "4", base+"/index.html")
	if !strings.Contains(out, fmt.Sprintf("%d succeeded", ok)) {
		t.Fatalf("h2load /index.html did not succeed:\n%s", out)
	}
	s.mustRun(60*time.Second, "h2load", "-n", fmt.Sprint(missing), "-c", "1", "-m", "2", base+"/missing")

	s.eventually(60*time.Second, fmt.Sprintf("≥%d SERVER spans GET /index.html 200 and ≥%d GET /missing 404 in h2web (HTTP/2), and CLIENT spans for /missing with status Error", ok, missing),
		func(o *output) (bool, string) {
			good := o.spansOf(kindServer, attrs{"service.name": "h2web", aHTTPMethod: "GET", aURLPath: "/index.html", aHTTPStatus: 200, "network.protocol.version": "2"})
			notFound := o.spansOf(kindServer, attrs{"service.name": "h2web", aHTTPMethod: "GET", aURLPath: "/missing", aHTTPStatus: 404})
			var clientErrs int
			for _, sp := range o.spansOf(kindClient, attrs{aURLPath: "/missing", aHTTPStatus: 404}) {
				if sp.Status == statusError {
					clientErrs++
				}
			}
			found := fmt.Sprintf("  200 server spans: %d, 404 server spans: %d, 404 client spans with Error: %d\n%s", len(good), len(notFound), clientErrs, dumpSpans(o.spans))
			return len(good) >= ok && len(notFound) >= missing && clientErrs >= 1, found
		})
}

// buildGRPCExamples builds the grpc-go example binaries (once per machine) and returns
// their directory.
func buildGRPCExamples(s *scenario) string {
	s.t.Helper()
	s.mustRun(grpcBuildMax, filepath.Join(repoRoot, "e2e", "build-grpc.sh"), grpcScratch)
	return filepath.Join(grpcScratch, "bin")
}

func TestGRPC(t *testing.T) {
	s := newScenario(t)
	bin := buildGRPCExamples(s)
	s.startProcess("greeter_server", filepath.Join(bin, "greeter_server"), "-port", strings.Split(greeterAddr, ":")[1])
	s.startProcess("route_guide_server", filepath.Join(bin, "server"), "-port", strings.Split(routeGuide, ":")[1])
	s.waitTCP(greeterAddr)
	s.waitTCP(routeGuide)
	s.startCollector(receiverConfig{Services: map[string]string{greeterAddr: "greeter", routeGuide: "routeguide"}})

	const hellos = 5
	for i := 0; i < hellos; i++ {
		s.mustRun(30*time.Second, filepath.Join(bin, "greeter_client"), "-addr", greeterAddr, "-name", fmt.Sprintf("e2e-%d", i))
	}
	s.mustRun(60*time.Second, filepath.Join(bin, "client"), "-addr", routeGuide)
	// The greeter client against route_guide's server: the method does not exist there.
	if out, err := s.run(30*time.Second, filepath.Join(bin, "greeter_client"), "-addr", routeGuide); err == nil || !strings.Contains(out, "Unimplemented") {
		t.Fatalf("expected greeter_client against route_guide to fail with Unimplemented, got %v:\n%s", err, out)
	}

	s.eventually(60*time.Second, fmt.Sprintf("≥%d SERVER spans rpc.method=SayHello status OK in greeter; route_guide's GetFeature, ListFeatures, RecordRoute, RouteChat; SayHello UNIMPLEMENTED (12) with status Error in routeguide", hellos),
		func(o *output) (bool, string) {
			var found strings.Builder
			ok := true
			hello := o.spansOf(kindServer, attrs{"service.name": "greeter", aRPCMethod: rpcMethod("helloworld.Greeter", "SayHello"), aGRPCStatus: oneOf{"0", "OK"}})
			fmt.Fprintf(&found, "  greeter SayHello OK server spans: %d\n", len(hello))
			ok = ok && len(hello) >= hellos
			// Unary, server-streaming, client-streaming and bidirectional calls, all OK.
			for _, m := range []string{"GetFeature", "ListFeatures", "RecordRoute", "RouteChat"} {
				all := o.spansOf(kindServer, attrs{"service.name": "routeguide", aRPCMethod: rpcMethod("routeguide.RouteGuide", m)})
				var good int
				for _, sp := range all {
					// ListFeatures' server writes its whole stream, 64 messages and the
					// trailers (66 frames), in one 6 KB write: the kernel walks all of it, so
					// the trailers' status is seen there too.
					st, _ := attrAny(sp.Attrs, strings.Split(aGRPCStatus, "|")...)
					if (st == "0" || st == "OK") && sp.Status != statusError {
						good++
					}
				}
				fmt.Fprintf(&found, "  routeguide %s server spans: %d, with status OK: %d\n", m, len(all), good)
				ok = ok && good >= 1 && good == len(all)
			}
			var unimpl int
			for _, sp := range o.spansOf("", attrs{"service.name": "routeguide", aRPCMethod: rpcMethod("helloworld.Greeter", "SayHello"), aGRPCStatus: oneOf{"12", "UNIMPLEMENTED"}}) {
				if sp.Status == statusError {
					unimpl++
				}
			}
			fmt.Fprintf(&found, "  routeguide SayHello UNIMPLEMENTED error spans: %d\n", unimpl)
			ok = ok && unimpl >= 1
			if !ok {
				found.WriteString(dumpSpans(o.spans))
			}
			return ok, found.String()
		})
}

func TestDNS(t *testing.T) {
	s := newScenario(t)
	s.dnsmasq(dnsAddr)
	s.startCollector(receiverConfig{Services: map[string]string{dnsAddr + ":53": "dns"}})
	const found, missing = 5, 3
	for i := 0; i < found; i++ {
		s.mustRun(10*time.Second, "dig", "@"+dnsAddr, "+tries=1", "+time=2", "svc.test")
	}
	for i := 0; i < missing; i++ {
		out := s.mustRun(10*time.Second, "dig", "@"+dnsAddr, "+tries=1", "+time=2", "missing.test")
		if !strings.Contains(out, "NXDOMAIN") {
			t.Fatalf("dnsmasq should answer NXDOMAIN for missing.test:\n%s", out)
		}
	}

	// dig is a local client, so each query is a CLIENT span too (dig sends with sendmmsg(2)).
	s.eventually(60*time.Second, fmt.Sprintf("≥%d DNS CLIENT spans svc.test NOERROR, %d missing.test NXDOMAIN with status Error", found, missing),
		func(o *output) (bool, string) {
			ok := o.spansOf(kindClient, attrs{aDNSName: "svc.test", aDNSRCode: oneOf{"NOERROR", "0"}})
			var nx []span
			for _, sp := range o.spansOf(kindClient, attrs{aDNSName: "missing.test", aDNSRCode: oneOf{"NXDOMAIN", "3"}}) {
				if sp.Status == statusError {
					nx = append(nx, sp)
				}
			}
			return len(ok) >= found && len(nx) == missing,
				fmt.Sprintf("  svc.test NOERROR: %d, missing.test NXDOMAIN errors: %d\n%s", len(ok), len(nx), dumpSpans(o.spans))
		})
	s.eventually(30*time.Second, fmt.Sprintf("NXDOMAIN counted as errors: error_pattern events for dest dns adding up to %d", missing),
		func(o *output) (bool, string) {
			recs := o.events(evErrors, attrs{aDest: "dns"})
			return sumAttr(recs, aErrorCount) == missing, o.dumpEvents(evErrors)
		})
}

// rpcMethod matches rpc.method in either convention: the fully-qualified
// "pkg.Service/Method" of current semantic conventions, or the bare method of older ones.
func rpcMethod(service, method string) oneOf {
	return oneOf{service + "/" + method, method}
}
