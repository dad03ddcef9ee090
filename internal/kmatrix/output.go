package kmatrix

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// What the scenario's traffic must produce (testdata/kmatrix/collector.yaml names the
// server; the client is busybox wget, named by its executable).
const (
	webService = "kmatrix-web"
	webPort    = 8090

	eventDependency   = "netintel.service_dependency"
	eventErrorPattern = "netintel.error_pattern"
	attrDestService   = "netintel.dest_service"
	attrStatusCode    = "http.response.status_code"
	attrServerPort    = "server.port"
	attrMethod        = "http.request.method"
)

// JudgeOutput checks the file exporter's OTLP JSON (one document per line) for what the
// busybox exchanges must produce on every kernel: the dependency finding, the 404
// error pattern, HTTP CLIENT and SERVER spans of both statuses, and the two sides paired by
// the trace ids derived from TCP sequence numbers (which read the kernel's tcp_sock).
func JudgeOutput(logLines, traceLines []string) []Check {
	var checks []Check
	add := func(name string, st Status, format string, args ...any) {
		checks = append(checks, Check{Name: name, Status: st, Detail: fmt.Sprintf(format, args...)})
	}

	var records []plog.LogRecord
	var bad []string
	for _, line := range nonEmpty(logLines) {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs([]byte(line))
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					records = append(records, lr)
				}
			}
		}
	}
	if len(bad) > 0 {
		add("logs.json", Fail, "%d line(s) are not OTLP JSON: %s", len(bad), bad[0])
	}

	finding := func(event string, match func(plog.LogRecord) bool) (plog.LogRecord, bool) {
		for _, lr := range records {
			if lr.EventName() == event && str(lr.Attributes(), attrDestService) == webService && match(lr) {
				return lr, true
			}
		}
		return plog.LogRecord{}, false
	}
	if lr, ok := finding(eventDependency, func(plog.LogRecord) bool { return true }); ok {
		add(eventDependency, Pass, "%s", lr.Body().AsString())
	} else {
		add(eventDependency, Fail, "no %s to %s among %d log records", eventDependency, webService, len(records))
	}
	if lr, ok := finding(eventErrorPattern, func(lr plog.LogRecord) bool { return integer(lr.Attributes(), attrStatusCode) == 404 }); ok {
		add(eventErrorPattern+" 404", Pass, "%s", lr.Body().AsString())
	} else {
		add(eventErrorPattern+" 404", Fail, "no %s with %s 404 to %s among %d log records", eventErrorPattern, attrStatusCode, webService, len(records))
	}

	type spanKey struct{ trace, span string }
	clients := map[spanKey]bool{}
	var servers []ptrace.Span
	statuses := map[ptrace.SpanKind]map[int64]int{ptrace.SpanKindClient: {}, ptrace.SpanKindServer: {}}
	bad = nil
	for _, line := range nonEmpty(traceLines) {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(line))
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					a := sp.Attributes()
					if integer(a, attrServerPort) != webPort || str(a, attrMethod) == "" {
						continue
					}
					if m, ok := statuses[sp.Kind()]; ok {
						m[integer(a, attrStatusCode)]++
					}
					switch sp.Kind() {
					case ptrace.SpanKindClient:
						clients[spanKey{sp.TraceID().String(), sp.SpanID().String()}] = true
					case ptrace.SpanKindServer:
						servers = append(servers, sp)
					}
				}
			}
		}
	}
	if len(bad) > 0 {
		add("traces.json", Fail, "%d line(s) are not OTLP JSON: %s", len(bad), bad[0])
	}
	for _, kind := range []ptrace.SpanKind{ptrace.SpanKindClient, ptrace.SpanKindServer} {
		name := "HTTP " + strings.ToUpper(kind.String()) + " spans"
		m := statuses[kind]
		if m[200] > 0 && m[404] > 0 {
			add(name, Pass, "%d × 200, %d × 404", m[200], m[404])
		} else {
			add(name, Fail, "want 200 and 404 spans on port %d, have %s", webPort, statusCounts(m))
		}
	}
	paired := 0
	for _, sp := range servers {
		if clients[spanKey{sp.TraceID().String(), sp.ParentSpanID().String()}] {
			paired++
		}
	}
	if paired > 0 {
		add("CLIENT/SERVER paired", Pass, "%d of %d server spans are children of their client span (ids from TCP sequence numbers)", paired, len(servers))
	} else {
		add("CLIENT/SERVER paired", Fail, "none of %d server spans has its client span as parent", len(servers))
	}
	return checks
}

func nonEmpty(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func str(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

func integer(m pcommon.Map, key string) int64 {
	if v, ok := m.Get(key); ok && v.Type() == pcommon.ValueTypeInt {
		return v.Int()
	}
	return 0
}

func statusCounts(m map[int64]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d × %d", m[code], code))
	}
	return strings.Join(parts, ", ")
}
