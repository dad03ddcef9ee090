// Package e2e proves netintel on real traffic: the built distribution (dist/otelcol-netintel)
// runs as root with a file exporter while real servers and clients from Debian packages
// (nginx, haproxy, nghttpd, h2load, dnsmasq, dig, curl, hey), real scanners (nmap, sqlmap,
// gobuster) and real container runtimes (dockerd, containerd's ctr) talk over 127.0.0.0/8;
// each scenario asserts on the OTLP the collector wrote to
// e2e/out/<TestName>/{logs,traces,metrics}.json, and a failing one prints what it expected
// and a compact dump of what it found.
//
// Scenarios and their addresses:
//
//	TestTopology, TestCascade  curl → haproxy 127.0.0.20:8080 → nginx 127.0.0.21:8081 → nginx 127.0.0.22:8082
//	TestLatency                hey → this test binary re-run as a backend on 127.0.0.30:8083
//	TestHTTP2                  h2load → nghttpd --no-tls on 127.0.0.40:8090
//	TestGRPC                   grpc-go helloworld on 127.0.0.45:50051, route_guide on 127.0.0.1:50052
//	TestDNS                    dig → dnsmasq on 127.0.0.53:53
//	TestSecurity               sqlmap, gobuster → nginx 127.0.0.61:8085; nmap -sT → 127.0.0.60
//	TestFaults                 20k short connections → nginx 127.0.0.70:8086; SIGTERM; no programs left
//	TestNaming                 no services map: wget per request in Docker container shop-web → busybox
//	                           httpd in Docker shop-api 127.0.0.131:8131 and ledger-box 127.0.0.132:8132
//	                           (OTEL_SERVICE_NAME=ledger), in a CRI-annotated ctr container of pod
//	                           shop/checkout-7d9f8b6c5-x2k4q 127.0.0.133:8133, and a host nginx 127.0.0.134:8134;
//	                           dockerd and containerd are started when none runs
//	TestNamingFromAPod         the same with the collector in a container as the DaemonSet runs it:
//	                           hostPID, own network namespace, host paths read-only under /host
//	TestNoisyWorld             127.0.15.0/24 (clients from 127.0.16.0/24): a noisy service (lognormal
//	                           latency, 1% 503s, kube-probes) beside nine faults — a latency shift, a
//	                           retrying client, a failing nginx chain, an N+1 caller, a client without
//	                           keep-alive, a stuck acceptor, a 30 MB upload and a call by name to an
//	                           external host (198.51.100.0/24 in network namespace ni15-ext), and a
//	                           forbidden zone flow; each reported once, no false finding (~65 s)
//
// Servers start before the collector, so their readiness probes stay out of the findings.
// The scenarios carry the build tag e2e: run them with `make e2e`
// (go test -tags e2e -count=1 -timeout 20m ./e2e/...) after `make dist`; NETINTEL_COLLECTOR
// points them at another build of the collector.
package e2e
