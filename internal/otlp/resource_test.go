package otlp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/intel"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// A pod's service as identity names it from the container runtime's state, and the remote
// clients of an ingress aggregated under one name.
var (
	podCheckout = identity.Service{Name: "checkout", Local: true, Resource: identity.Resource{
		ServiceName: "checkout", PID: 5151, ExecutableName: "httpd", HostName: "node-a",
		ContainerID: "c3c3", K8sNamespace: "shop", K8sPodName: "checkout-7d9f8b6c5-x2k4q",
		K8sPodUID: "0a5c3c7e", K8sContainer: "checkout"}}
	dockerAPI = identity.Service{Name: "shop-api", Local: true, Resource: identity.Resource{
		ServiceName: "shop-api", PID: 6161, ExecutableName: "httpd", HostName: "node-a",
		ContainerID: "a1a1", ContainerName: "shop-api"}}
	internetClients = identity.Service{Name: "clients of checkout", Resource: identity.Resource{
		ServiceName: "clients of checkout", ClientNetwork: "203.0.113.0/24"}}
)

func resourceAttrs(r pcommon.Resource) map[string]any { return r.Attributes().AsRaw() }

func TestResourcesCarryContainerAndPod(t *testing.T) {
	wantPod := map[string]any{
		"service.name": "checkout", "process.pid": int64(5151), "process.executable.name": "httpd",
		"host.name": "node-a", "container.id": "c3c3", "k8s.namespace.name": "shop",
		"k8s.pod.name": "checkout-7d9f8b6c5-x2k4q", "k8s.pod.uid": "0a5c3c7e", "k8s.container.name": "checkout",
	}
	wantDocker := map[string]any{
		"service.name": "shop-api", "process.pid": int64(6161), "process.executable.name": "httpd",
		"host.name": "node-a", "container.id": "a1a1", "container.name": "shop-api",
	}

	// Spans: one ResourceSpans per resource, reused for the same one.
	td := ptrace.NewTraces()
	AppendSpans(td, httpExchange(l7.SideServer, "1.1", "GET", "/items", 200), internetClients, podCheckout, 1)
	AppendSpans(td, httpExchange(l7.SideServer, "1.1", "GET", "/items", 200), internetClients, podCheckout, 1)
	AppendSpans(td, httpExchange(l7.SideServer, "1.1", "GET", "/items", 200), podCheckout, dockerAPI, 1)
	require.Equal(t, 2, td.ResourceSpans().Len())
	assert.Equal(t, wantPod, resourceAttrs(td.ResourceSpans().At(0).Resource()))
	assert.Equal(t, 2, td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().Len())
	assert.Equal(t, wantDocker, resourceAttrs(td.ResourceSpans().At(1).Resource()))

	b := NewTraceBuilder(Privacy{})
	b.Append(httpExchange(l7.SideServer, "1.1", "GET", "/items", 200), internetClients, podCheckout, 1)
	assert.Equal(t, wantPod, resourceAttrs(b.Traces().ResourceSpans().At(0).Resource()))

	// Per-service metrics sit in the service's resource.
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	m.Exchange(httpExchange(l7.SideServer, "1.1", "GET", "/items", 200), internetClients, podCheckout)
	md := m.Emit(t0.Add(time.Minute), nil)
	found := false
	// Metric series are keyed by the service's identity: the pod's resource without the pid.
	wantPodSeries := map[string]any{}
	for k, v := range wantPod {
		if k != "process.pid" {
			wantPodSeries[k] = v
		}
	}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		if v, _ := rm.Resource().Attributes().Get("service.name"); v.AsString() == "checkout" {
			found = true
			assert.Equal(t, wantPodSeries, resourceAttrs(rm.Resource()))
		}
	}
	assert.True(t, found, "no metrics in the pod's resource")

	// Findings: the aggregated clients' resource carries their network; the edge names both.
	edge := intel.EdgeKey{Source: "clients of checkout", Dest: "checkout", Protocol: "http", Port: 8080}
	ld := Logs([]intel.Finding{
		{Kind: intel.KindServiceDependency, Severity: intel.SeverityInfo, Time: t0, Subject: internetClients,
			Dependency: &intel.Dependency{Edge: edge, FirstSeen: t0, RequestCount: 3}},
		{Kind: intel.KindLatencyAnomaly, Severity: intel.SeverityMedium, Time: t0, Subject: podCheckout,
			LatencyAnomaly: &intel.LatencyAnomaly{Edge: edge, Route: "/items", Latency: 900 * time.Millisecond, Baseline: 10 * time.Millisecond, DeviationFactor: 90}},
	})
	require.Equal(t, 2, ld.ResourceLogs().Len())
	assert.Equal(t, map[string]any{"service.name": "clients of checkout", "netintel.client.network": "203.0.113.0/24"},
		resourceAttrs(ld.ResourceLogs().At(0).Resource()))
	dep := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().AsRaw()
	assert.Equal(t, "clients of checkout", dep[attrNISourceService])
	assert.Equal(t, "checkout", dep[attrNIDestService])
	assert.Equal(t, wantPod, resourceAttrs(ld.ResourceLogs().At(1).Resource()))
}
