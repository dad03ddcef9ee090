package otlp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// One service, many processes (nginx workers, a restarted server, one curl per request):
// one series, keyed by what names the service, without process.pid.
func TestMetricSeriesKeyedByServiceNotPID(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	for pid := uint32(100); pid < 110; pid++ {
		srv := checkout
		srv.Resource.PID = pid
		m.Exchange(httpExchange(l7.SideServer, "1.1", "GET", "/items", 200), frontend, srv)
	}
	md := m.Emit(t0.Add(time.Minute), nil)
	p := onePoint(t, md, MetricHTTPServerDuration)
	assert.Equal(t, uint64(10), p.count)
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		_, hasPID := md.ResourceMetrics().At(i).Resource().Attributes().Get(attrProcessPID)
		assert.False(t, hasPID, "metric resources carry no process.pid")
	}
}

// A series that stops receiving is emitted once more with the "no recorded value" flag,
// then dropped; when it comes back it restarts with a new start time.
func TestMetricSeriesExpireWhenStale(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes, StaleAfter: 5 * time.Minute})
	m.Exchange(httpExchange(l7.SideServer, "1.1", "GET", "/old", 200), frontend, checkout)
	m.Emit(t0.Add(time.Minute), nil)

	dp := func(md pmetric.Metrics) (pmetric.HistogramDataPoint, bool) {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
			for j := 0; j < ms.Len(); j++ {
				if ms.At(j).Name() == MetricHTTPServerDuration {
					return ms.At(j).Histogram().DataPoints().At(0), true
				}
			}
		}
		return pmetric.HistogramDataPoint{}, false
	}
	quiet := m.Emit(t0.Add(4*time.Minute), nil)
	p, ok := dp(quiet)
	require.True(t, ok, "a quiet series stays until StaleAfter")
	assert.False(t, p.Flags().NoRecordedValue())

	last := m.Emit(t0.Add(7*time.Minute), nil)
	p, ok = dp(last)
	require.True(t, ok, "its last point marks it stale")
	assert.True(t, p.Flags().NoRecordedValue())
	_, ok = dp(m.Emit(t0.Add(8*time.Minute), nil))
	assert.False(t, ok, "then it is gone")

	m.Exchange(httpExchange(l7.SideServer, "1.1", "GET", "/old", 200), frontend, checkout)
	p, ok = dp(m.Emit(t0.Add(9*time.Minute), nil))
	require.True(t, ok)
	assert.Equal(t, uint64(1), p.Count(), "a series that comes back starts afresh")
	assert.Equal(t, t0.Add(8*time.Minute), p.StartTimestamp().AsTime(), "with the start of its new life")

	// Expired series make room under the cap.
	assert.Len(t, m.families[famHTTPServer].list, 1)
}

// Over the cap, measurements fold into an overflow series of their own service (its
// resource kept); past maxOverflowServices services, into the host's.
func TestMetricOverflowKeepsTheService(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes, MaxSeriesPerMetric: 1})
	m.Exchange(httpExchange(l7.SideServer, "1.1", "GET", "/first", 200), frontend, checkout)
	for i := 0; i < maxOverflowServices+5; i++ {
		svc := identity.Service{Name: fmt.Sprintf("svc-%d", i), Local: true, Resource: identity.Resource{ServiceName: fmt.Sprintf("svc-%d", i)}}
		m.Exchange(httpExchange(l7.SideServer, "1.1", "GET", "/x", 200), frontend, svc)
	}
	ps := points(t, m.Emit(t0, nil), MetricHTTPServerDuration)
	byRes := map[string]uint64{}
	for _, p := range ps {
		if p.attrs[attrOverflow] == true {
			byRes[p.resource] += p.count
		}
	}
	assert.Equal(t, uint64(1), byRes["svc-0"], "the overflow series keeps its service")
	assert.Equal(t, uint64(5), byRes["netintel"], "past the bound, the host's overflow series")
	assert.Len(t, byRes, maxOverflowServices+1)
}

// Under ClusterIP DNAT the client dials a virtual address; the server is local after all.
// The two halves share the request identity: one count, on the real edge, with the client's
// latency too — whichever half comes first.
func TestServiceGraphDNATCountsOnce(t *testing.T) {
	virtual := identity.Service{Name: "10.96.0.10:80"} // what the dialled address resolves to
	for _, serverFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("server half first %v", serverFirst), func(t *testing.T) {
			m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
			for i := 0; i < 4; i++ {
				cli := httpExchange(l7.SideClient, "1.1", "GET", "/items", 200)
				cli.RequestSeq += uint32(100 * i)
				cli.Server.Addr = netip.MustParseAddrPort("10.96.0.10:80")
				srv := httpExchange(l7.SideServer, "1.1", "GET", "/items", 200)
				srv.RequestSeq = cli.RequestSeq
				if serverFirst {
					m.Exchange(srv, frontend, checkout)
					m.Exchange(cli, frontend, virtual)
				} else {
					m.Exchange(cli, frontend, virtual)
					m.Exchange(srv, frontend, checkout)
				}
			}
			md := m.Emit(t0.Add(time.Minute), nil)
			total := onePoint(t, md, MetricServiceGraphTotal)
			assert.Equal(t, map[string]any{attrSGClient: "frontend", attrSGServer: "checkout", attrSGConnectionType: ""}, total.attrs,
				"no virtual-node edge for a server that is local")
			assert.Equal(t, int64(4), total.value, "each request once")
			assert.Equal(t, uint64(4), onePoint(t, md, MetricServiceGraphClient).count, "the client's latency joins the real edge")
			assert.Equal(t, uint64(4), onePoint(t, md, MetricServiceGraphServer).count)
		})
	}
}

// Healthy twin: a server that really is remote (no SERVER half ever comes) is counted on its
// virtual node once the hold is over — nothing is lost by waiting.
func TestServiceGraphRemoteServerCountedAfterHold(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	for i := 0; i < 3; i++ {
		x := httpExchange(l7.SideClient, "1.1", "POST", "/v1/charges", 200)
		x.RequestSeq += uint32(100 * i)
		x.Server.Addr = paymentsAddr
		m.Exchange(x, frontend, payments)
	}
	early := m.Emit(t0.Add(time.Second/2), nil) // within the hold of the last exchange's end
	assert.Empty(t, points(t, early, MetricServiceGraphTotal), "still waiting for a SERVER half")
	md := m.Emit(t0.Add(time.Minute), nil)
	total := onePoint(t, md, MetricServiceGraphTotal)
	assert.Equal(t, "virtual_node", total.attrs[attrSGConnectionType])
	assert.Equal(t, "payments.example.com", total.attrs[attrSGServer])
	assert.Equal(t, int64(3), total.value)

	// DNS over UDP has no request identity: counted at once.
	m.Exchange(dnsExchange(l7.SideClient, 0, "NOERROR"), frontend, resolver)
	var dns int64
	for _, p := range points(t, m.Emit(t0.Add(time.Minute), nil), MetricServiceGraphTotal) {
		if p.attrs[attrSGServer] == resolver.Name {
			dns = p.value
		}
	}
	assert.Equal(t, int64(1), dns)
}

// Requests whose outcome capture did not observe count as requests, never as latency.
func TestUnknownOutcomeCountsNoLatency(t *testing.T) {
	m := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	x := httpExchange(l7.SideServer, "1.1", "GET", "/items", 0)
	x.Failure, x.End = l7.FailureUnknown, x.Start
	m.Exchange(x, frontend, checkout)
	md := m.Emit(t0.Add(time.Minute), nil)
	assert.Empty(t, points(t, md, MetricHTTPServerDuration))
	total := onePoint(t, md, MetricServiceGraphTotal)
	assert.Equal(t, int64(1), total.value)
	assert.Empty(t, points(t, md, MetricServiceGraphFailed), "nobody's failure")
	assert.Empty(t, points(t, md, MetricServiceGraphServer))
}
