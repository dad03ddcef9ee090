// Package e2e proves netintel on real traffic: the built distribution (dist/otelcol-netintel)
// runs as root with a file exporter while real servers and clients from Debian packages
// (nginx, haproxy, nghttpd, h2load, dnsmasq, dig, curl, hey) and real scanners (nmap, sqlmap,
// gobuster) talk over 127.0.0.0/8; each scenario asserts on the OTLP the collector wrote.
//
// The scenarios carry the build tag e2e: run them with `make e2e`
// (go test -tags e2e -count=1 -timeout 20m ./e2e/...) after `make dist`.
package e2e
