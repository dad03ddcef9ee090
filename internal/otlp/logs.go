package otlp

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/intel"
)

// EventPrefix starts every finding's event name: netintel.<kind>.
const EventPrefix = "netintel."

// netintel.* attribute keys: the field names of the product brief's events, for what the
// semantic conventions have no name for.
const (
	attrNISourceService   = "netintel.source_service"
	attrNIDestService     = "netintel.dest_service"
	attrNIProtocol        = "netintel.protocol"
	attrNIPort            = "netintel.port"
	attrNIFirstSeen       = "netintel.first_seen"
	attrNIRequestCount    = "netintel.request_count"
	attrNIEndpoint        = "netintel.endpoint"
	attrNIMethod          = "netintel.method"
	attrNIStatusCode      = "netintel.status_code"
	attrNIStatus          = "netintel.status"
	attrNIErrorCount      = "netintel.error_count"
	attrNIWindowStart     = "netintel.window_start"
	attrNIWindowEnd       = "netintel.window_end"
	attrNIAffected        = "netintel.affected_services"
	attrNIIsCascade       = "netintel.is_cascade"
	attrNIRootCause       = "netintel.root_cause_service"
	attrNICascadePath     = "netintel.cascade_path"
	attrNILatencyMs       = "netintel.latency_ms"
	attrNIBaselineMs      = "netintel.baseline_ms"
	attrNIDeviationFactor = "netintel.deviation_factor"
	attrNIBaselineSamples = "netintel.baseline_samples"
	attrNIConcernType     = "netintel.concern_type"
	attrNISeverity        = "netintel.severity"
	attrNISourceIP        = "netintel.source_ip"
	attrNIUserAgent       = "netintel.user_agent"
	attrNITargetEndpoint  = "netintel.target_endpoint"
	attrNIBlocked         = "netintel.blocked"
	attrNICount           = "netintel.count"
	attrNIReason          = "netintel.reason"
	attrNIFailureCount    = "netintel.failure_count"
	attrNIAttempts        = "netintel.attempts"
	attrNIWindowMs        = "netintel.window_ms"
	attrNIRatePerSec      = "netintel.rate_per_sec"
	attrNIDestAddress     = "netintel.dest_address"

	attrNIExternal          = "netintel.external"
	attrNIQuantile          = "netintel.quantile"
	attrNIWindowSamples     = "netintel.window_samples"
	attrNIBaselineP50       = "netintel.baseline_p50_ms"
	attrNIBaselineP95       = "netintel.baseline_p95_ms"
	attrNIBaselineP99       = "netintel.baseline_p99_ms"
	attrNIWindowP50         = "netintel.window_p50_ms"
	attrNIWindowP95         = "netintel.window_p95_ms"
	attrNIWindowP99         = "netintel.window_p99_ms"
	attrNISourceZone        = "netintel.source_zone"
	attrNIDestZone          = "netintel.dest_zone"
	attrNILogicalCalls      = "netintel.logical_calls"
	attrNIAttemptsPerCall   = "netintel.attempts_per_call"
	attrNIFailureRatio      = "netintel.failure_ratio"
	attrNICallsPerRequest   = "netintel.calls_per_request"
	attrNICallCount         = "netintel.call_count"
	attrNIConnectionCount   = "netintel.connection_count"
	attrNIUnanswered        = "netintel.unanswered_handshakes"
	attrNIConnectionsPerSec = "netintel.connections_per_sec"
	attrNIBytesSent         = "netintel.bytes_sent"
	attrNIBaselineBytes     = "netintel.baseline_bytes"
)

// Logs converts findings into log events with raw paths (LogsWith, Privacy{}).
func Logs(findings []intel.Finding) plog.Logs { return LogsWith(findings, Privacy{}) }

// LogsWith converts findings into log events: one LogRecord per finding, grouped into one
// ResourceLogs per subject (the service the finding is about), in the order given. The
// privacy policy applies to the paths findings carry (a security finding's endpoint).
func LogsWith(findings []intel.Finding, privacy Privacy) plog.Logs {
	ld := plog.NewLogs()
	byRes := make(map[identity.Resource]plog.LogRecordSlice)
	for i := range findings {
		f := &findings[i]
		res := resourceOf(f.Subject)
		lrs, ok := byRes[res]
		if !ok {
			rl := ld.ResourceLogs().AppendEmpty()
			putResource(rl.Resource().Attributes(), res)
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(ScopeName)
			lrs = sl.LogRecords()
			byRes[res] = lrs
		}
		fillLogRecord(lrs.AppendEmpty(), f, privacy)
	}
	return ld
}

// EventName is the event name of a finding kind: "netintel.service_dependency", …
func EventName(k intel.Kind) string { return EventPrefix + k.String() }

func fillLogRecord(lr plog.LogRecord, f *intel.Finding, privacy Privacy) {
	lr.SetEventName(EventName(f.Kind))
	ts := pcommon.NewTimestampFromTime(f.Time)
	lr.SetTimestamp(ts)
	lr.SetObservedTimestamp(ts)
	lr.SetSeverityNumber(severityNumber(f.Severity))
	lr.SetSeverityText(strings.ToUpper(f.Severity.String()))
	if f.Example != nil {
		lr.SetTraceID(f.Example.TraceID)
		lr.SetSpanID(f.Example.SpanID)
		lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
	}
	attrs := lr.Attributes()
	attrs.EnsureCapacity(16)
	attrs.PutStr(attrNISeverity, f.Severity.String())
	var body string
	switch {
	case f.Dependency != nil:
		body = dependencyAttributes(attrs, f.Dependency)
	case f.ErrorPattern != nil:
		body = errorPatternAttributes(attrs, f.ErrorPattern)
	case f.LatencyAnomaly != nil:
		body = latencyAttributes(attrs, f.LatencyAnomaly)
	case f.SecurityConcern != nil:
		body = securityAttributes(attrs, f.SecurityConcern, f.Severity, privacy)
	case f.ConnectionFailure != nil:
		body = connectionFailureAttributes(attrs, f.ConnectionFailure)
	case f.RetryStorm != nil:
		body = retryStormAttributes(attrs, f.RetryStorm)
	case f.Chatty != nil:
		body = chattyAttributes(attrs, f.Chatty)
	case f.PoolExhaustion != nil:
		body = poolAttributes(attrs, f.PoolExhaustion)
	case f.Exfiltration != nil:
		body = exfiltrationAttributes(attrs, f.Exfiltration)
	default:
		body = f.Kind.String() + " finding about " + resourceOf(f.Subject).ServiceName
	}
	lr.Body().SetStr(body)
}

// severityNumber maps a finding's severity onto the OTel log severity scale.
func severityNumber(s intel.Severity) plog.SeverityNumber {
	switch s {
	case intel.SeverityInfo:
		return plog.SeverityNumberInfo
	case intel.SeverityLow:
		return plog.SeverityNumberWarn
	case intel.SeverityMedium:
		return plog.SeverityNumberWarn3
	case intel.SeverityHigh:
		return plog.SeverityNumberError
	case intel.SeverityCritical:
		return plog.SeverityNumberFatal
	}
	return plog.SeverityNumberUnspecified
}

// putEdge writes who calls whom, over what: netintel.* with the brief's names, plus the
// conventions' server.port and network.protocol.name / network.transport where they apply.
func putEdge(attrs pcommon.Map, e intel.EdgeKey) {
	attrs.PutStr(attrNISourceService, e.Source)
	attrs.PutStr(attrNIDestService, e.Dest)
	if e.Protocol != "" {
		attrs.PutStr(attrNIProtocol, e.Protocol)
		switch e.Protocol {
		case "http", "grpc":
			attrs.PutStr(attrProtocolName, "http")
			attrs.PutStr(attrTransport, "tcp")
		case "tls":
			attrs.PutStr(attrProtocolName, "tls")
			attrs.PutStr(attrTransport, "tcp")
		case "dns":
			attrs.PutStr(attrProtocolName, "dns")
		case "tcp", "udp":
			attrs.PutStr(attrTransport, e.Protocol)
		}
	}
	if e.Port != 0 {
		attrs.PutInt(attrNIPort, int64(e.Port))
		attrs.PutInt(attrServerPort, int64(e.Port))
	}
}

// putOperation writes the method and endpoint of a finding under the conventions' name for
// its protocol (http.request.method + http.route — a finding's route is a template, which is
// what http.route means, never url.path —, rpc.method, dns.question.name) and always as
// netintel.endpoint / netintel.method, so one query finds them whatever the protocol.
func putOperation(attrs pcommon.Map, protocol, method, route string) {
	if route != "" {
		attrs.PutStr(attrNIEndpoint, route)
	}
	if method != "" {
		attrs.PutStr(attrNIMethod, method)
	}
	switch protocol {
	case "http":
		if method != "" {
			attrs.PutStr(attrHTTPMethod, normalizeMethod(method))
		}
		if route != "" {
			attrs.PutStr(attrHTTPRoute, route)
		}
	case "grpc":
		if route != "" {
			attrs.PutStr(attrRPCMethod, route)
		}
	case "dns":
		if route != "" {
			attrs.PutStr(attrDNSQuestionName, route)
		}
	}
}

func dependencyAttributes(attrs pcommon.Map, d *intel.Dependency) string {
	putEdge(attrs, d.Edge)
	attrs.PutStr(attrNIFirstSeen, d.FirstSeen.UTC().Format(time.RFC3339Nano))
	attrs.PutInt(attrNIRequestCount, int64(d.RequestCount))
	attrs.PutBool(attrNIExternal, d.External)
	dest := d.Edge.Dest
	if d.External {
		dest = "external " + dest
		if d.DestAddr.IsValid() {
			attrs.PutStr(attrNIDestAddress, d.DestAddr.String())
			attrs.PutStr(attrServerAddress, d.DestAddr.Addr().Unmap().String())
			if d.DestAddr.String() != d.Edge.Dest {
				dest += " at " + d.DestAddr.String()
			}
		}
	}
	return fmt.Sprintf("%s depends on %s (%s port %d), first seen %s, %d requests",
		d.Edge.Source, dest, d.Edge.Protocol, d.Edge.Port,
		d.FirstSeen.UTC().Format(time.RFC3339), d.RequestCount)
}

func errorPatternAttributes(attrs pcommon.Map, e *intel.ErrorPattern) string {
	putEdge(attrs, e.Edge)
	putOperation(attrs, e.Edge.Protocol, e.Method, e.Route)
	if e.StatusCode != 0 {
		attrs.PutInt(attrNIStatusCode, int64(e.StatusCode))
		if e.Edge.Protocol == "http" {
			attrs.PutInt(attrHTTPStatus, int64(e.StatusCode))
		}
	}
	if e.Status != "" {
		attrs.PutStr(attrNIStatus, e.Status)
		attrs.PutStr(attrErrorType, e.Status)
	}
	attrs.PutInt(attrNIErrorCount, int64(e.ErrorCount))
	if !e.WindowStart.IsZero() {
		attrs.PutStr(attrNIWindowStart, e.WindowStart.UTC().Format(time.RFC3339Nano))
	}
	if !e.WindowEnd.IsZero() {
		attrs.PutStr(attrNIWindowEnd, e.WindowEnd.UTC().Format(time.RFC3339Nano))
	}
	attrs.PutBool(attrNIIsCascade, e.IsCascade)
	affected := e.AffectedServices
	if len(affected) == 0 {
		affected = []string{e.Edge.Dest}
	}
	putStrings(attrs, attrNIAffected, affected)
	if e.RootCause != "" {
		attrs.PutStr(attrNIRootCause, e.RootCause)
	}
	if len(e.Path) > 0 {
		// Each hop carries its own count: "checkout->payments:40".
		hops := make([]string, len(e.Path))
		for i, p := range e.Path {
			hops[i] = p.Edge.Source + "->" + p.Edge.Dest + ":" + strconv.FormatUint(p.Errors, 10)
		}
		putStrings(attrs, attrNICascadePath, hops)
	}
	what := strings.TrimSpace(e.Method + " " + e.Route)
	if e.IsCascade {
		return fmt.Sprintf("cascading failure: %d × %s on %s from %s; root cause %s, affected %s",
			e.ErrorCount, e.Status, what, e.Edge.Source, e.RootCause, strings.Join(affected, " → "))
	}
	return fmt.Sprintf("%d × %s on %s (called by %s)", e.ErrorCount, e.Status, strings.TrimSpace(e.Edge.Dest+" "+what), e.Edge.Source)
}

func latencyAttributes(attrs pcommon.Map, l *intel.LatencyAnomaly) string {
	putEdge(attrs, l.Edge)
	putOperation(attrs, l.Edge.Protocol, l.Method, l.Route)
	attrs.PutDouble(attrNILatencyMs, ms(l.Latency))
	attrs.PutDouble(attrNIBaselineMs, ms(l.Baseline))
	attrs.PutDouble(attrNIDeviationFactor, l.DeviationFactor)
	if l.Samples > 0 {
		attrs.PutInt(attrNIBaselineSamples, int64(l.Samples))
	}
	if l.Quantile != "" {
		attrs.PutStr(attrNIQuantile, l.Quantile)
		attrs.PutInt(attrNIWindowSamples, int64(l.WindowSamples))
	}
	for _, q := range []struct {
		key string
		v   time.Duration
	}{
		{attrNIBaselineP50, l.Before.P50}, {attrNIBaselineP95, l.Before.P95}, {attrNIBaselineP99, l.Before.P99},
		{attrNIWindowP50, l.After.P50}, {attrNIWindowP95, l.After.P95}, {attrNIWindowP99, l.After.P99},
	} {
		if q.v > 0 {
			attrs.PutDouble(q.key, ms(q.v))
		}
	}
	what := strings.TrimSpace(l.Edge.Dest + " " + l.Method + " " + l.Route)
	switch {
	case l.Quantile != "":
		return fmt.Sprintf("latency shift: %s %s is %.0f ms, %.1f× its %.0f ms baseline, over %d requests (called by %s)",
			what, l.Quantile, ms(l.Latency), l.DeviationFactor, ms(l.Baseline), l.WindowSamples, l.Edge.Source)
	case l.Baseline == 0:
		return fmt.Sprintf("slow request: %s took %.0f ms (called by %s)", what, ms(l.Latency), l.Edge.Source)
	}
	return fmt.Sprintf("slow request: %s took %.0f ms, %.1f× its %.0f ms median (called by %s)",
		what, ms(l.Latency), l.DeviationFactor, ms(l.Baseline), l.Edge.Source)
}

func securityAttributes(attrs pcommon.Map, s *intel.SecurityConcern, sev intel.Severity, privacy Privacy) string {
	attrs.PutStr(attrNIConcernType, string(s.Type))
	if s.SourceIP.IsValid() {
		ip := s.SourceIP.Unmap().String()
		attrs.PutStr(attrNISourceIP, ip)
		attrs.PutStr(attrClientAddress, ip)
	}
	if s.SourceService != "" {
		attrs.PutStr(attrNISourceService, s.SourceService)
	}
	if s.DestService != "" {
		attrs.PutStr(attrNIDestService, s.DestService)
	}
	if s.DestAddr.IsValid() {
		attrs.PutStr(attrNIDestAddress, s.DestAddr.String())
		attrs.PutStr(attrServerAddress, s.DestAddr.Addr().Unmap().String())
		attrs.PutInt(attrServerPort, int64(s.DestAddr.Port()))
	}
	if s.UserAgent != "" {
		attrs.PutStr(attrUserAgent, s.UserAgent)
		attrs.PutStr(attrNIUserAgent, s.UserAgent)
	}
	target := s.TargetEndpoint
	if target != "" {
		// The endpoint a scanner asked for is a raw path (url.path); privacy.url_path may
		// template it or keep only the template (netintel.target_endpoint, the brief's field).
		route := Route(target)
		path, ok := exportedPath(target, route, privacy.URLPath)
		if !ok {
			path = route
		} else {
			attrs.PutStr(attrURLPath, path)
		}
		target = path
		attrs.PutStr(attrNITargetEndpoint, target)
	}
	attrs.PutInt(attrNICount, int64(s.Count))
	attrs.PutBool(attrNIBlocked, s.Blocked)
	if s.SourceZone != "" {
		attrs.PutStr(attrNISourceZone, s.SourceZone)
	}
	if s.DestZone != "" {
		attrs.PutStr(attrNIDestZone, s.DestZone)
	}
	src := "an unknown source"
	switch {
	case s.SourceService != "" && s.SourceIP.IsValid():
		src = s.SourceService + " (" + s.SourceIP.Unmap().String() + ")"
	case s.SourceService != "":
		src = s.SourceService
	case s.SourceIP.IsValid():
		src = s.SourceIP.Unmap().String()
	}
	switch s.Type {
	case intel.ConcernSuspiciousUserAgent:
		return fmt.Sprintf("%s security concern: suspicious user agent %q from %s on %s", sev, s.UserAgent, src, target)
	case intel.ConcernSuspiciousEndpoint:
		return fmt.Sprintf("%s security concern: %s requested sensitive endpoint %s", sev, src, target)
	case intel.ConcernEnumeration:
		return fmt.Sprintf("%s security concern: %s enumerated %d endpoints on %s", sev, src, s.Count, s.DestService)
	case intel.ConcernPortScan:
		return fmt.Sprintf("%s security concern: %s probed %d ports", sev, src, s.Count)
	case intel.ConcernUnauthorized:
		return fmt.Sprintf("%s security concern: %s called %s, which is not an allowed dependency", sev, src, s.DestService)
	case intel.ConcernSegmentation:
		return fmt.Sprintf("%s security concern: %s in zone %s called %s in zone %s, a flow allowed_zone_flows does not allow",
			sev, src, s.SourceZone, s.DestService, s.DestZone)
	}
	return fmt.Sprintf("%s security concern %s from %s", sev, s.Type, src)
}

func connectionFailureAttributes(attrs pcommon.Map, c *intel.ConnectionFailure) string {
	putEdge(attrs, c.Edge)
	attrs.PutStr(attrNIReason, c.Reason)
	attrs.PutStr(attrErrorType, c.Reason)
	attrs.PutInt(attrNIFailureCount, int64(c.Count))
	return fmt.Sprintf("%d connections from %s to %s (port %d) failed: %s", c.Count, c.Edge.Source, c.Edge.Dest, c.Edge.Port, c.Reason)
}

func retryStormAttributes(attrs pcommon.Map, r *intel.RetryStorm) string {
	putEdge(attrs, r.Edge)
	putOperation(attrs, r.Edge.Protocol, r.Method, r.Route)
	attrs.PutInt(attrNIAttempts, int64(r.Attempts))
	attrs.PutInt(attrNILogicalCalls, int64(r.Calls))
	attrs.PutDouble(attrNIAttemptsPerCall, r.AttemptsPerCall)
	attrs.PutDouble(attrNIFailureRatio, r.FailureRatio)
	attrs.PutDouble(attrNIWindowMs, ms(r.Window))
	attrs.PutDouble(attrNIRatePerSec, r.RatePerSec)
	return fmt.Sprintf("retry storm: %s retried %s: %d failed attempts for %d calls (%.1f attempts per call, %.0f%% failed) in %s (%.1f/s)",
		r.Edge.Source, strings.TrimSpace(r.Edge.Dest+" "+r.Method+" "+r.Route), r.Attempts, r.Calls, r.AttemptsPerCall,
		100*r.FailureRatio, r.Window.Round(time.Millisecond), r.RatePerSec)
}

func chattyAttributes(attrs pcommon.Map, c *intel.ChattyCommunication) string {
	putEdge(attrs, c.Edge)
	attrs.PutDouble(attrNICallsPerRequest, c.CallsPerRequest)
	attrs.PutInt(attrNIRequestCount, int64(c.RequestCount))
	attrs.PutInt(attrNICallCount, int64(c.CallCount))
	attrs.PutDouble(attrNIWindowMs, ms(c.Window))
	return fmt.Sprintf("chatty communication: %s made %.1f calls to %s per request it served (%d calls for %d requests in %s)",
		c.Edge.Source, c.CallsPerRequest, c.Edge.Dest, c.CallCount, c.RequestCount, c.Window.Round(time.Millisecond))
}

func poolAttributes(attrs pcommon.Map, p *intel.ConnectionPoolExhaustion) string {
	putEdge(attrs, p.Edge)
	attrs.PutStr(attrNIReason, string(p.Reason))
	attrs.PutInt(attrNIConnectionCount, int64(p.Connections))
	attrs.PutInt(attrNIRequestCount, int64(p.Requests))
	attrs.PutInt(attrNIUnanswered, int64(p.Unanswered))
	attrs.PutInt(attrNIFailureCount, int64(p.Failures))
	attrs.PutDouble(attrNIConnectionsPerSec, p.RatePerSec)
	attrs.PutDouble(attrNIWindowMs, ms(p.Window))
	switch p.Reason {
	case intel.PoolNoReuse:
		return fmt.Sprintf("connection pool: %s opened %d connections to %s (port %d) for %d requests in %s (%.1f/s): no connection reuse",
			p.Edge.Source, p.Connections, p.Edge.Dest, p.Edge.Port, p.Requests, p.Window.Round(time.Millisecond), p.RatePerSec)
	case intel.PoolAcceptQueueFull:
		return fmt.Sprintf("connection pool: %s (port %d) stopped accepting: %d handshakes from %s unanswered in %s (accept queue full)",
			p.Edge.Dest, p.Edge.Port, p.Unanswered, p.Edge.Source, p.Window.Round(time.Millisecond))
	case intel.PoolEphemeralPortsExhausted:
		return fmt.Sprintf("connection pool: %s could not connect to %s (port %d) %d times: no local port left (EADDRNOTAVAIL)",
			p.Edge.Source, p.Edge.Dest, p.Edge.Port, p.Failures)
	}
	return fmt.Sprintf("connection pool exhaustion (%s) from %s to %s", p.Reason, p.Edge.Source, p.Edge.Dest)
}

func exfiltrationAttributes(attrs pcommon.Map, x *intel.DataExfiltration) string {
	attrs.PutStr(attrNISourceService, x.Source)
	attrs.PutStr(attrNIDestService, x.Dest)
	attrs.PutBool(attrNIExternal, true)
	if x.DestAddr.IsValid() {
		attrs.PutStr(attrNIDestAddress, x.DestAddr.String())
		attrs.PutStr(attrServerAddress, x.DestAddr.Addr().Unmap().String())
		attrs.PutInt(attrServerPort, int64(x.DestAddr.Port()))
	}
	attrs.PutInt(attrNIBytesSent, int64(x.BytesSent))
	attrs.PutInt(attrNIBaselineBytes, int64(x.BaselineBytes))
	attrs.PutDouble(attrNIWindowMs, ms(x.Window))
	return fmt.Sprintf("data exfiltration: %s sent %.1f MiB to external %s within %s (baseline %.1f MiB)",
		x.Source, float64(x.BytesSent)/(1<<20), x.Dest, x.Window, float64(x.BaselineBytes)/(1<<20))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func putStrings(attrs pcommon.Map, key string, vals []string) {
	s := attrs.PutEmptySlice(key)
	s.EnsureCapacity(len(vals))
	for _, v := range vals {
		s.AppendEmpty().SetStr(v)
	}
}
