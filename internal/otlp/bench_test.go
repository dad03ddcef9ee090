package otlp

import (
	"fmt"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/intel"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// Per-exchange costs of the output stage: go test -bench . -benchmem ./internal/otlp

func BenchmarkAppendSpansHTTP(b *testing.B) {
	xs := make([]*l7.Exchange, 256)
	for i := range xs {
		side := l7.SideClient
		if i%2 == 1 {
			side = l7.SideServer
		}
		xs[i] = httpExchange(side, "1.1", "GET", fmt.Sprintf("/api/users/%d", i), 200)
		xs[i].RequestSeq += uint32(i * 100)
	}
	tb := NewTraceBuilder(Privacy{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tb.Append(xs[i%len(xs)], frontend, checkout, 0.01)
		if tb.Len() == 512 { // the receiver's batch size
			tb.Traces()
		}
	}
}

func BenchmarkAppendSpansGRPC(b *testing.B) {
	x := grpcExchange(l7.SideServer, 0, "OK")
	tb := NewTraceBuilder(Privacy{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tb.Append(x, frontend, checkout, 1)
		if tb.Len() == 512 {
			tb.Traces()
		}
	}
}

func BenchmarkMetricsExchangeHTTP(b *testing.B) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	xs := make([]*l7.Exchange, 64)
	for i := range xs {
		side := l7.SideClient
		if i%2 == 1 {
			side = l7.SideServer
		}
		xs[i] = httpExchange(side, "1.1", "GET", fmt.Sprintf("/api/users/%d", i), 200+i%2*300)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Exchange(xs[i%len(xs)], frontend, checkout)
	}
}

func BenchmarkMetricsExchangeDNS(b *testing.B) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	x := dnsExchange(l7.SideClient, 0, "NOERROR")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Exchange(x, frontend, resolver)
	}
}

func BenchmarkMetricsEmit1000Series(b *testing.B) {
	// Series that never go stale in the run (Emit every simulated second).
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes, StaleAfter: 1 << 62})
	for i := 0; i < 1000; i++ {
		m.Exchange(httpExchange(l7.SideServer, "1.1", "GET", fmt.Sprintf("/r%c/%c", 'a'+i%26, 'a'+i/26), 200), frontend, checkout)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Emit(t0.Add(time.Duration(i)*time.Second), nil)
	}
}

func BenchmarkLogsPerFinding(b *testing.B) {
	fs := make([]intel.Finding, 100)
	for i := range fs {
		fs[i] = intel.Finding{Kind: intel.KindErrorPattern, Time: t0, Severity: intel.SeverityHigh, Subject: checkout,
			ErrorPattern: &intel.ErrorPattern{Edge: intel.EdgeKey{Source: "frontend", Dest: "checkout", Protocol: "http", Port: 8080},
				Method: "POST", Route: "/api/checkout", StatusCode: 503, Status: "503", ErrorCount: 45}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(fs) {
		Logs(fs)
	}
}
