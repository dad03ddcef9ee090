package receiver

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/metadata"
)

// lossySource replays the loopback recording and reports the kernel counters of a capture
// that lost events: what a flooded ring buffer looks like from user space.
type lossySource struct {
	capture.Source
	kernel capture.Counters
}

func (s *lossySource) Counters() capture.Counters {
	c := s.Source.Counters()
	c.Kernel = s.kernel.Kernel
	c.RingbufReserveFailed = s.kernel.RingbufReserveFailed
	c.PayloadTruncated = s.kernel.PayloadTruncated
	c.ExitedFDs = 5
	c.SeedFDTableFull = 6
	c.ProgramRunsMissed = 7
	return c
}

func lossySettings(t *testing.T, pipelineCopy bool) Settings {
	t.Helper()
	s := replaySettings(t)
	s.PipelineSelfMetrics = pipelineCopy
	s.NewSource = func(*zap.Logger) (capture.Source, error) {
		src, err := capture.NewReplay(recording)
		if err != nil {
			return nil, err
		}
		return &lossySource{Source: src, kernel: kernelCounters(map[string]uint64{"ringbuf_full": 4242, "payload_truncated": 17, "fd_table_full": 3, "http1_aggregated": 99})}, nil
	}
	return s
}

// points returns an instrument's points by reason (or "" for unlabelled ones).
func readPoints(t *testing.T, rd *sdkmetric.ManualReader) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, rd.Collect(context.Background(), &rm))
	out := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			byReason := map[string]int64{}
			add := func(attrs attribute.Set, v int64) {
				r, _ := attrs.Value(attrReason)
				if r.AsString() == "" {
					r, _ = attrs.Value("metric")
				}
				byReason[r.AsString()] = v
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				assert.True(t, d.IsMonotonic, m.Name)
				assert.Equal(t, metricdata.CumulativeTemporality, d.Temporality, m.Name)
				for _, p := range d.DataPoints {
					add(p.Attributes, p.Value)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, p.Value)
				}
			}
			out[m.Name] = byReason
		}
	}
	return out
}

// With only a logs pipeline, the receiver's drops, evictions and truncations — kernel and
// user space — are in the collector's own telemetry, read here from a real SDK reader.
func TestInternalTelemetryWithoutMetricsPipeline(t *testing.T) {
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	set := receivertest.NewNopSettings(metadata.Type)
	set.MeterProvider = mp

	logs := new(consumertest.LogsSink)
	s := NewSession(set, lossySettings(t, false))
	s.SetLogs(logs)
	r := NewReceiver(s, nil)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool {
		return readPoints(t, rd)[MetricExchanges][""] > 0
	}, 10*time.Second, 20*time.Millisecond)
	running := readPoints(t, rd)
	require.NoError(t, r.Shutdown(context.Background()))

	assert.Equal(t, int64(4242), running[MetricDropped]["ringbuf_full"], "kernel ring-buffer drops")
	assert.Equal(t, int64(3), running[MetricDropped]["fd_table_full"])
	assert.Equal(t, int64(5), running[MetricEvicted]["fds_of_exited_processes"], "fd entries of exited processes swept")
	assert.Equal(t, int64(6), running[MetricDropped]["fd_table_full_at_start"], "sockets open at start the full fd table had no room for")
	assert.Equal(t, int64(7), running[MetricDropped]["program_runs_missed"], "kernel program runs the kernel skipped")
	assert.Equal(t, int64(17), running[MetricTruncated]["payload_truncated"])
	assert.Equal(t, int64(99), running[MetricKernel]["http1_aggregated"], "what the kernel counted in place")
	for _, kc := range capture.KernelCounters {
		found := false
		for _, points := range running {
			if _, ok := points[kc.Name]; ok {
				found = true
			}
		}
		if kc.Name == "ringbuf_bytes" || kc.Name == "unclassified" {
			found = true // their own instrument, ignored{kernel_unclassified}
		}
		assert.True(t, found, "kernel counter %s is in the collector's telemetry", kc.Name)
	}
	for _, reason := range []string{"sequence_gap", "unmatched_response", "resync", "findings_overflow", "export_queue_logs", "parse_failure_http1"} {
		_, ok := running[MetricDropped][reason]
		assert.True(t, ok, "dropped{reason=%s} is reported (zero or not)", reason)
	}
	for _, reason := range []string{"timeout", "capture_gap", "released"} {
		_, ok := running[MetricUnanswered][reason]
		assert.True(t, ok, "unanswered{reason=%s}", reason)
	}
	for _, reason := range []string{"hpack_unknown_index", "partial_headers"} {
		_, ok := running[MetricTruncated][reason]
		assert.True(t, ok, "truncated{reason=%s}", reason)
	}
	for _, reason := range []string{"l7_connections", "l7_memory_budget", "edges", "processes"} {
		_, ok := running[MetricEvicted][reason]
		assert.True(t, ok, "evicted{reason=%s}", reason)
	}
	assert.Positive(t, running[MetricEventsRead][""])
	_, ok := running[MetricStateBytes][""]
	assert.True(t, ok, "the l7 state gauge is reported while running")

	// After the run, the totals stay where they were (not reset, not doubled), and a second
	// run of the same session continues them.
	for name := range readPoints(t, rd) {
		assert.NotContains(t, name, "netintel.", "instruments are unregistered while stopped")
	}
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool {
		return readPoints(t, rd)[MetricDropped]["ringbuf_full"] == 2*4242
	}, 10*time.Second, 20*time.Millisecond, "a second run continues the totals")
	require.NoError(t, r.Shutdown(context.Background()))
}

// The copy in the data pipeline is off by default and, when on, carries the same totals.
func TestPipelineCopyOfSelfMetrics(t *testing.T) {
	for _, on := range []bool{false, true} {
		metrics := new(consumertest.MetricsSink)
		r := startSession(t, lossySettings(t, on), nil, nil, metrics)
		require.Eventually(t, func() bool { return len(metrics.AllMetrics()) > 0 }, 10*time.Second, 20*time.Millisecond)
		require.NoError(t, r.Shutdown(context.Background()))
		names := metricNames(metrics.AllMetrics())
		assert.Equal(t, on, names[MetricDropped], "pipeline copy %v: netintel.receiver.dropped in the data pipeline", on)
		assert.True(t, names["http.server.request.duration"], "the data metrics are there either way")
		if !on {
			continue
		}
		var ringbuf int64 = -1
		for _, md := range metrics.AllMetrics() {
			for i := 0; i < md.ResourceMetrics().Len(); i++ {
				sms := md.ResourceMetrics().At(i).ScopeMetrics()
				for j := 0; j < sms.Len(); j++ {
					for k := 0; k < sms.At(j).Metrics().Len(); k++ {
						m := sms.At(j).Metrics().At(k)
						if m.Name() != MetricDropped {
							continue
						}
						for p := 0; p < m.Sum().DataPoints().Len(); p++ {
							dp := m.Sum().DataPoints().At(p)
							if v, _ := dp.Attributes().Get(attrReason); v.Str() == "ringbuf_full" {
								ringbuf = dp.IntValue()
							}
						}
					}
				}
			}
		}
		assert.Equal(t, int64(4242), ringbuf)
	}
}

// Every (instrument, reason) is declared once, and every instrument it names exists.
func TestSelfCountsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range selfCounts {
		k := c.metric + "|" + c.reason
		assert.False(t, seen[k], "duplicate %s", k)
		seen[k] = true
		def, ok := selfInstruments[c.metric]
		assert.True(t, ok, "%s is not an instrument", c.metric)
		assert.Equal(t, def.attr != "", c.reason != "", "%s: reason %q for attribute %q", c.metric, c.reason, def.attr)
	}
	for _, g := range selfGauges {
		assert.True(t, selfInstruments[g.metric].gauge, g.metric)
	}
}

// kernelCounters makes capture.Counters with the named kernel counters set.
func kernelCounters(byName map[string]uint64) capture.Counters {
	var c capture.Counters
	for i, kc := range capture.KernelCounters {
		c.Kernel[i] = byName[kc.Name]
	}
	c.RingbufReserveFailed = byName["ringbuf_full"]
	c.PayloadTruncated = byName["payload_truncated"]
	return c
}

// TestEveryTelemetryReasonIsDocumented: documentation.md lists every reason of every instrument
// the receiver reports.
func TestEveryTelemetryReasonIsDocumented(t *testing.T) {
	b, err := os.ReadFile("../documentation.md")
	require.NoError(t, err)
	doc := string(b)
	for _, c := range selfCounts {
		if c.reason == "" {
			if !strings.Contains(doc, "`"+c.metric+"`") {
				t.Errorf("instrument %s is not in documentation.md", c.metric)
			}
			continue
		}
		want := "`" + c.reason + "`"
		if p, suffix, ok := strings.Cut(c.reason, "parse_failure_"); ok && p == "" && suffix != "http1" {
			want = "`_" + suffix + "`" // listed as `parse_failure_http1`, `_http2`, …
		}
		if !strings.Contains(doc, want) {
			t.Errorf("%s{reason=%s} is not in documentation.md", c.metric, c.reason)
		}
	}
}
