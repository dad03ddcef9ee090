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
					Path: []intel.EdgeKey{{Source: "payment", Dest: "inventory"}, {Source: "checkout", Dest: "payment"}}}},
			event: "netintel.error_pattern", severity: plog.SeverityNumberError, sevText: "HIGH", resource: "checkout",
			body: "cascading failure: 45 × 503 on POST /api/checkout from frontend; root cause inventory, affected inventory → payment → checkout",
			want: map[string]any{
				attrNIEndpoint: "/api/checkout", attrHTTPRoute: "/api/checkout", attrHTTPMethod: "POST", attrNIMethod: "POST",
				attrHTTPStatus: int64(503), attrNIStatusCode: int64(503), attrErrorType: "503", attrNIErrorCount: int64(45),
				attrNIIsCascade: true, attrNIRootCause: "inventory",
				attrNIAffected:    []any{"inventory", "payment", "checkout"},
				attrNICascadePath: []any{"payment->inventory", "checkout->payment"},
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
			name: "latency anomaly",
			f: intel.Finding{Kind: intel.KindLatencyAnomaly, Severity: intel.SeverityMedium, Subject: checkout, Example: example,
				LatencyAnomaly: &intel.LatencyAnomaly{Edge: intel.EdgeKey{Source: "web", Dest: "search", Protocol: "http", Port: 80},
					Method: "GET", Route: "/api/search", Latency: 3500 * time.Millisecond, Baseline: 250 * time.Millisecond,
					DeviationFactor: 14, Samples: 500}},
			event: "netintel.latency_anomaly", severity: plog.SeverityNumberWarn3, sevText: "MEDIUM", resource: "checkout",
			body: "latency anomaly: search GET /api/search took 3500 ms, 14.0× its 250 ms baseline (called by web)",
			want: map[string]any{
				attrNIEndpoint: "/api/search", attrNILatencyMs: 3500.0, attrNIBaselineMs: 250.0, attrNIDeviationFactor: 14.0,
				attrNISourceService: "web", attrNIDestService: "search", attrNIBaselineSamples: int64(500),
			},
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
				RetryStorm: &intel.RetryStorm{Edge: edge, Method: "GET", Route: "/api/cart", Attempts: 200,
					Window: 10 * time.Second, RatePerSec: 20}},
			event: "netintel.retry_storm", severity: plog.SeverityNumberFatal, sevText: "CRITICAL", resource: "frontend",
			body: "retry storm: frontend retried checkout GET /api/cart 200 times in 10s (20.0/s)",
			want: map[string]any{attrNIAttempts: int64(200), attrNIWindowMs: 10000.0, attrNIRatePerSec: 20.0,
				attrHTTPMethod: "GET", attrNIEndpoint: "/api/cart"},
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
	}
	for k, name := range want {
		assert.Equal(t, name, EventName(k))
	}
}
