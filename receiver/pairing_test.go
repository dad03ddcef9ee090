package receiver

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// scriptedSource hands out a fixed list of events, then the aggregates it holds at the final
// drain: the kernel's side of a pair as the pipeline receives it.
type scriptedSource struct {
	events chan capture.Event
	once   sync.Once
	mu     sync.Mutex
	aggs   []*capture.HTTP1Aggregate
}

func newScriptedSource(evs []capture.Event, aggs []*capture.HTTP1Aggregate) *scriptedSource {
	s := &scriptedSource{events: make(chan capture.Event, len(evs)), aggs: aggs}
	for _, ev := range evs {
		s.events <- ev
	}
	return s
}

func (s *scriptedSource) Start(context.Context) error {
	s.once.Do(func() { close(s.events) })
	return nil
}
func (s *scriptedSource) Events() <-chan capture.Event              { return s.events }
func (s *scriptedSource) Counters() capture.Counters                { return capture.Counters{} }
func (s *scriptedSource) Close() error                              { return nil }
func (s *scriptedSource) SetJudging(capture.Judging) error          { return nil }
func (s *scriptedSource) SetRouteLimits([]capture.RouteLimit) error { return nil }
func (s *scriptedSource) SetRouteRules([]capture.RouteRule) error   { return nil }
func (s *scriptedSource) DrainHTTP1(fn func(*capture.HTTP1Aggregate)) error {
	s.mu.Lock()
	aggs := s.aggs
	s.aggs = nil
	s.mu.Unlock()
	for _, a := range aggs {
		fn(a)
	}
	return nil
}

// A local pair as the kernel reports it when it judged the connection once, on the server's
// socket: the connection's opens from both ends, one error exchange of the server's, and the
// server's aggregate of 50 healthy exchanges — all Paired when paired is set.
func pairEvents(paired bool) ([]capture.Event, []*capture.HTTP1Aggregate) {
	t0 := time.Now()
	const shopPID, webPID = 4000001, 4000002
	client := netip.MustParseAddrPort("127.0.0.1:40000")
	server := netip.MustParseAddrPort("127.0.0.20:8080")
	web := capture.Process{PID: webPID, TID: webPID, Comm: "web"}
	shop := capture.Process{PID: shopPID, TID: shopPID, Comm: "shop"}
	cs := capture.Socket{Cookie: 1, Transport: capture.TransportTCP, Role: capture.RoleClient, Local: client, Remote: server}
	ss := capture.Socket{Cookie: 2, Transport: capture.TransportTCP, Role: capture.RoleServer, Local: server, Remote: client}
	key := capture.RouteKey("/items/{id}")
	evs := []capture.Event{
		{Conn: &capture.ConnEvent{Time: t0, Kind: capture.ConnOpened, Process: web, Socket: cs}},
		{Conn: &capture.ConnEvent{Time: t0, Kind: capture.ConnOpened, Process: shop, Socket: ss}},
		{HTTP1: &capture.HTTP1Event{Process: shop, Socket: ss,
			RequestTime: t0.Add(time.Millisecond), ResponseTime: t0.Add(3 * time.Millisecond),
			Request:  []byte("GET /items/{id} HTTP/1.1\r\nHost: shop:8080\r\nUser-Agent: web/1\r\n\r\n"),
			Response: []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"),
			Status:   503, RouteKey: key, Reasons: capture.HTTP1Error | capture.HTTP1First,
			RequestSeq: 1001, ResponseSeq: 2001, ClientISN: 1000, ServerISN: 2000, Paired: paired}},
	}
	agg := &capture.HTTP1Aggregate{PID: shopPID, Role: capture.RoleServer, Port: 8080, Local: server.Addr(),
		Peer: client.Addr(), PeerPID: webPID, Paired: paired, Method: "GET", Status: 200, Version: "1.1",
		RouteKey: key, Count: 50, Sum: 50 * time.Millisecond}
	agg.Latency[40] = 50
	agg.Explicit[2] = 50
	return evs, []*capture.HTTP1Aggregate{agg}
}

func runPair(t *testing.T, paired bool) (*consumertest.TracesSink, *consumertest.MetricsSink) {
	t.Helper()
	evs, aggs := pairEvents(paired)
	settings := replaySettings(t)
	settings.NewSource = func(*zap.Logger) (capture.Source, error) { return newScriptedSource(evs, aggs), nil }
	logs, traces, metrics := new(consumertest.LogsSink), new(consumertest.TracesSink), new(consumertest.MetricsSink)
	r := startSession(t, settings, logs, traces, metrics)
	require.Eventually(t, func() bool { return metricCount(metrics.AllMetrics(), "http.server.request.duration") > 0 },
		10*time.Second, 20*time.Millisecond)
	require.NoError(t, r.Shutdown(context.Background()))
	return traces, metrics
}

// metricCount sums the data points' counts (histograms) or values (sums) of a metric.
func metricCount(mds []pmetric.Metrics, name string) uint64 {
	var n uint64
	for _, md := range mds {
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					if m.Name() != name {
						continue
					}
					switch m.Type() {
					case pmetric.MetricTypeHistogram:
						for p := 0; p < m.Histogram().DataPoints().Len(); p++ {
							n += m.Histogram().DataPoints().At(p).Count()
						}
					case pmetric.MetricTypeSum:
						for p := 0; p < m.Sum().DataPoints().Len(); p++ {
							n += uint64(m.Sum().DataPoints().At(p).IntValue())
						}
					}
				}
			}
		}
	}
	return n
}

// TestPairedExchangesStandForBothEnds: a connection the kernel judged once, on its server's
// socket, yields the client's side too — its CLIENT span (the server span's parent, in the
// client's resource) and http.client.request.duration with every exchange, the aggregate's
// included — while the service graph counts each request once.
func TestPairedExchangesStandForBothEnds(t *testing.T) {
	traces, metrics := runPair(t, true)
	var client, server []ptrace.Span
	for _, sp := range allSpans(traces.AllTraces()) {
		switch sp.Kind() {
		case ptrace.SpanKindClient:
			client = append(client, sp)
		case ptrace.SpanKindServer:
			server = append(server, sp)
		}
	}
	require.Len(t, server, 1)
	require.Len(t, client, 1, "the quiet client's span is derived from the server's record")
	assert.Equal(t, client[0].SpanID(), server[0].ParentSpanID())
	assert.Equal(t, client[0].TraceID(), server[0].TraceID())
	assert.Equal(t, ptrace.StatusCodeError, client[0].Status().Code())
	assert.Equal(t, "web", spanService(traces.AllTraces(), ptrace.SpanKindClient))
	assert.Equal(t, "shop", spanService(traces.AllTraces(), ptrace.SpanKindServer))

	mds := metrics.AllMetrics()
	assert.EqualValues(t, 51, metricCount(mds, "http.server.request.duration"))
	assert.EqualValues(t, 51, metricCount(mds, "http.client.request.duration"), "the client's side: the error and the 50 the kernel counted")
	assert.EqualValues(t, 51, metricCount(mds, "traces_service_graph_request_total"), "each request once on the edge")
}

// TestUnpairedServerHasNoClientTwin: the healthy twin — a server's exchanges without Paired
// (a remote client, or one the kernel judges itself) never make up a client side.
func TestUnpairedServerHasNoClientTwin(t *testing.T) {
	traces, metrics := runPair(t, false)
	for _, sp := range allSpans(traces.AllTraces()) {
		assert.NotEqual(t, ptrace.SpanKindClient, sp.Kind(), "a client span no client sent")
	}
	mds := metrics.AllMetrics()
	assert.EqualValues(t, 51, metricCount(mds, "http.server.request.duration"))
	assert.Zero(t, metricCount(mds, "http.client.request.duration"))
}

// spanService is the service.name of the resource holding the first span of a kind.
func spanService(tds []ptrace.Traces, kind ptrace.SpanKind) string {
	for _, td := range tds {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			ss := rs.ScopeSpans()
			for j := 0; j < ss.Len(); j++ {
				for k := 0; k < ss.At(j).Spans().Len(); k++ {
					if ss.At(j).Spans().At(k).Kind() == kind {
						v, _ := rs.Resource().Attributes().Get("service.name")
						return v.AsString()
					}
				}
			}
		}
	}
	return ""
}
