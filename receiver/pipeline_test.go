package receiver

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/intel"
	"github.com/netintel/netintelreceiver/internal/l7"
	"github.com/netintel/netintelreceiver/internal/metadata"
	"github.com/netintel/netintelreceiver/internal/route"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recording is a live loopback capture (HTTP over IPv4 and IPv6, a refused connect, a reset,
// DNS over UDP) made by internal/capture's kernel tests.
var recording = filepath.Join("..", "internal", "capture", "testdata", "loopback.events")

func replaySettings(t *testing.T) Settings {
	t.Helper()
	in := intel.DefaultOptions()
	in.SpanSampling = 1
	return Settings{
		L7:            l7.DefaultOptions(),
		Intel:         in,
		FlushInterval: 100 * time.Millisecond,
		NewSource: func(*zap.Logger) (capture.Source, error) {
			return capture.NewReplay(recording)
		},
	}
}

func startSession(t *testing.T, settings Settings, logs consumer.Logs, traces consumer.Traces, metrics consumer.Metrics) *Receiver {
	t.Helper()
	s := NewSession(receivertest.NewNopSettings(metadata.Type), settings)
	s.SetLogs(logs)
	s.SetTraces(traces)
	s.SetMetrics(metrics)
	r := NewReceiver(s, nil)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	return r
}

func eventNames(lds []plog.Logs) map[string]int {
	names := map[string]int{}
	for _, ld := range lds {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					names[lrs.At(k).EventName()]++
				}
			}
		}
	}
	return names
}

func allSpans(tds []ptrace.Traces) []ptrace.Span {
	var out []ptrace.Span
	for _, td := range tds {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			sss := td.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				for k := 0; k < sss.At(j).Spans().Len(); k++ {
					out = append(out, sss.At(j).Spans().At(k))
				}
			}
		}
	}
	return out
}

func metricNames(mds []pmetric.Metrics) map[string]bool {
	names := map[string]bool{}
	for _, md := range mds {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			sms := md.ResourceMetrics().At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				for k := 0; k < sms.At(j).Metrics().Len(); k++ {
					names[sms.At(j).Metrics().At(k).Name()] = true
				}
			}
		}
	}
	return names
}

// A recorded capture goes through every stage to the three consumers.
func TestPipelineDeliversFindingsSpansAndMetrics(t *testing.T) {
	logs, traces, metrics := new(consumertest.LogsSink), new(consumertest.TracesSink), new(consumertest.MetricsSink)
	r := startSession(t, replaySettings(t), logs, traces, metrics)

	require.Eventually(t, func() bool {
		return len(metrics.AllMetrics()) > 0 && traces.SpanCount() >= 4 && logs.LogRecordCount() > 0
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, r.Shutdown(context.Background()))

	assert.Positive(t, eventNames(logs.AllLogs())["netintel.service_dependency"], "dependency events: %v", eventNames(logs.AllLogs()))

	// Both halves of each HTTP request were captured on loopback: they pair.
	byTrace := map[[16]byte][]ptrace.Span{}
	for _, sp := range allSpans(traces.AllTraces()) {
		if sp.Name() == "GET /hello" {
			byTrace[sp.TraceID()] = append(byTrace[sp.TraceID()], sp)
		}
	}
	require.Len(t, byTrace, 2, "one trace per request (IPv4 and IPv6)")
	for _, pair := range byTrace {
		require.Len(t, pair, 2)
		client, server := pair[0], pair[1]
		if client.Kind() == ptrace.SpanKindServer {
			client, server = server, client
		}
		assert.Equal(t, ptrace.SpanKindClient, client.Kind())
		assert.Equal(t, ptrace.SpanKindServer, server.Kind())
		assert.Equal(t, client.SpanID(), server.ParentSpanID(), "server span's parent is the client span")
	}

	names := metricNames(metrics.AllMetrics())
	for _, want := range []string{"http.server.request.duration", "http.client.request.duration", "traces_service_graph_request_total", "dns.lookup.duration"} {
		assert.True(t, names[want], "metric %s missing from %v", want, names)
	}
}

// A consumer that refuses everything never stalls capture: every event is still processed
// and the refusals are counted.
func TestFailingConsumerDoesNotBlockCapture(t *testing.T) {
	fail := consumertest.NewErr(errors.New("backend down"))
	metrics := new(consumertest.MetricsSink)
	r := startSession(t, replaySettings(t), fail, fail, metrics)
	require.Eventually(t, func() bool { return len(metrics.AllMetrics()) > 0 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, r.Shutdown(context.Background()))
}

func TestOutputQueuesDropSpansBeforeFindings(t *testing.T) {
	traces := new(consumertest.TracesSink)
	o, err := newOutput(receivertest.NewNopSettings(metadata.Type), new(consumertest.LogsSink), traces, nil)
	require.NoError(t, err)
	span := func() ptrace.Traces {
		td := ptrace.NewTraces()
		td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		return td
	}
	finding := func() plog.Logs {
		ld := plog.NewLogs()
		ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		return ld
	}
	// Nobody is serving the queues: the traces queue overflows first.
	for range tracesQueueBatches + 10 {
		o.enqueueTraces(span())
	}
	for range tracesQueueBatches + 10 {
		o.enqueueLogs(finding())
	}
	assert.Equal(t, uint64(10), o.droppedSpans.Load())
	assert.Zero(t, o.droppedFindings.Load(), "findings have the deeper queue")
	o.drain(context.Background())
	assert.Equal(t, tracesQueueBatches, traces.SpanCount())
}

// blockingLogs holds every ConsumeLogs until its context ends, like a stuck exporter.
type blockingLogs struct{ consumertest.LogsSink }

func (b *blockingLogs) ConsumeLogs(ctx context.Context, _ plog.Logs) error {
	<-ctx.Done()
	return ctx.Err()
}

// A stuck consumer does not hold the collector's shutdown: its context ends with the run.
func TestStuckConsumerDoesNotHoldShutdown(t *testing.T) {
	metrics := new(consumertest.MetricsSink)
	r := startSession(t, replaySettings(t), new(blockingLogs), new(consumertest.TracesSink), metrics)
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*drainTimeout)
	defer cancel()
	require.NoError(t, r.Shutdown(ctx))
}

// Routes are learned in the pipeline, once per exchange, before intel and otlp see it:
// letter-only user names become {id} in the span names and http.route once the position
// has taken more distinct values than a route would, and a scanner's 404s teach nothing.
func TestPipelineLearnsRoutes(t *testing.T) {
	traces := new(consumertest.TracesSink)
	o, err := newOutput(receivertest.NewNopSettings(metadata.Type), nil, traces, nil)
	require.NoError(t, err)
	settings := replaySettings(t)
	settings.Routes = route.Options{MaxDistinct: 5}
	p := newPipeline(settings, zap.NewNop(), nil, o, nil)
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
	for i, u := range users {
		x := &l7.Exchange{
			Protocol: l7.ProtocolHTTP1, Transport: capture.TransportTCP, Side: l7.SideServer,
			Client: l7.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:40000")}, Server: l7.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.2:8080")},
			Start: time.Unix(100, 0), End: time.Unix(100, 1e6), ClientISN: 1, ServerISN: 2, RequestSeq: uint32(1000 * (i + 1)),
			HTTP: &l7.HTTP{Method: "GET", Path: "/users/" + u + "/orders", Status: 200},
		}
		p.exchange(x)
		want := "/users/" + u + "/orders"
		if i >= 5 {
			want = "/users/{id}/orders"
		}
		assert.Equal(t, want, x.HTTP.Route, "request %d", i)
	}
	// 404s of made-up paths do not count.
	for i := 0; i < 20; i++ {
		x := &l7.Exchange{
			Protocol: l7.ProtocolHTTP1, Transport: capture.TransportTCP, Side: l7.SideServer,
			Client: l7.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:40001")}, Server: l7.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.2:8080")},
			Start: time.Unix(101, 0), End: time.Unix(101, 1e6), ClientISN: 3, ServerISN: 4, RequestSeq: uint32(1000 * (i + 1)),
			HTTP: &l7.HTTP{Method: "GET", Path: "/probe" + string(rune('a'+i)), Status: 404},
		}
		p.exchange(x)
		assert.Equal(t, x.HTTP.Path, x.HTTP.Route)
	}
	assert.Equal(t, []route.Rule{{Service: "127.0.0.2:8080", Prefix: "/users", Position: 1}}, p.routes.Rules(), "only /users/{id} was learned")
	td := p.spans.Traces()
	names := map[string]int{}
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		ss := td.ResourceSpans().At(i).ScopeSpans().At(0).Spans()
		for j := 0; j < ss.Len(); j++ {
			names[ss.At(j).Name()]++
		}
	}
	assert.Equal(t, 3, names["GET /users/{id}/orders"], "span names: %v", names)
}

// A short-lived client's close is named as the client was while it lived: its upload to an
// external address is the service's (OTEL_SERVICE_NAME), even when the process has exited by
// the time the close is read.
func TestPipelineNamesClosesOfExitedProcesses(t *testing.T) {
	procRoot := t.TempDir()
	dir := filepath.Join(procRoot, "4242")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "environ"), []byte("OTEL_SERVICE_NAME=backup-agent\x00"), 0o644))
	o, err := newOutput(receivertest.NewNopSettings(metadata.Type), new(consumertest.LogsSink), nil, nil)
	require.NoError(t, err)
	settings := replaySettings(t)
	settings.Identity = identity.Options{ProcRoot: procRoot, HostName: "node"}
	p := newPipeline(settings, zap.NewNop(), nil, o, nil)
	sock := capture.Socket{Transport: capture.TransportTCP, Role: capture.RoleClient,
		Local: netip.MustParseAddrPort("10.0.0.1:40000"), Remote: netip.MustParseAddrPort("198.51.100.2:9000")}
	proc := capture.Process{PID: 4242, Comm: "busybox"}
	p.event(capture.Event{Conn: &capture.ConnEvent{Kind: capture.ConnOpened, Time: time.Unix(100, 0), Process: proc, Socket: sock}})
	require.NoError(t, os.RemoveAll(dir)) // the process exits
	p.event(capture.Event{Conn: &capture.ConnEvent{Kind: capture.ConnClosed, Time: time.Unix(101, 0), Process: proc, Socket: sock, BytesSent: 30 << 20}})
	var exfil []intel.Finding
	for _, f := range p.intel.Findings(time.Unix(102, 0)) {
		if f.Kind == intel.KindDataExfiltration {
			exfil = append(exfil, f)
		}
	}
	require.Len(t, exfil, 1)
	assert.Equal(t, "backup-agent", exfil[0].Exfiltration.Source)
	assert.Equal(t, "198.51.100.2:9000", exfil[0].Exfiltration.Dest)
}
