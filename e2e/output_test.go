//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// output is what the file exporters wrote so far, flattened for assertions.
type output struct {
	logs    []logRecord
	spans   []span
	metrics []point
}

type logRecord struct {
	Service   string         // resource service.name
	Res       map[string]any // every resource attribute
	EventName string
	Severity  string
	Time      time.Time
	TraceID   string
	SpanID    string
	Attrs     map[string]any
}

type span struct {
	Service      string
	Res          map[string]any // every resource attribute
	Name         string
	Kind         string // "Client", "Server", ...
	TraceID      string
	SpanID       string
	ParentSpanID string
	Status       string // "Unset", "Ok", "Error"
	TraceState   string
	Start, End   time.Time
	Attrs        map[string]any
}

// point is one data point of one metric stream.
type point struct {
	Service  string
	Resource string // all resource attributes, so the streams of two processes stay apart
	Name     string
	Type     string // "Sum", "Gauge", "Histogram", ...
	Time     time.Time
	Value    float64 // sum or gauge value; histogram count
	Sum      float64 // histogram sum
	Attrs    map[string]any
}

func (p point) stream() string { return p.Resource + "|" + p.Name + "|" + attrString(p.Attrs) }

// readOutput reads logs.json, traces.json and metrics.json (one OTLP JSON document per line)
// from dir. A line still being written (no trailing newline) is left for the next read.
func readOutput(dir string) (*output, error) {
	o := &output{}
	var errs []error
	errs = append(errs, eachLine(filepath.Join(dir, "logs.json"), func(b []byte) error {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(b)
		if err != nil {
			return err
		}
		o.addLogs(ld)
		return nil
	}))
	errs = append(errs, eachLine(filepath.Join(dir, "traces.json"), func(b []byte) error {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(b)
		if err != nil {
			return err
		}
		o.addTraces(td)
		return nil
	}))
	errs = append(errs, eachLine(filepath.Join(dir, "metrics.json"), func(b []byte) error {
		md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(b)
		if err != nil {
			return err
		}
		o.addMetrics(md)
		return nil
	}))
	return o, errors.Join(errs...)
}

func eachLine(path string, fn func([]byte) error) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1024*1024), 256*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := fn(line); err != nil {
			return fmt.Errorf("%s line %d: %w", filepath.Base(path), n, err)
		}
	}
	return sc.Err()
}

func serviceName(res pcommon.Resource) string {
	if v, ok := res.Attributes().Get("service.name"); ok {
		return v.AsString()
	}
	return ""
}

func (o *output) addLogs(ld plog.Logs) {
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		svc := serviceName(rl.Resource())
		res := rl.Resource().Attributes().AsRaw()
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				o.logs = append(o.logs, logRecord{
					Service:   svc,
					Res:       res,
					EventName: lr.EventName(),
					Severity:  lr.SeverityText(),
					Time:      lr.Timestamp().AsTime(),
					TraceID:   traceID(lr.TraceID()),
					SpanID:    spanID(lr.SpanID()),
					Attrs:     lr.Attributes().AsRaw(),
				})
			}
		}
	}
}

func (o *output) addTraces(td ptrace.Traces) {
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		svc := serviceName(rs.Resource())
		res := rs.Resource().Attributes().AsRaw()
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				sp := ss.At(k)
				o.spans = append(o.spans, span{
					Service:      svc,
					Res:          res,
					Name:         sp.Name(),
					Kind:         sp.Kind().String(),
					TraceID:      traceID(sp.TraceID()),
					SpanID:       spanID(sp.SpanID()),
					ParentSpanID: spanID(sp.ParentSpanID()),
					Status:       sp.Status().Code().String(),
					TraceState:   sp.TraceState().AsRaw(),
					Start:        sp.StartTimestamp().AsTime(),
					End:          sp.EndTimestamp().AsTime(),
					Attrs:        sp.Attributes().AsRaw(),
				})
			}
		}
	}
}

func (o *output) addMetrics(md pmetric.Metrics) {
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		svc := serviceName(rm.Resource())
		res := attrString(rm.Resource().Attributes().AsRaw())
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				add := func(p point) {
					p.Service, p.Resource, p.Name, p.Type = svc, res, m.Name(), m.Type().String()
					o.metrics = append(o.metrics, p)
				}
				switch m.Type() {
				case pmetric.MetricTypeSum:
					for d := 0; d < m.Sum().DataPoints().Len(); d++ {
						dp := m.Sum().DataPoints().At(d)
						add(point{Time: dp.Timestamp().AsTime(), Value: numberValue(dp), Attrs: dp.Attributes().AsRaw()})
					}
				case pmetric.MetricTypeGauge:
					for d := 0; d < m.Gauge().DataPoints().Len(); d++ {
						dp := m.Gauge().DataPoints().At(d)
						add(point{Time: dp.Timestamp().AsTime(), Value: numberValue(dp), Attrs: dp.Attributes().AsRaw()})
					}
				case pmetric.MetricTypeHistogram:
					for d := 0; d < m.Histogram().DataPoints().Len(); d++ {
						dp := m.Histogram().DataPoints().At(d)
						add(point{Time: dp.Timestamp().AsTime(), Value: float64(dp.Count()), Sum: dp.Sum(), Attrs: dp.Attributes().AsRaw()})
					}
				case pmetric.MetricTypeExponentialHistogram:
					for d := 0; d < m.ExponentialHistogram().DataPoints().Len(); d++ {
						dp := m.ExponentialHistogram().DataPoints().At(d)
						add(point{Time: dp.Timestamp().AsTime(), Value: float64(dp.Count()), Sum: dp.Sum(), Attrs: dp.Attributes().AsRaw()})
					}
				}
			}
		}
	}
}

func numberValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

func traceID(id pcommon.TraceID) string {
	if id.IsEmpty() {
		return ""
	}
	return id.String()
}

func spanID(id pcommon.SpanID) string {
	if id.IsEmpty() {
		return ""
	}
	return id.String()
}

// --- matching ---------------------------------------------------------------------------

// attrs is what a record must carry: attribute key → wanted value, compared as text
// (fmt.Sprint), so 503, "503" and int64(503) match alike and a string slice matches
// "[inventory api frontend]"; a oneOf value matches any of its values. A key listed as "a|b" matches when either attribute does.
// The key "service.name" matches the record's resource service.
type attrs map[string]any

func (want attrs) match(service string, got map[string]any) bool {
	for k, w := range want {
		ok := false
		for _, alt := range strings.Split(k, "|") {
			if alt == "service.name" {
				ok = ok || matchOneOf(w, service)
				continue
			}
			if v, present := got[alt]; present && matchOneOf(w, v) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// attrAny returns the first of the given attributes that is present, as text.
func attrAny(a map[string]any, keys ...string) (string, bool) {
	for _, k := range keys {
		if v, ok := a[k]; ok {
			return fmt.Sprint(v), true
		}
	}
	return "", false
}

// events returns the log records with the event name (netintel.<kind>) that carry want.
func (o *output) events(name string, want attrs) []logRecord {
	var out []logRecord
	for _, l := range o.logs {
		if l.EventName == name && want.match(l.Service, l.Attrs) {
			out = append(out, l)
		}
	}
	return out
}

// spansOf returns the spans of a kind ("Client", "Server", "" for any) that carry want.
func (o *output) spansOf(kind string, want attrs) []span {
	var out []span
	for _, s := range o.spans {
		if (kind == "" || s.Kind == kind) && want.match(s.Service, s.Attrs) {
			out = append(out, s)
		}
	}
	return out
}

// metricTotal is the sum, over the streams of the metric that carry want, of each stream's
// latest value (cumulative temporality): a counter's count, a histogram's count.
func (o *output) metricTotal(name string, want attrs) float64 {
	latest := map[string]point{}
	for _, p := range o.metrics {
		if p.Name != name || !want.match(p.Service, p.Attrs) {
			continue
		}
		if q, ok := latest[p.stream()]; !ok || !p.Time.Before(q.Time) {
			latest[p.stream()] = p
		}
	}
	var total float64
	for _, p := range latest {
		total += p.Value
	}
	return total
}

// metricNames lists the distinct metric names exported so far.
func (o *output) metricNames() []string {
	seen := map[string]bool{}
	var names []string
	for _, p := range o.metrics {
		if !seen[p.Name] {
			seen[p.Name] = true
			names = append(names, p.Name)
		}
	}
	sort.Strings(names)
	return names
}

// --- dumps for failure messages ----------------------------------------------------------

const dumpLimit = 25

func attrString(a map[string]any) string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", k, a[k])
	}
	return b.String()
}

func dumpLogs(recs []logRecord) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  (%d log records)\n", len(recs))
	for i, l := range recs {
		if i == dumpLimit {
			fmt.Fprintf(&b, "  … %d more\n", len(recs)-dumpLimit)
			break
		}
		fmt.Fprintf(&b, "  %s [%s] resource=%s {%s}\n", l.EventName, l.Severity, l.Service, attrString(l.Attrs))
	}
	return b.String()
}

// dumpEvents shows the records of one event name, or every record when there are none.
func (o *output) dumpEvents(name string) string {
	recs := o.events(name, nil)
	if len(recs) == 0 {
		return fmt.Sprintf("  no %s events; all events:\n%s", name, dumpLogs(o.logs))
	}
	return dumpLogs(recs)
}

func dumpSpans(spans []span) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  (%d spans)\n", len(spans))
	for i, s := range spans {
		if i == dumpLimit {
			fmt.Fprintf(&b, "  … %d more\n", len(spans)-dumpLimit)
			break
		}
		fmt.Fprintf(&b, "  %s %q resource=%s status=%s trace=%s span=%s parent=%s {%s}\n",
			s.Kind, s.Name, s.Service, s.Status, s.TraceID, s.SpanID, s.ParentSpanID, attrString(s.Attrs))
	}
	return b.String()
}

func (o *output) dumpMetric(name string) string {
	var b strings.Builder
	latest := map[string]point{}
	for _, p := range o.metrics {
		if p.Name == name {
			latest[p.stream()] = p
		}
	}
	if len(latest) == 0 {
		return fmt.Sprintf("  no %s; metrics exported: %v\n", name, o.metricNames())
	}
	keys := make([]string, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i == dumpLimit {
			fmt.Fprintf(&b, "  … %d more streams\n", len(keys)-dumpLimit)
			break
		}
		p := latest[k]
		fmt.Fprintf(&b, "  %s %s resource=%s value=%v {%s}\n", p.Name, p.Type, p.Service, p.Value, attrString(p.Attrs))
	}
	return b.String()
}
