package otlp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

var hostRes = identity.Resource{ServiceName: "netintel", HostName: "node-a"}

// point is one data point, flattened for assertions.
type point struct {
	resource string
	attrs    map[string]any
	value    int64   // sums
	count    uint64  // histograms
	sum      float64 // histograms
	buckets  []uint64
}

// points returns the data points of metric name, across resources, in emission order.
func points(t *testing.T, md pmetric.Metrics, name string) []point {
	t.Helper()
	var out []point
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		svc, _ := rm.Resource().Attributes().Get(attrServiceName)
		ms := rm.ScopeMetrics().At(0).Metrics()
		require.Equal(t, ScopeName, rm.ScopeMetrics().At(0).Scope().Name())
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			if m.Name() != name {
				continue
			}
			switch m.Type() {
			case pmetric.MetricTypeSum:
				require.True(t, m.Sum().IsMonotonic())
				require.Equal(t, pmetric.AggregationTemporalityCumulative, m.Sum().AggregationTemporality())
				for k := 0; k < m.Sum().DataPoints().Len(); k++ {
					dp := m.Sum().DataPoints().At(k)
					out = append(out, point{resource: svc.Str(), attrs: dp.Attributes().AsRaw(), value: dp.IntValue()})
				}
			case pmetric.MetricTypeHistogram:
				require.Equal(t, pmetric.AggregationTemporalityCumulative, m.Histogram().AggregationTemporality())
				for k := 0; k < m.Histogram().DataPoints().Len(); k++ {
					dp := m.Histogram().DataPoints().At(k)
					out = append(out, point{resource: svc.Str(), attrs: dp.Attributes().AsRaw(),
						count: dp.Count(), sum: dp.Sum(), buckets: dp.BucketCounts().AsRaw()})
				}
			default:
				t.Fatalf("%s: unexpected type %v", name, m.Type())
			}
		}
	}
	return out
}

func onePoint(t *testing.T, md pmetric.Metrics, name string) point {
	t.Helper()
	ps := points(t, md, name)
	require.Len(t, ps, 1, name)
	return ps[0]
}

func TestMetricsHTTPBothHalvesCountOnce(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	for i := 0; i < 3; i++ {
		status := 200
		if i == 2 {
			status = 503
		}
		for _, side := range []l7.Side{l7.SideClient, l7.SideServer} {
			x := httpExchange(side, "1.1", "GET", fmt.Sprintf("/api/users/%d", i), status)
			m.Exchange(x, frontend, checkout)
		}
	}
	md := m.Emit(t0.Add(time.Minute), nil)

	server := points(t, md, MetricHTTPServerDuration)
	require.Len(t, server, 2, "200 and 503 series")
	assert.Equal(t, "checkout", server[0].resource)
	assert.Equal(t, map[string]any{attrHTTPMethod: "GET", attrHTTPRoute: "/api/users/{id}", attrURLScheme: "http",
		attrProtocolVersion: "1.1", attrHTTPStatus: int64(200)}, server[0].attrs)
	assert.Equal(t, uint64(2), server[0].count)
	assert.InDelta(t, 0.050, server[0].sum, 1e-9)
	assert.Equal(t, "503", server[1].attrs[attrErrorType])
	assert.Equal(t, uint64(1), server[1].count)

	client := points(t, md, MetricHTTPClientDuration)
	require.Len(t, client, 2)
	assert.Equal(t, "frontend", client[0].resource)
	assert.Equal(t, map[string]any{attrHTTPMethod: "GET", attrURLTemplate: "/api/users/{id}", attrServerAddress: "checkout",
		attrServerPort: int64(8080), attrURLScheme: "http", attrProtocolVersion: "1.1", attrHTTPStatus: int64(200)}, client[0].attrs)

	edge := map[string]any{attrSGClient: "frontend", attrSGServer: "checkout", attrSGConnectionType: ""}
	total := onePoint(t, md, MetricServiceGraphTotal)
	assert.Equal(t, "netintel", total.resource)
	assert.Equal(t, edge, total.attrs)
	assert.Equal(t, int64(3), total.value, "both halves seen, each request counted once")
	failed := onePoint(t, md, MetricServiceGraphFailed)
	assert.Equal(t, int64(1), failed.value)
	assert.Equal(t, uint64(3), onePoint(t, md, MetricServiceGraphServer).count)
	assert.Equal(t, uint64(3), onePoint(t, md, MetricServiceGraphClient).count)
}

func TestMetricsRemotePeerIsAVirtualNode(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	x := httpExchange(l7.SideClient, "1.1", "POST", "/v1/charges", 402)
	x.HTTP.Host = "payments.example.com"
	m.Exchange(x, frontend, payments)
	// and an inbound request from an unknown client
	in := httpExchange(l7.SideServer, "1.1", "GET", "/", 200)
	m.Exchange(in, identity.Service{Name: "127.0.0.99"}, checkout)
	md := m.Emit(t0.Add(time.Minute), nil)

	totals := points(t, md, MetricServiceGraphTotal)
	require.Len(t, totals, 2)
	byServer := map[string]point{}
	for _, p := range totals {
		byServer[p.attrs[attrSGServer].(string)] = p
	}
	assert.Equal(t, map[string]any{attrSGClient: "frontend", attrSGServer: "payments.example.com", attrSGConnectionType: "virtual_node"}, byServer["payments.example.com"].attrs)
	assert.Equal(t, int64(1), byServer["payments.example.com"].value)
	assert.Equal(t, map[string]any{attrSGClient: "127.0.0.99", attrSGServer: "checkout", attrSGConnectionType: "virtual_node"}, byServer["checkout"].attrs)
	failed := onePoint(t, md, MetricServiceGraphFailed)
	assert.Equal(t, "payments.example.com", failed.attrs[attrSGServer], "a 4xx fails the client")
	// one remote end: both latency histograms come from the half that was seen
	assert.Len(t, points(t, md, MetricServiceGraphServer), 2)
	assert.Len(t, points(t, md, MetricServiceGraphClient), 2)
	cl := onePoint(t, md, MetricHTTPClientDuration)
	assert.Equal(t, "payments.example.com", cl.attrs[attrServerAddress])
	assert.Equal(t, "402", cl.attrs[attrErrorType])
}

func TestMetricsRPCAndDNS(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	m.Exchange(grpcExchange(l7.SideClient, 14, "UNAVAILABLE"), frontend, checkout)
	m.Exchange(grpcExchange(l7.SideServer, 14, "UNAVAILABLE"), frontend, checkout)
	m.Exchange(dnsExchange(l7.SideClient, 3, "NXDOMAIN"), frontend, resolver)
	m.Exchange(dnsExchange(l7.SideClient, 0, "NOERROR"), frontend, resolver)
	md := m.Emit(t0.Add(time.Minute), nil)

	rs := onePoint(t, md, MetricRPCServerDuration)
	assert.Equal(t, "checkout", rs.resource)
	assert.Equal(t, map[string]any{attrRPCSystemName: "grpc", attrRPCMethod: "shop.Checkout/PlaceOrder",
		attrRPCResponseStatus: "UNAVAILABLE", attrErrorType: "UNAVAILABLE"}, rs.attrs)
	rc := onePoint(t, md, MetricRPCClientDuration)
	assert.Equal(t, "frontend", rc.resource)
	assert.Equal(t, map[string]any{attrRPCSystemName: "grpc", attrRPCMethod: "shop.Checkout/PlaceOrder",
		attrRPCResponseStatus: "UNAVAILABLE", attrErrorType: "UNAVAILABLE", attrServerAddress: "checkout",
		attrServerPort: int64(8080)}, rc.attrs)
	assert.Empty(t, points(t, md, MetricHTTPServerDuration), "gRPC is not counted as HTTP")

	dns := points(t, md, MetricDNSLookupDuration)
	require.Len(t, dns, 2)
	assert.Equal(t, "frontend", dns[0].resource)
	assert.Equal(t, map[string]any{attrDNSQuestionName: "payments.example.com", attrNIDNSQuestionType: "A",
		attrNIDNSResponseCode: "NXDOMAIN", attrErrorType: "NXDOMAIN"}, dns[0].attrs)
	assert.Equal(t, map[string]any{attrDNSQuestionName: "payments.example.com", attrNIDNSQuestionType: "A",
		attrNIDNSResponseCode: "NOERROR"}, dns[1].attrs)

	totals := points(t, md, MetricServiceGraphTotal)
	require.Len(t, totals, 2)
	assert.Equal(t, int64(1), totals[0].value, "gRPC call counted once")
	assert.Equal(t, "127.0.0.53:53", totals[1].attrs[attrSGServer])
	assert.Equal(t, int64(2), totals[1].value)
}

func TestMetricsAreCumulativeWithAFixedStart(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	m.Exchange(httpExchange(l7.SideServer, "1.1", "GET", "/", 200), frontend, checkout)
	first := m.Emit(t0.Add(time.Minute), nil)
	m.Exchange(httpExchange(l7.SideServer, "1.1", "GET", "/", 200), frontend, checkout)
	second := m.Emit(t0.Add(2*time.Minute), nil)

	assert.Equal(t, uint64(1), onePoint(t, first, MetricHTTPServerDuration).count)
	assert.Equal(t, uint64(2), onePoint(t, second, MetricHTTPServerDuration).count)
	assert.Equal(t, int64(2), onePoint(t, second, MetricServiceGraphTotal).value)
	dp := findMetric(t, second, MetricHTTPServerDuration).Histogram().DataPoints().At(0)
	assert.Equal(t, t0, dp.StartTimestamp().AsTime())
	assert.Equal(t, t0.Add(2*time.Minute), dp.Timestamp().AsTime())
	assert.Equal(t, DefaultDurationBounds, dp.ExplicitBounds().AsRaw())
	assert.Equal(t, 0.025, dp.Min())
	assert.Equal(t, 0.025, dp.Max())
}

func TestMetricsHistogramBuckets(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes, DurationBounds: []float64{0.01, 0.1, 1}})
	for _, d := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond, 2 * time.Second} {
		x := httpExchange(l7.SideServer, "1.1", "GET", "/", 200)
		x.End = x.Start.Add(d)
		m.Exchange(x, frontend, checkout)
	}
	p := onePoint(t, m.Emit(t0, nil), MetricHTTPServerDuration)
	// (−∞,0.01] holds 5ms and 10ms (upper bounds inclusive), (0.01,0.1] 50ms, (1,+∞) 2s
	assert.Equal(t, []uint64{2, 1, 0, 1}, p.buckets)
	assert.Equal(t, uint64(4), p.count)
}

func TestMetricsCardinalityIsCapped(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes, MaxSeriesPerMetric: 3})
	for i := 0; i < 10; i++ {
		x := httpExchange(l7.SideServer, "1.1", "GET", fmt.Sprintf("/page-%c", 'a'+i), 200)
		m.Exchange(x, frontend, checkout)
	}
	md := m.Emit(t0, nil)
	ps := points(t, md, MetricHTTPServerDuration)
	require.Len(t, ps, 4, "3 series and the overflow series")
	assert.Equal(t, "/page-a", ps[0].attrs[attrHTTPRoute])
	over := ps[3]
	assert.Equal(t, "checkout", over.resource, "the overflow series keeps its service")
	assert.Equal(t, map[string]any{attrOverflow: true}, over.attrs)
	assert.Equal(t, uint64(7), over.count)
	var total uint64
	for _, p := range ps {
		total += p.count
	}
	assert.Equal(t, uint64(10), total, "no measurement is lost, only its attributes")

	assert.Equal(t, []NamedCount{{Name: MetricHTTPServerDuration, Value: 7}}, m.Overflowed())
}

func TestMetricsTCPPerEdge(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	cli := capture.Socket{Transport: capture.TransportTCP, Role: capture.RoleClient, Local: frontendAddr, Remote: checkoutAddr}
	srv := capture.Socket{Transport: capture.TransportTCP, Role: capture.RoleServer, Local: checkoutAddr, Remote: frontendAddr}
	ext := capture.Socket{Transport: capture.TransportTCP, Role: capture.RoleClient, Local: frontendAddr,
		Remote: netip.MustParseAddrPort("127.0.0.30:443")}
	events := []struct {
		ev             capture.ConnEvent
		client, server identity.Service
	}{
		// a loopback connection, both ends local: opened once, reset once
		{capture.ConnEvent{Kind: capture.ConnOpened, Socket: cli}, frontend, checkout},
		{capture.ConnEvent{Kind: capture.ConnOpened, Socket: srv}, frontend, checkout},
		{capture.ConnEvent{Kind: capture.ConnResetSent, Socket: srv}, frontend, checkout},
		{capture.ConnEvent{Kind: capture.ConnResetReceived, Socket: cli}, frontend, checkout},
		{capture.ConnEvent{Kind: capture.ConnRetransmit, Socket: cli}, frontend, checkout},
		{capture.ConnEvent{Kind: capture.ConnRetransmit, Socket: srv}, frontend, checkout},
		{capture.ConnEvent{Kind: capture.ConnRTT, Socket: cli, SRTT: 40 * time.Microsecond}, frontend, checkout},
		{capture.ConnEvent{Kind: capture.ConnClosed, Socket: cli, SRTT: 60 * time.Microsecond}, frontend, checkout},
		// a remote server: the client's view is all there is
		{capture.ConnEvent{Kind: capture.ConnOpened, Socket: ext}, frontend, payments},
		{capture.ConnEvent{Kind: capture.ConnResetReceived, Socket: ext}, frontend, payments},
		{capture.ConnEvent{Kind: capture.ConnFailed, Socket: ext, Reason: capture.FailureRefused, Errno: 111}, frontend, payments},
		{capture.ConnEvent{Kind: capture.ConnFailed, Socket: ext, Reason: capture.FailureRefused, Errno: 111}, frontend, payments},
		{capture.ConnEvent{Kind: capture.ConnFailed, Socket: ext, Reason: capture.FailureTimedOut, Errno: 110}, frontend, payments},
	}
	for i := range events {
		m.Conn(&events[i].ev, events[i].client, events[i].server)
	}
	md := m.Emit(t0, nil)
	local := map[string]any{attrSGClient: "frontend", attrSGServer: "checkout", attrServerPort: int64(8080)}
	remote := map[string]any{attrSGClient: "frontend", attrSGServer: "payments.example.com", attrServerPort: int64(443)}

	opened := points(t, md, MetricTCPOpened)
	require.Len(t, opened, 2)
	assert.Equal(t, local, opened[0].attrs)
	assert.Equal(t, int64(1), opened[0].value, "both ends saw the open; counted once")
	assert.Equal(t, remote, opened[1].attrs)
	assert.Equal(t, int64(1), opened[1].value)

	resets := points(t, md, MetricTCPResets)
	require.Len(t, resets, 2)
	assert.Equal(t, int64(1), resets[0].value, "sent by one local end, received by the other: one reset")
	assert.Equal(t, int64(1), resets[1].value)

	retrans := onePoint(t, md, MetricTCPRetransmits)
	assert.Equal(t, int64(2), retrans.value)

	failed := points(t, md, MetricTCPFailed)
	require.Len(t, failed, 2)
	assert.Equal(t, "refused", failed[0].attrs[attrReason])
	assert.Equal(t, int64(2), failed[0].value)
	assert.Equal(t, "timed_out", failed[1].attrs[attrReason])

	rtt := onePoint(t, md, MetricTCPRTT)
	assert.Equal(t, uint64(2), rtt.count)
	assert.InDelta(t, 100e-6, rtt.sum, 1e-12)
	assert.Equal(t, "netintel", rtt.resource)
}

func TestMetricsSelfSums(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	md := m.Emit(t0.Add(time.Minute), []SelfSum{
		{Name: "netintel.receiver.dropped", Unit: "{item}", AttrKey: "reason", Points: []NamedCount{{"ringbuf_full", 5}, {"sequence_gap", 2}}},
		{Name: "netintel.receiver.events_read", Unit: "{event}", Points: []NamedCount{{Value: 12345}}},
		{Name: "netintel.receiver.l7.state_bytes", Unit: "By", Gauge: true, Points: []NamedCount{{Value: 4096}}},
	})
	dropped := map[string]int64{}
	for _, p := range points(t, md, "netintel.receiver.dropped") {
		assert.Equal(t, "netintel", p.resource)
		dropped[fmt.Sprint(p.attrs["reason"])] = p.value
	}
	assert.Equal(t, map[string]int64{"ringbuf_full": 5, "sequence_gap": 2}, dropped)
	assert.Equal(t, int64(12345), onePoint(t, md, "netintel.receiver.events_read").value)
	gauge := findMetric(t, md, "netintel.receiver.l7.state_bytes")
	require.Equal(t, pmetric.MetricTypeGauge, gauge.Type())
	assert.Equal(t, int64(4096), gauge.Gauge().DataPoints().At(0).IntValue())
	sum := findMetric(t, md, "netintel.receiver.dropped").Sum()
	assert.True(t, sum.IsMonotonic())
	assert.Equal(t, pcommon.NewTimestampFromTime(t0), sum.DataPoints().At(0).StartTimestamp())
	rm := md.ResourceMetrics().At(0)
	assert.Equal(t, map[string]any{attrServiceName: "netintel", attrHostName: "node-a"}, rm.Resource().Attributes().AsRaw())

	none := m.Emit(t0, nil)
	assert.Empty(t, points(t, none, "netintel.receiver.dropped"), "no self sums given, none emitted")
}

func findMetric(t *testing.T, md pmetric.Metrics, name string) pmetric.Metric {
	t.Helper()
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			if ms.At(j).Name() == name {
				return ms.At(j)
			}
		}
	}
	t.Fatalf("no metric %s", name)
	return pmetric.Metric{}
}

// The pipeline feeds the aggregator while the flush timer emits: nothing may be lost or torn.
func TestMetricsConcurrentExchangeAndEmit(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	const writers, perWriter = 4, 500
	done := make(chan struct{})
	for w := 0; w < writers; w++ {
		go func(w int) {
			defer func() { done <- struct{}{} }()
			for i := 0; i < perWriter; i++ {
				x := httpExchange(l7.SideServer, "1.1", "GET", fmt.Sprintf("/w%d", w), 200)
				m.Exchange(x, frontend, checkout)
				m.Conn(&capture.ConnEvent{Kind: capture.ConnRetransmit}, frontend, checkout)
			}
		}(w)
	}
	for i := 0; i < 50; i++ {
		m.Emit(t0.Add(time.Duration(i)*time.Second), nil)
	}
	for w := 0; w < writers; w++ {
		<-done
	}
	md := m.Emit(t0.Add(time.Hour), nil)
	var n uint64
	for _, p := range points(t, md, MetricHTTPServerDuration) {
		n += p.count
	}
	assert.Equal(t, uint64(writers*perWriter), n)
	assert.Equal(t, int64(writers*perWriter), onePoint(t, md, MetricServiceGraphTotal).value)
	assert.Equal(t, int64(writers*perWriter), onePoint(t, md, MetricTCPRetransmits).value)
}

func TestMetricsServiceGraphCardinalityIsCapped(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes, MaxSeriesPerMetric: 2})
	for i := 0; i < 5; i++ {
		srv := identity.Service{Name: fmt.Sprintf("svc-%d", i), Local: true, Resource: identity.Resource{ServiceName: fmt.Sprintf("svc-%d", i)}}
		for j := 0; j < 2; j++ {
			x := httpExchange(l7.SideServer, "1.1", "GET", "/", 200)
			m.Exchange(x, frontend, srv)
		}
	}
	md := m.Emit(t0, nil)
	totals := points(t, md, MetricServiceGraphTotal)
	require.Len(t, totals, 3, "2 edges and the overflow series")
	assert.Equal(t, map[string]any{attrOverflow: true}, totals[2].attrs)
	assert.Equal(t, int64(6), totals[2].value)
	var sum int64
	for _, p := range totals {
		sum += p.value
	}
	assert.Equal(t, int64(10), sum)
	overflow := map[string]int64{}
	for _, o := range m.Overflowed() {
		overflow[o.Name] = int64(o.Value)
	}
	assert.Equal(t, int64(6), overflow[MetricServiceGraphTotal])
	assert.Equal(t, int64(6), overflow[MetricServiceGraphServer])
}
