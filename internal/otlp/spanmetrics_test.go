package otlp

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// What the span_metrics connector (contrib v0.165.1) does with our sampled spans: it reads
// the OTel threshold from tracestate ("ot=th:…") and counts each span as its adjusted count,
// 2^56 / (2^56 − threshold) = 1/p, rounded stochastically (exact for p = 2^-k). So its
// counts are an unbiased estimate; ours (Metrics, fed every exchange) are exact. This test
// shows both through the real connector.
func TestSpanMetricsConnectorCorrectsSampledSpans(t *testing.T) {
	const (
		requests    = 200
		healthCalls = 5
		probability = 0.25 // a power of two: adjusted count is exactly 4, no stochastic rounding
	)
	thHex, ok := SamplingThreshold(probability)
	require.True(t, ok)
	th, err := sampling.TValueToThreshold(thHex)
	require.NoError(t, err)

	exact := NewMetrics(MetricsOptions{Start: t0, Host: hostRes})
	nodeA, nodeB := NewTraceBuilder(Privacy{}), NewTraceBuilder(Privacy{}) // the client's node, the server's node
	kept := 0
	for i := 0; i < requests; i++ {
		seq := uint32(i * 1000)
		c := httpExchange(l7.SideClient, "1.1", "GET", fmt.Sprintf("/api/users/%d", i), 200)
		s := httpExchange(l7.SideServer, "1.1", "GET", fmt.Sprintf("/api/users/%d", i), 200)
		c.RequestSeq += seq
		s.RequestSeq += seq
		exact.Exchange(c, frontend, checkout)
		exact.Exchange(s, frontend, checkout)

		// Consistent probability sampling: each node decides from the trace id alone,
		// so both make the same decision without talking to each other.
		keepC := th.ShouldSample(sampling.TraceIDToRandomness(pcommon.TraceID(c.TraceID())))
		keepS := th.ShouldSample(sampling.TraceIDToRandomness(pcommon.TraceID(s.TraceID())))
		require.Equal(t, keepC, keepS, "request %d: the two nodes disagree", i)
		if keepC {
			kept++
			nodeA.Append(c, frontend, checkout, probability)
			nodeB.Append(s, frontend, checkout, probability)
		}
	}
	// The default span_sampling, 1%: 2^56/(2^56−th) is 100.0000000000009, so the connector's
	// stochastic rounding gives 100 per span except with probability ~1e-12.
	const orders, defaultP = 3000, 0.01
	thHex1, _ := SamplingThreshold(defaultP)
	th1, err := sampling.TValueToThreshold(thHex1)
	require.NoError(t, err)
	keptOrders := 0
	for i := 0; i < orders; i++ {
		s := httpExchange(l7.SideServer, "1.1", "POST", fmt.Sprintf("/api/orders/%d", i), 201)
		s.RequestSeq += uint32(2_000_000 + i*100)
		exact.Exchange(s, frontend, checkout)
		if th1.ShouldSample(sampling.TraceIDToRandomness(pcommon.TraceID(s.TraceID()))) {
			keptOrders++
			nodeB.Append(s, frontend, checkout, defaultP)
		}
	}
	require.Greater(t, keptOrders, 0)
	for i := 0; i < healthCalls; i++ { // kept with probability 1: no threshold, count 1 each
		s := httpExchange(l7.SideServer, "1.1", "GET", "/health", 200)
		s.RequestSeq += uint32(1_000_000 + i*100)
		exact.Exchange(s, identity.Service{Name: "kubelet"}, checkout)
		nodeB.Append(s, identity.Service{Name: "kubelet"}, checkout, 1)
	}
	require.Greater(t, kept, 0)
	require.Less(t, kept, requests)

	calls := runSpanMetrics(t, nodeA.Traces(), nodeB.Traces())
	assert.Equal(t, int64(kept*4), calls[spanKey{"frontend", "GET /api/users/{id}", "SPAN_KIND_CLIENT"}],
		"client spans counted at their adjusted count 1/p")
	assert.Equal(t, int64(kept*4), calls[spanKey{"checkout", "GET /api/users/{id}", "SPAN_KIND_SERVER"}],
		"server spans counted at their adjusted count 1/p")
	assert.Equal(t, int64(healthCalls), calls[spanKey{"checkout", "GET /health", "SPAN_KIND_SERVER"}],
		"unsampled spans count 1")
	assert.Equal(t, int64(keptOrders*100), calls[spanKey{"checkout", "POST /api/orders/{id}", "SPAN_KIND_SERVER"}],
		"1%% sampled spans counted 100 each")
	t.Logf("%d requests, %d kept at p=%v: span_metrics estimates %d, Metrics counts %d exactly",
		requests, kept, probability, kept*4, requests)
	t.Logf("%d requests, %d kept at p=%v: span_metrics estimates %d, Metrics counts %d exactly",
		orders, keptOrders, defaultP, keptOrders*100, orders)

	// Our metrics saw every exchange, sampled or not: exact.
	md := exact.Emit(t0.Add(time.Minute), nil)
	var server, client uint64
	for _, p := range points(t, md, MetricHTTPServerDuration) {
		server += p.count
	}
	for _, p := range points(t, md, MetricHTTPClientDuration) {
		client += p.count
	}
	assert.Equal(t, uint64(requests+healthCalls+orders), server)
	assert.Equal(t, uint64(requests), client)
	totals := points(t, md, MetricServiceGraphTotal)
	require.Len(t, totals, 2)
	assert.Equal(t, int64(requests+orders), totals[0].value, "frontend → checkout, each request once")
	assert.Equal(t, int64(healthCalls), totals[1].value, "kubelet → checkout")
}

type spanKey struct{ service, name, kind string }

// runSpanMetrics pushes the batches through a real span_metrics connector and returns its
// calls counter per (service, span name, kind).
func runSpanMetrics(t *testing.T, batches ...ptrace.Traces) map[spanKey]int64 {
	t.Helper()
	factory := spanmetricsconnector.NewFactory()
	cfg := factory.CreateDefaultConfig().(*spanmetricsconnector.Config)
	cfg.MetricsFlushInterval = time.Minute
	sink := new(consumertest.MetricsSink)
	clock := clockwork.NewFakeClock()
	ctx := clockwork.AddToContext(context.Background(), clock)
	conn, err := factory.CreateTracesToMetrics(ctx, connectortest.NewNopSettings(factory.Type()), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, conn.Start(ctx, componenttest.NewNopHost()))
	defer func() { require.NoError(t, conn.Shutdown(context.Background())) }()

	for _, b := range batches {
		require.NoError(t, conn.ConsumeTraces(ctx, b))
	}
	// With cumulative temporality the connector reports a new series as 0 at its first
	// flush (a start point), and its count from the second flush on.
	for flush := 1; flush <= 2; flush++ {
		clock.BlockUntil(1) // the flush loop waits on its ticker
		clock.Advance(time.Minute)
		require.Eventually(t, func() bool { return len(sink.AllMetrics()) >= flush }, 10*time.Second, 5*time.Millisecond)
	}

	out := map[spanKey]int64{}
	md := sink.AllMetrics()[1]
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			if m.Name() != "traces.span.metrics.calls" || m.Type() != pmetric.MetricTypeSum {
				continue
			}
			for k := 0; k < m.Sum().DataPoints().Len(); k++ {
				dp := m.Sum().DataPoints().At(k)
				a := dp.Attributes().AsRaw()
				key := spanKey{fmt.Sprint(a["service.name"]), fmt.Sprint(a["span.name"]), fmt.Sprint(a["span.kind"])}
				if dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
					out[key] += int64(dp.DoubleValue())
				} else {
					out[key] += dp.IntValue()
				}
			}
		}
	}
	return out
}
