package otlp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/intel"
)

func TestLogsPerFindingKind(t *testing.T) {
	edge := intel.EdgeKey{Source: "frontend", Dest: "checkout", Protocol: "http", Port: 8080}
	example := &intel.ExchangeRef{TraceID: [16]byte{1, 2, 3}, SpanID: [8]byte{4, 5, 6}}

	tests := []struct {
		name     string
		f        intel.Finding
		event    string
		severity plog.SeverityNumber
		sevText  string
		resource string
		body     string
		want     map[string]any
	}{
		{
			name: "service dependency",
			f: intel.Finding{Kind: intel.KindServiceDependency, Severity: intel.SeverityInfo, Subject: frontend,
				Dependency: &intel.Dependency{Edge: edge, FirstSeen: t0, RequestCount: 1523}},
			event: "netintel.service_dependency", severity: plog.SeverityNumberInfo, sevText: "INFO", resource: "frontend",
			body: "frontend depends on checkout (http port 8080), first seen 2026-11-29T10:00:00Z, 1523 requests",
			want: map[string]any{
				attrNISourceService: "frontend", attrNIDestService: "checkout", attrNIProtocol: "http",
				attrNIPort: int64(8080), attrServerPort: int64(8080), attrNIFirstSeen: "2026-11-29T10:00:00Z",
				attrNIRequestCount: int64(1523), attrProtocolName: "http", attrTransport: "tcp", attrNISeverity: "info",
			},
		},
		{
			name: "error pattern in a cascade",
			f: intel.Finding{Kind: intel.KindErrorPattern, Severity: intel.SeverityHigh, Subject: checkout, Example: example,
				ErrorPattern: &intel.ErrorPattern{Edge: edge, Method: "POST", Route: "/api/checkout", StatusCode: 503,
					Status: "503", ErrorCount: 45, WindowStart: t0, WindowEnd: t0.Add(30 * time.Second),
					IsCascade: true, RootCause: "inventory", AffectedServices: []string{"inventory", "payment", "checkout"},
					Path: []intel.CascadeHop{{Edge: intel.EdgeKey{Source: "payment", Dest: "inventory"}, Errors: 45}, {Edge: intel.EdgeKey{Source: "checkout", Dest: "payment"}, Errors: 44}}}},
			event: "netintel.error_pattern", severity: plog.SeverityNumberError, sevText: "HIGH", resource: "checkout",
			body: "cascading failure: 45 × 503 on POST /api/checkout from frontend; root cause inventory, affected inventory → payment → checkout",
			want: map[string]any{
				attrNIEndpoint: "/api/checkout", attrHTTPRoute: "/api/checkout", attrHTTPMethod: "POST", attrNIMethod: "POST",
				attrHTTPStatus: int64(503), attrNIStatusCode: int64(503), attrErrorType: "503", attrNIErrorCount: int64(45),
				attrNIIsCascade: true, attrNIRootCause: "inventory",
				attrNIAffected:    []any{"inventory", "payment", "checkout"},
				attrNICascadePath: []any{"payment->inventory:45", "checkout->payment:44"},
				attrNIWindowStart: "2026-11-29T10:00:00Z", attrNIWindowEnd: "2026-11-29T10:00:30Z",
			},
		},
		{
			name: "gRPC error pattern without cascade",
			f: intel.Finding{Kind: intel.KindErrorPattern, Severity: intel.SeverityMedium, Subject: checkout,
				ErrorPattern: &intel.ErrorPattern{Edge: intel.EdgeKey{Source: "frontend", Dest: "checkout", Protocol: "grpc", Port: 9090},
					Route: "shop.Checkout/PlaceOrder", StatusCode: 14, Status: "UNAVAILABLE", ErrorCount: 3}},
			event: "netintel.error_pattern", severity: plog.SeverityNumberWarn3, sevText: "MEDIUM", resource: "checkout",
			body: "3 × UNAVAILABLE on checkout shop.Checkout/PlaceOrder (called by frontend)",
			want: map[string]any{
				attrRPCMethod: "shop.Checkout/PlaceOrder", attrNIStatusCode: int64(14), attrErrorType: "UNAVAILABLE",
				attrNIIsCascade: false, attrNIAffected: []any{"checkout"},
			},
		},
		{
			name: "latency shift",
			f: intel.Finding{Kind: intel.KindLatencyAnomaly, Severity: intel.SeverityHigh, Subject: checkout, Example: example,
				LatencyAnomaly: &intel.LatencyAnomaly{Edge: intel.EdgeKey{Source: "web", Dest: "search", Protocol: "http", Port: 80},
					Method: "GET", Route: "/api/search", Quantile: "p50", Latency: 3500 * time.Millisecond, Baseline: 250 * time.Millisecond,
					DeviationFactor: 14, Samples: 500, WindowSamples: 80,
					Before: intel.Quantiles{P50: 250 * time.Millisecond, P95: 400 * time.Millisecond, P99: 900 * time.Millisecond},
					After:  intel.Quantiles{P50: 3500 * time.Millisecond}}},
			event: "netintel.latency_anomaly", severity: plog.SeverityNumberError, sevText: "HIGH", resource: "checkout",
			body: "latency shift: search GET /api/search p50 is 3500 ms, 14.0× its 250 ms baseline, over 80 requests (called by web)",
			want: map[string]any{
				attrNIEndpoint: "/api/search", attrNILatencyMs: 3500.0, attrNIBaselineMs: 250.0, attrNIDeviationFactor: 14.0,
				attrNISourceService: "web", attrNIDestService: "search", attrNIBaselineSamples: int64(500),
				attrNIQuantile: "p50", attrNIWindowSamples: int64(80), attrNIBaselineP50: 250.0, attrNIBaselineP95: 400.0,
				attrNIBaselineP99: 900.0, attrNIWindowP50: 3500.0, attrNIWindowP95: nil,
			},
		},
		{
			name: "slow request",
			f: intel.Finding{Kind: intel.KindLatencyAnomaly, Severity: intel.SeverityHigh, Subject: checkout,
				LatencyAnomaly: &intel.LatencyAnomaly{Edge: intel.EdgeKey{Source: "web", Dest: "search", Protocol: "http", Port: 80},
					Method: "GET", Route: "/api/export", Latency: 2500 * time.Millisecond}},
			event: "netintel.latency_anomaly", severity: plog.SeverityNumberError, sevText: "HIGH", resource: "checkout",
			body: "slow request: search GET /api/export took 2500 ms (called by web)",
			want: map[string]any{attrNILatencyMs: 2500.0, attrNIBaselineMs: 0.0, attrNIQuantile: nil},
		},
		{
			name: "security concern",
			f: intel.Finding{Kind: intel.KindSecurityConcern, Severity: intel.SeverityHigh, Subject: checkout,
				SecurityConcern: &intel.SecurityConcern{Type: intel.ConcernSuspiciousUserAgent,
					SourceIP: netip.MustParseAddr("127.0.0.99"), DestService: "checkout",
					DestAddr: netip.MustParseAddrPort("127.0.0.20:8080"), UserAgent: "sqlmap/1.5",
					TargetEndpoint: "/api/users", Count: 12}},
			event: "netintel.security_concern", severity: plog.SeverityNumberError, sevText: "HIGH", resource: "checkout",
			body: `high security concern: suspicious user agent "sqlmap/1.5" from 127.0.0.99 on /api/users`,
			want: map[string]any{
				attrNIConcernType: "suspicious_user_agent", attrNISourceIP: "127.0.0.99", attrClientAddress: "127.0.0.99",
				attrUserAgent: "sqlmap/1.5", attrNIUserAgent: "sqlmap/1.5", attrNITargetEndpoint: "/api/users",
				attrNISeverity: "high", attrNIBlocked: false, attrServerAddress: "127.0.0.20", attrServerPort: int64(8080),
				attrNICount: int64(12), attrNIDestService: "checkout",
			},
		},
		{
			name: "port scan from an address with no local process",
			f: intel.Finding{Kind: intel.KindSecurityConcern, Severity: intel.SeverityCritical, Subject: identity.Service{Name: "127.0.0.99"},
				SecurityConcern: &intel.SecurityConcern{Type: intel.ConcernPortScan, SourceIP: netip.MustParseAddr("::ffff:127.0.0.99"), Count: 40}},
			event: "netintel.security_concern", severity: plog.SeverityNumberFatal, sevText: "CRITICAL", resource: "127.0.0.99",
			body: "critical security concern: 127.0.0.99 probed 40 ports",
			want: map[string]any{attrNIConcernType: "port_scan", attrNISourceIP: "127.0.0.99", attrNICount: int64(40),
				attrNISeverity: "critical", attrNIBlocked: false},
		},
		{
			name: "connection failure",
			f: intel.Finding{Kind: intel.KindConnectionFailure, Severity: intel.SeverityMedium, Subject: frontend,
				ConnectionFailure: &intel.ConnectionFailure{Edge: intel.EdgeKey{Source: "frontend", Dest: "127.0.0.20:9999", Protocol: "tcp", Port: 9999},
					Reason: "refused", Count: 7}},
			event: "netintel.connection_failure", severity: plog.SeverityNumberWarn3, sevText: "MEDIUM", resource: "frontend",
			body: "7 connections from frontend to 127.0.0.20:9999 (port 9999) failed: refused",
			want: map[string]any{attrNIReason: "refused", attrErrorType: "refused", attrNIFailureCount: int64(7), attrTransport: "tcp"},
		},
		{
			name: "retry storm",
			f: intel.Finding{Kind: intel.KindRetryStorm, Severity: intel.SeverityCritical, Subject: frontend,
				RetryStorm: &intel.RetryStorm{Edge: edge, Method: "GET", Route: "/api/cart", Attempts: 200, Calls: 50,
					AttemptsPerCall: 4, FailureRatio: 0.8, Window: 10 * time.Second, RatePerSec: 20}},
			event: "netintel.retry_storm", severity: plog.SeverityNumberFatal, sevText: "CRITICAL", resource: "frontend",
			body: "retry storm: frontend retried checkout GET /api/cart: 200 failed attempts for 50 calls (4.0 attempts per call, 80% failed) in 10s (20.0/s)",
			want: map[string]any{attrNIAttempts: int64(200), attrNIWindowMs: 10000.0, attrNIRatePerSec: 20.0,
				attrHTTPMethod: "GET", attrNIEndpoint: "/api/cart", attrNILogicalCalls: int64(50), attrNIAttemptsPerCall: 4.0,
				attrNIFailureRatio: 0.8},
		},
		{
			name: "external dependency",
			f: intel.Finding{Kind: intel.KindServiceDependency, Severity: intel.SeverityInfo, Subject: frontend,
				Dependency: &intel.Dependency{Edge: intel.EdgeKey{Source: "frontend", Dest: "api.partner.example", Protocol: "http", Port: 80},
					FirstSeen: t0, RequestCount: 1, External: true, DestAddr: netip.MustParseAddrPort("198.51.100.3:80")}},
			event: "netintel.service_dependency", severity: plog.SeverityNumberInfo, sevText: "INFO", resource: "frontend",
			body: "frontend depends on external api.partner.example at 198.51.100.3:80 (http port 80), first seen 2026-11-29T10:00:00Z, 1 requests",
			want: map[string]any{attrNIExternal: true, attrNIDestService: "api.partner.example", attrNIDestAddress: "198.51.100.3:80",
				attrServerAddress: "198.51.100.3"},
		},
		{
			name: "segmentation violation",
			f: intel.Finding{Kind: intel.KindSecurityConcern, Severity: intel.SeverityHigh, Subject: checkout,
				SecurityConcern: &intel.SecurityConcern{Type: intel.ConcernSegmentation, SourceIP: netip.MustParseAddr("127.0.0.1"),
					SourceService: "web", DestService: "ledger-db", DestAddr: netip.MustParseAddrPort("127.0.15.82:5432"), Count: 1,
					SourceZone: "web", DestZone: "db"}},
			event: "netintel.security_concern", severity: plog.SeverityNumberError, sevText: "HIGH", resource: "checkout",
			body: "high security concern: web (127.0.0.1) in zone web called ledger-db in zone db, a flow allowed_zone_flows does not allow",
			want: map[string]any{attrNIConcernType: "segmentation_violation", attrNISourceZone: "web", attrNIDestZone: "db",
				attrNISourceService: "web", attrNIDestService: "ledger-db"},
		},
		{
			name: "chatty communication",
			f: intel.Finding{Kind: intel.KindChattyCommunication, Severity: intel.SeverityMedium, Subject: frontend,
				Chatty: &intel.ChattyCommunication{Edge: intel.EdgeKey{Source: "orders", Dest: "stockdb", Protocol: "http", Port: 8080},
					CallsPerRequest: 25, RequestCount: 10, CallCount: 250, Window: 10 * time.Second}},
			event: "netintel.chatty_communication", severity: plog.SeverityNumberWarn3, sevText: "MEDIUM", resource: "frontend",
			body: "chatty communication: orders made 25.0 calls to stockdb per request it served (250 calls for 10 requests in 10s)",
			want: map[string]any{attrNISourceService: "orders", attrNIDestService: "stockdb", attrNICallsPerRequest: 25.0,
				attrNIRequestCount: int64(10), attrNICallCount: int64(250)},
		},
		{
			name: "connection pool: no reuse",
			f: intel.Finding{Kind: intel.KindConnectionPoolExhaustion, Severity: intel.SeverityMedium, Subject: frontend,
				PoolExhaustion: &intel.ConnectionPoolExhaustion{Reason: intel.PoolNoReuse,
					Edge:        intel.EdgeKey{Source: "hey", Dest: "pool", Protocol: "tcp", Port: 8080},
					Connections: 300, Requests: 300, Window: 10 * time.Second, RatePerSec: 30}},
			event: "netintel.connection_pool_exhaustion", severity: plog.SeverityNumberWarn3, sevText: "MEDIUM", resource: "frontend",
			body: "connection pool: hey opened 300 connections to pool (port 8080) for 300 requests in 10s (30.0/s): no connection reuse",
			want: map[string]any{attrNIReason: "no_connection_reuse", attrNISourceService: "hey", attrNIDestService: "pool",
				attrNIConnectionCount: int64(300), attrNIRequestCount: int64(300), attrNIConnectionsPerSec: 30.0, attrTransport: "tcp"},
		},
		{
			name: "connection pool: accept queue full",
			f: intel.Finding{Kind: intel.KindConnectionPoolExhaustion, Severity: intel.SeverityHigh, Subject: frontend,
				PoolExhaustion: &intel.ConnectionPoolExhaustion{Reason: intel.PoolAcceptQueueFull,
					Edge:        intel.EdgeKey{Source: "curl", Dest: "stuck", Protocol: "tcp", Port: 8080},
					Connections: 2, Unanswered: 9, Window: 2 * time.Second}},
			event: "netintel.connection_pool_exhaustion", severity: plog.SeverityNumberError, sevText: "HIGH", resource: "frontend",
			body: "connection pool: stuck (port 8080) stopped accepting: 9 handshakes from curl unanswered in 2s (accept queue full)",
			want: map[string]any{attrNIReason: "accept_queue_full", attrNIUnanswered: int64(9), attrNIConnectionCount: int64(2)},
		},
		{
			name: "connection pool: ephemeral ports",
			f: intel.Finding{Kind: intel.KindConnectionPoolExhaustion, Severity: intel.SeverityHigh, Subject: frontend,
				PoolExhaustion: &intel.ConnectionPoolExhaustion{Reason: intel.PoolEphemeralPortsExhausted,
					Edge: intel.EdgeKey{Source: "batch", Dest: "db", Protocol: "tcp", Port: 5432}, Failures: 12}},
			event: "netintel.connection_pool_exhaustion", severity: plog.SeverityNumberError, sevText: "HIGH", resource: "frontend",
			body: "connection pool: batch could not connect to db (port 5432) 12 times: no local port left (EADDRNOTAVAIL)",
			want: map[string]any{attrNIReason: "ephemeral_ports_exhausted", attrNIFailureCount: int64(12)},
		},
		{
			name: "data exfiltration",
			f: intel.Finding{Kind: intel.KindDataExfiltration, Severity: intel.SeverityHigh, Subject: frontend,
				Exfiltration: &intel.DataExfiltration{Source: "backup", Dest: "198.51.100.2:9000",
					DestAddr: netip.MustParseAddrPort("198.51.100.2:9000"), BytesSent: 30 << 20, Window: time.Minute}},
			event: "netintel.data_exfiltration", severity: plog.SeverityNumberError, sevText: "HIGH", resource: "frontend",
			body: "data exfiltration: backup sent 30.0 MiB to external 198.51.100.2:9000 within 1m0s (baseline 0.0 MiB)",
			want: map[string]any{attrNISourceService: "backup", attrNIDestService: "198.51.100.2:9000", attrNIBytesSent: int64(30 << 20),
				attrNIBaselineBytes: int64(0), attrNIExternal: true, attrServerAddress: "198.51.100.2", attrServerPort: int64(9000)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.Time = t0.Add(time.Minute)
			ld := Logs([]intel.Finding{tt.f})
			require.Equal(t, 1, ld.LogRecordCount())
			rl := ld.ResourceLogs().At(0)
			svc, _ := rl.Resource().Attributes().Get(attrServiceName)
			assert.Equal(t, tt.resource, svc.Str())
			assert.Equal(t, ScopeName, rl.ScopeLogs().At(0).Scope().Name())
			lr := rl.ScopeLogs().At(0).LogRecords().At(0)
			assert.Equal(t, tt.event, lr.EventName())
			assert.Equal(t, tt.severity, lr.SeverityNumber())
			assert.Equal(t, tt.sevText, lr.SeverityText())
			assert.Equal(t, tt.f.Time, lr.Timestamp().AsTime())
			assert.Equal(t, tt.body, lr.Body().Str())
			if tt.f.Example != nil {
				assert.Equal(t, pcommon.TraceID(tt.f.Example.TraceID), lr.TraceID())
				assert.Equal(t, pcommon.SpanID(tt.f.Example.SpanID), lr.SpanID())
			} else {
				assert.True(t, lr.TraceID().IsEmpty())
			}
			got := lr.Attributes().AsRaw()
			for k, v := range tt.want {
				if v == nil {
					assert.NotContains(t, got, k)
					continue
				}
				assert.Equal(t, v, got[k], "attribute %s", k)
			}
		})
	}
}

// The brief's JSON events (spec/network-collector.md) must be answerable from the log
// attributes: each of their fields has an attribute.
func TestLogsCarryEveryFieldOfTheBriefsEvents(t *testing.T) {
	findings := []intel.Finding{
		{Kind: intel.KindServiceDependency, Severity: intel.SeverityInfo, Subject: frontend,
			Dependency: &intel.Dependency{Edge: intel.EdgeKey{Source: "frontend", Dest: "api-gateway", Protocol: "tcp", Port: 8080}, FirstSeen: t0, RequestCount: 1523}},
		{Kind: intel.KindErrorPattern, Severity: intel.SeverityHigh, Subject: checkout,
			ErrorPattern: &intel.ErrorPattern{Edge: intel.EdgeKey{Source: "frontend", Dest: "checkout", Protocol: "http"},
				Method: "POST", Route: "/api/checkout", StatusCode: 503, Status: "503", ErrorCount: 45, IsCascade: true,
				AffectedServices: []string{"checkout", "payment", "inventory"}}},
		{Kind: intel.KindLatencyAnomaly, Severity: intel.SeverityMedium, Subject: checkout,
			LatencyAnomaly: &intel.LatencyAnomaly{Edge: intel.EdgeKey{Source: "web", Dest: "search", Protocol: "http"},
				Route: "/api/search", Latency: 3500 * time.Millisecond, Baseline: 250 * time.Millisecond, DeviationFactor: 14}},
		{Kind: intel.KindSecurityConcern, Severity: intel.SeverityHigh, Subject: checkout,
			SecurityConcern: &intel.SecurityConcern{Type: intel.ConcernSuspiciousUserAgent, SourceIP: netip.MustParseAddr("127.0.0.55"),
				UserAgent: "sqlmap/1.5", TargetEndpoint: "/api/users"}},
	}
	briefFields := map[string][]string{ // event name → attributes holding the brief's fields
		"netintel.service_dependency": {attrNISourceService, attrNIDestService, attrNIProtocol, attrNIPort, attrNIFirstSeen, attrNIRequestCount},
		"netintel.error_pattern":      {attrNIEndpoint, attrHTTPMethod, attrNIStatusCode, attrNIErrorCount, attrNIAffected, attrNIIsCascade},
		"netintel.latency_anomaly":    {attrNIEndpoint, attrNILatencyMs, attrNIBaselineMs, attrNIDeviationFactor, attrNISourceService, attrNIDestService},
		"netintel.security_concern":   {attrNIConcernType, attrNISourceIP, attrUserAgent, attrNITargetEndpoint, attrNISeverity, attrNIBlocked},
	}
	ld := Logs(findings)
	require.Equal(t, 4, ld.LogRecordCount())
	require.Equal(t, 2, ld.ResourceLogs().Len(), "findings about one service share a ResourceLogs")
	seen := 0
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		lrs := ld.ResourceLogs().At(i).ScopeLogs().At(0).LogRecords()
		for j := 0; j < lrs.Len(); j++ {
			lr := lrs.At(j)
			fields, ok := briefFields[lr.EventName()]
			require.True(t, ok, lr.EventName())
			for _, k := range fields {
				_, has := lr.Attributes().Get(k)
				assert.True(t, has, "%s lacks %s", lr.EventName(), k)
			}
			seen++
		}
	}
	assert.Equal(t, 4, seen)
}

func TestEventNames(t *testing.T) {
	want := map[intel.Kind]string{
		intel.KindServiceDependency: "netintel.service_dependency", intel.KindErrorPattern: "netintel.error_pattern",
		intel.KindLatencyAnomaly: "netintel.latency_anomaly", intel.KindSecurityConcern: "netintel.security_concern",
		intel.KindConnectionFailure: "netintel.connection_failure", intel.KindRetryStorm: "netintel.retry_storm",
		intel.KindChattyCommunication: "netintel.chatty_communication", intel.KindConnectionPoolExhaustion: "netintel.connection_pool_exhaustion",
		intel.KindDataExfiltration: "netintel.data_exfiltration",
	}
	for k, name := range want {
		assert.Equal(t, name, EventName(k))
	}
}
