package otlp

import (
	"fmt"
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
	return fmt.Sprintf("%s depends on %s (%s port %d), first seen %s, %d requests",
		d.Edge.Source, d.Edge.Dest, d.Edge.Protocol, d.Edge.Port,
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
		hops := make([]string, len(e.Path))
		for i, p := range e.Path {
			hops[i] = p.Source + "->" + p.Dest
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
	what := strings.TrimSpace(l.Method + " " + l.Route)
	if l.Baseline == 0 {
		return fmt.Sprintf("slow request: %s took %.0f ms (called by %s)", strings.TrimSpace(l.Edge.Dest+" "+what), ms(l.Latency), l.Edge.Source)
	}
	return fmt.Sprintf("latency anomaly: %s took %.0f ms, %.1f× its %.0f ms baseline (called by %s)",
		strings.TrimSpace(l.Edge.Dest+" "+what), ms(l.Latency), l.DeviationFactor, ms(l.Baseline), l.Edge.Source)
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
	attrs.PutDouble(attrNIWindowMs, ms(r.Window))
	attrs.PutDouble(attrNIRatePerSec, r.RatePerSec)
	return fmt.Sprintf("retry storm: %s retried %s %d times in %s (%.1f/s)",
		r.Edge.Source, strings.TrimSpace(r.Edge.Dest+" "+r.Method+" "+r.Route), r.Attempts, r.Window, r.RatePerSec)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func putStrings(attrs pcommon.Map, key string, vals []string) {
	s := attrs.PutEmptySlice(key)
	s.EnsureCapacity(len(vals))
	for _, v := range vals {
		s.AppendEmpty().SetStr(v)
	}
}
