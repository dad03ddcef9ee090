package otlp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// kernelAggregate is n healthy exchanges the kernel counted on one side, on the metric bounds.
func kernelAggregate(side l7.Side, n uint64) *l7.Aggregate {
	bounds := make([]time.Duration, len(DefaultDurationBounds))
	for i, b := range DefaultDurationBounds {
		bounds[i] = time.Duration(b * float64(time.Second))
	}
	explicit := make([]uint64, len(bounds)+1)
	explicit[0], explicit[1] = n-1, 1 // n-1 under 5 ms, one under 10 ms
	fine := make([]uint64, len(capture.LatencyBucketBounds)+1)
	fine[50] = n
	return &l7.Aggregate{
		Protocol: l7.ProtocolHTTP1, Side: side,
		Client: l7.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:40000")},
		Server: l7.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.9:8080")},
		Method: "GET", Route: "/api/users/{id}", Version: "1.1", StatusCode: 200, Host: "checkout",
		Count: n, Latency: l7.Histogram{Bounds: capture.LatencyBucketBounds, Counts: fine, Count: n, Sum: time.Duration(n) * 4 * time.Millisecond},
		Explicit: l7.Histogram{Bounds: bounds, Counts: explicit, Count: n, Sum: time.Duration(n) * 4 * time.Millisecond},
	}
}

// Exchanges the kernel only counted land in the same series as exchanges sent whole: the
// duration histograms with their bucket counts exact, and the service graph once per request —
// the server side's count, not the client side's, when both are local.
func TestMetricsAggregatesCountLikeExchanges(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	m.Exchange(httpExchange(l7.SideServer, "1.1", "GET", "/api/users/1", 200), frontend, checkout)
	m.Exchange(httpExchange(l7.SideClient, "1.1", "GET", "/api/users/1", 200), frontend, checkout)
	m.Aggregate(kernelAggregate(l7.SideServer, 40), frontend, checkout)
	m.Aggregate(kernelAggregate(l7.SideClient, 40), frontend, checkout)
	md := m.Emit(t0.Add(time.Minute), nil)

	server := onePoint(t, md, MetricHTTPServerDuration)
	assert.Equal(t, "checkout", server.resource)
	assert.Equal(t, uint64(41), server.count)
	assert.Equal(t, uint64(39), server.buckets[0], "the kernel's explicit buckets are added as they are")
	assert.Equal(t, uint64(1+1), server.buckets[1]+server.buckets[2], "plus the one exchange sent whole")
	client := onePoint(t, md, MetricHTTPClientDuration)
	assert.Equal(t, uint64(41), client.count)
	assert.Equal(t, int64(41), onePoint(t, md, MetricServiceGraphTotal).value, "each request once")
	assert.Equal(t, uint64(41), onePoint(t, md, MetricServiceGraphServer).count)
}

// A client's aggregate to a server with no local process counts on the virtual node; its
// healthy twin (a local server) counts nothing there.
func TestMetricsClientAggregateToRemoteServer(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	a := kernelAggregate(l7.SideClient, 10)
	m.Aggregate(a, frontend, payments)
	md := m.Emit(t0.Add(time.Minute), nil)
	total := onePoint(t, md, MetricServiceGraphTotal)
	assert.Equal(t, int64(10), total.value)
	assert.Equal(t, connectionVirtualNode, total.attrs[attrSGConnectionType])
	require.Empty(t, points(t, md, MetricHTTPServerDuration))
}
