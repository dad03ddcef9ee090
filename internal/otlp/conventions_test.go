package otlp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/netintel/netintelreceiver/internal/intel"
	"github.com/netintel/netintelreceiver/internal/l7"
)

func spanOf(t *testing.T, x *l7.Exchange, p Privacy) ptrace.Span {
	t.Helper()
	b := NewTraceBuilder(p)
	b.Append(x, frontend, checkout, 1)
	td := b.Traces()
	require.Equal(t, 1, td.SpanCount())
	return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
}

func str(m pcommon.Map, k string) (string, bool) {
	v, ok := m.Get(k)
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

// privacy.url_path: raw keeps the path (the conventions' default), template puts the route
// template in its place, drop leaves url.path (and url.full) out. The query string never
// leaves, whatever the policy.
func TestURLPathPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy   PathPolicy
		wantPath string // "" for absent
		wantFull string
	}{
		{PathRaw, "/api/users/42", "http://checkout:8080/api/users/42"},
		{PathTemplate, "/api/users/{id}", "http://checkout:8080/api/users/{id}"},
		{PathDrop, "", ""},
	} {
		for _, side := range []l7.Side{l7.SideClient, l7.SideServer} {
			sp := spanOf(t, httpExchange(side, "1.1", "GET", "/api/users/42", 200), Privacy{URLPath: tc.policy})
			attrs := sp.Attributes()
			path, ok := str(attrs, attrURLPath)
			assert.Equal(t, tc.wantPath != "", ok, "policy %d side %v: url.path present", tc.policy, side)
			assert.Equal(t, tc.wantPath, path)
			full, ok := str(attrs, attrURLFull)
			if side == l7.SideClient {
				assert.Equal(t, tc.wantFull, full, "policy %d: url.full", tc.policy)
			} else {
				assert.False(t, ok, "url.full is a client attribute")
			}
			assert.Equal(t, "GET /api/users/{id}", sp.Name(), "the span name is the template under every policy")
			for k, v := range attrs.All() {
				assert.NotContains(t, v.AsString(), "token=secret", "%s carries the query string", k)
			}
		}
	}
}

// A security finding's endpoint follows the same policy.
func TestURLPathPolicyOnFindings(t *testing.T) {
	f := intel.Finding{Kind: intel.KindSecurityConcern, Severity: intel.SeverityMedium, Subject: checkout,
		SecurityConcern: &intel.SecurityConcern{Type: intel.ConcernSuspiciousUserAgent, UserAgent: "sqlmap/1.7",
			TargetEndpoint: "/users/8c9d2f5e-0d3a-4c1b-9a8e-2b7f1e6c4d3a/orders"}}
	for _, tc := range []struct {
		policy           PathPolicy
		wantPath, target string
	}{
		{PathRaw, "/users/8c9d2f5e-0d3a-4c1b-9a8e-2b7f1e6c4d3a/orders", "/users/8c9d2f5e-0d3a-4c1b-9a8e-2b7f1e6c4d3a/orders"},
		{PathTemplate, "/users/{id}/orders", "/users/{id}/orders"},
		{PathDrop, "", "/users/{id}/orders"},
	} {
		lr := LogsWith([]intel.Finding{f}, Privacy{URLPath: tc.policy}).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
		path, ok := str(lr.Attributes(), attrURLPath)
		assert.Equal(t, tc.wantPath != "", ok, "policy %d", tc.policy)
		assert.Equal(t, tc.wantPath, path)
		target, _ := str(lr.Attributes(), attrNITargetEndpoint)
		assert.Equal(t, tc.target, target)
		if tc.policy != PathRaw {
			assert.NotContains(t, lr.Body().Str(), "8c9d2f5e", "the body follows the policy too")
		}
	}
}

// Findings carry a route template in http.route, never in url.path.
func TestFindingsRouteIsHTTPRoute(t *testing.T) {
	edge := intel.EdgeKey{Source: "frontend", Dest: "checkout", Protocol: "http", Port: 8080}
	for _, f := range []intel.Finding{
		{Kind: intel.KindErrorPattern, Subject: checkout, ErrorPattern: &intel.ErrorPattern{Edge: edge, Method: "GET", Route: "/items/{id}", StatusCode: 503, Status: "503", ErrorCount: 3}},
		{Kind: intel.KindLatencyAnomaly, Subject: checkout, LatencyAnomaly: &intel.LatencyAnomaly{Edge: edge, Method: "GET", Route: "/items/{id}", Latency: time.Second}},
		{Kind: intel.KindRetryStorm, Subject: checkout, RetryStorm: &intel.RetryStorm{Edge: edge, Method: "GET", Route: "/items/{id}", Attempts: 20}},
	} {
		attrs := Logs([]intel.Finding{f}).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes()
		route, _ := str(attrs, string(semconv.HTTPRouteKey))
		assert.Equal(t, "/items/{id}", route, f.Kind.String())
		_, hasPath := attrs.Get(string(semconv.URLPathKey))
		assert.False(t, hasPath, "%s: a template in url.path", f.Kind)
	}
}

// Only keys the conventions define go under their namespaces; DNS's query type and response
// code, which they do not define, are netintel's; the deprecated TLS server-name key is gone
// (the SNI is server.address).
func TestConventionKeys(t *testing.T) {
	dns := spanOf(t, dnsExchange(l7.SideClient, 3, "NXDOMAIN"), Privacy{})
	for _, k := range []string{"dns.question.type", "dns.response_code"} {
		_, ok := dns.Attributes().Get(k)
		assert.False(t, ok, "%s is not a semantic-convention key", k)
	}
	rc, _ := str(dns.Attributes(), "netintel.dns.response_code")
	assert.Equal(t, "NXDOMAIN", rc)
	name, _ := str(dns.Attributes(), string(semconv.DNSQuestionNameKey))
	assert.Equal(t, "payments.example.com", name)

	tls := tcpExchange(l7.SideClient, checkoutAddr, 0)
	tls.Protocol = l7.ProtocolTLS
	tls.TLS = &l7.TLS{SNI: "shop.example.test", Version: "1.3", ALPN: []string{"h2"}}
	sp := spanOf(t, tls, Privacy{})
	_, old := sp.Attributes().Get("tls.client.server_name")
	assert.False(t, old, "tls.client.server_name is deprecated")
	addr, _ := str(sp.Attributes(), string(semconv.ServerAddressKey))
	assert.Equal(t, "shop.example.test", addr)
}

// Durations end at the first response byte, and the span says so; an exchange capture did
// not see the end of has no duration and says that.
func TestSpanEndIsDeclared(t *testing.T) {
	ok := spanOf(t, httpExchange(l7.SideServer, "1.1", "GET", "/", 200), Privacy{})
	end, _ := str(ok.Attributes(), attrNISpanEnd)
	assert.Equal(t, "response_first_byte", end)

	lost := httpExchange(l7.SideServer, "1.1", "GET", "/", 0)
	lost.Failure = l7.FailureUnknown
	lost.End = lost.Start
	sp := spanOf(t, lost, Privacy{})
	end, _ = str(sp.Attributes(), attrNISpanEnd)
	assert.Equal(t, "not_observed", end)
	assert.Equal(t, ptrace.StatusCodeUnset, sp.Status().Code(), "an unseen outcome is nobody's error")
	assert.Equal(t, sp.StartTimestamp(), sp.EndTimestamp())
}
