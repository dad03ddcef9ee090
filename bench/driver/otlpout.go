package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// exported is what the collector's file exporters wrote in one session.
type exported struct {
	LogRecords int // every record; the collector watches the whole host
	Spans      int
	// Of these, the records of the benchmark's own traffic: resource service.name is one of
	// benchServices (nginx is mapped to "web"; wrk and the driver are named by executable).
	BenchLogRecords int
	BenchSpans      int
	// spanRoutes: the http.route values of each bench service's spans.
	spanRoutes map[string]map[string]bool
	// latest holds the last point of each stream. The metrics are cumulative: every export
	// repeats a stream's running total, so its last point is the total (summing the points
	// would count each request once per export). A stream is the metric name, the whole
	// resource, the point's attributes and its start time (a series that went stale and
	// came back starts again from zero: its two lives are two streams). For histograms the
	// value is the count.
	latest map[string]streamValue
	// nonCumulative names metrics exported with delta temporality, which latest would
	// undercount (the receiver exports none).
	nonCumulative []string
}

type streamValue struct {
	name  string
	attrs map[string]string // data point attributes plus resource service.name
	gauge bool
	value float64
	ts    uint64
}

// benchServices are the services of the benchmark's traffic.
var benchServices = map[string]bool{"web": true, "wrk": true, "netintel-bench": true}

func resourceService(res pcommon.Resource) string {
	if v, ok := res.Attributes().Get("service.name"); ok {
		return v.AsString()
	}
	return ""
}

func readExported(dir string) (*exported, error) {
	e := &exported{latest: map[string]streamValue{}, spanRoutes: map[string]map[string]bool{}}
	var errs []error
	errs = append(errs, eachLine(filepath.Join(dir, "logs.json"), func(b []byte) error {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(b)
		if err == nil {
			e.LogRecords += ld.LogRecordCount()
			for i := 0; i < ld.ResourceLogs().Len(); i++ {
				rl := ld.ResourceLogs().At(i)
				if benchServices[resourceService(rl.Resource())] {
					for j := 0; j < rl.ScopeLogs().Len(); j++ {
						e.BenchLogRecords += rl.ScopeLogs().At(j).LogRecords().Len()
					}
				}
			}
		}
		return err
	}))
	errs = append(errs, eachLine(filepath.Join(dir, "traces.json"), func(b []byte) error {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(b)
		if err == nil {
			e.Spans += td.SpanCount()
			for i := 0; i < td.ResourceSpans().Len(); i++ {
				rs := td.ResourceSpans().At(i)
				svc := resourceService(rs.Resource())
				if !benchServices[svc] {
					continue
				}
				for j := 0; j < rs.ScopeSpans().Len(); j++ {
					spans := rs.ScopeSpans().At(j).Spans()
					e.BenchSpans += spans.Len()
					for k := 0; k < spans.Len(); k++ {
						if r, ok := spans.At(k).Attributes().Get("http.route"); ok {
							if e.spanRoutes[svc] == nil {
								e.spanRoutes[svc] = map[string]bool{}
							}
							e.spanRoutes[svc][r.AsString()] = true
						}
					}
				}
			}
		}
		return err
	}))
	errs = append(errs, eachLine(filepath.Join(dir, "metrics.json"), func(b []byte) error {
		md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(b)
		if err == nil {
			e.addMetrics(md)
		}
		return err
	}))
	return e, errors.Join(errs...)
}

func eachLine(path string, fn func([]byte) error) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1024*1024), 512*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			if err := fn(line); err != nil {
				return fmt.Errorf("%s line %d: %w", filepath.Base(path), n, err)
			}
		}
	}
	return sc.Err()
}

func (e *exported) addMetrics(md pmetric.Metrics) {
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		svc := resourceService(rm.Resource())
		res := flat(rm.Resource().Attributes().AsRaw())
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				put := func(attrs pcommon.Map, v float64, start, ts pcommon.Timestamp) {
					a := map[string]string{"service.name": svc}
					attrs.Range(func(k string, val pcommon.Value) bool {
						a[k] = val.AsString()
						return true
					})
					key := fmt.Sprintf("%s|%s|%s|%d", m.Name(), res, flat(attrs.AsRaw()), start)
					if old, ok := e.latest[key]; !ok || uint64(ts) >= old.ts {
						e.latest[key] = streamValue{name: m.Name(), attrs: a, gauge: m.Type() == pmetric.MetricTypeGauge, value: v, ts: uint64(ts)}
					}
				}
				switch m.Type() {
				case pmetric.MetricTypeSum:
					if m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						e.nonCumulative = append(e.nonCumulative, m.Name())
					}
					for d := 0; d < m.Sum().DataPoints().Len(); d++ {
						dp := m.Sum().DataPoints().At(d)
						put(dp.Attributes(), number(dp), dp.StartTimestamp(), dp.Timestamp())
					}
				case pmetric.MetricTypeGauge:
					for d := 0; d < m.Gauge().DataPoints().Len(); d++ {
						dp := m.Gauge().DataPoints().At(d)
						put(dp.Attributes(), number(dp), 0, dp.Timestamp())
					}
				case pmetric.MetricTypeHistogram:
					if m.Histogram().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						e.nonCumulative = append(e.nonCumulative, m.Name())
					}
					for d := 0; d < m.Histogram().DataPoints().Len(); d++ {
						dp := m.Histogram().DataPoints().At(d)
						put(dp.Attributes(), float64(dp.Count()), dp.StartTimestamp(), dp.Timestamp())
					}
				}
			}
		}
	}
}

func number(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

func flat(a map[string]any) string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v;", k, a[k])
	}
	return b.String()
}

// streams are the last points of the metric's streams whose attributes include want.
func (e *exported) streams(name string, want map[string]string) []streamValue {
	var out []streamValue
	for _, s := range e.latest {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range want {
			if s.attrs[k] != v {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// total is the metric's total over the streams whose attributes include want: the sum of
// each stream's last cumulative value.
func (e *exported) total(name string, want map[string]string) float64 {
	var t float64
	for _, s := range e.streams(name, want) {
		t += s.value
	}
	return t
}

// routes are the distinct http.route values a service's spans and server metrics carry.
func (e *exported) routes(service string) []string {
	seen := map[string]bool{}
	for r := range e.spanRoutes[service] {
		seen[r] = true
	}
	for _, s := range e.streams("http.server.request.duration", map[string]string{"service.name": service}) {
		if r, ok := s.attrs["http.route"]; ok {
			seen[r] = true
		}
	}
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// selfCounters are the receiver's own counters (netintel.receiver.*, gauges left out) by
// "name{reason}", each its total.
func (e *exported) selfCounters() map[string]float64 {
	out := map[string]float64{}
	for _, s := range e.latest {
		if s.gauge || !strings.HasPrefix(s.name, "netintel.receiver.") {
			continue
		}
		key := s.name
		if r, ok := s.attrs["reason"]; ok {
			key += "{" + r + "}"
		} else if m, ok := s.attrs["metric"]; ok {
			key += "{" + m + "}"
		}
		out[key] += s.value
	}
	return out
}
