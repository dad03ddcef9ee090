//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Event names (DESIGN §7).
const (
	evDependency = "netintel.service_dependency"
	evErrors     = "netintel.error_pattern"
	evLatency    = "netintel.latency_anomaly"
	evSecurity   = "netintel.security_concern"
)

// Finding attributes (DESIGN §7).
const (
	aSource       = "netintel.source_service"
	aDest         = "netintel.dest_service"
	aErrorCount   = "netintel.error_count"
	aIsCascade    = "netintel.is_cascade"
	aRootCause    = "netintel.root_cause_service"
	aAffected     = "netintel.affected_services"
	aLatencyMS    = "netintel.latency_ms"
	aBaselineMS   = "netintel.baseline_ms"
	aFactor       = "netintel.deviation_factor"
	aConcernType  = "netintel.concern_type"
	aSourceIP     = "netintel.source_ip|client.address"
	aRoute        = "http.route|url.path|netintel.endpoint"
	aHTTPStatus   = "http.response.status_code"
	aHTTPMethod   = "http.request.method"
	aURLPath      = "url.path"
	aRPCMethod    = "rpc.method"
	aGRPCStatus   = "rpc.grpc.status_code|rpc.response.status_code"
	aDNSName      = "dns.question.name"
	aDNSRCode     = "netintel.dns.response_code"
	statusError   = "Error"
	kindClient    = "Client"
	kindServer    = "Server"
	receiverScope = "netintel.receiver."
)

// oneOf matches an attribute equal to any of its values (as text).
type oneOf []string

func matchOneOf(want any, got any) bool {
	if alts, ok := want.(oneOf); ok {
		for _, a := range alts {
			if fmt.Sprint(got) == a {
				return true
			}
		}
		return false
	}
	return fmt.Sprint(got) == fmt.Sprint(want)
}

// number reads an attribute as a float (int, double or numeric string).
func number(a map[string]any, key string) (float64, bool) {
	for _, k := range strings.Split(key, "|") {
		switch v := a[k].(type) {
		case int64:
			return float64(v), true
		case float64:
			return v, true
		case string:
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f, true
			}
		}
	}
	return 0, false
}

// within reports whether got is within frac (0.2 = 20%) of want.
func within(got, want, frac float64) bool {
	return math.Abs(got-want) <= frac*math.Abs(want)
}

// sumAttr sums a numeric attribute over records.
func sumAttr(recs []logRecord, key string) float64 {
	var total float64
	for _, r := range recs {
		if v, ok := number(r.Attrs, key); ok {
			total += v
		}
	}
	return total
}

// pairs counts the CLIENT spans of clientSvc (carrying want) that have a SERVER span in
// serverSvc with the same trace id whose parent is the client span.
func (o *output) pairs(clientSvc, serverSvc string, want attrs) (paired int, clients, servers []span) {
	clients = o.spansOf(kindClient, attrs{"service.name": clientSvc}.with(want))
	servers = o.spansOf(kindServer, attrs{"service.name": serverSvc}.with(want))
	index := map[string]bool{}
	for _, s := range servers {
		index[s.TraceID+"/"+s.ParentSpanID] = true
	}
	for _, c := range clients {
		if c.TraceID != "" && index[c.TraceID+"/"+c.SpanID] {
			paired++
		}
	}
	return paired, clients, servers
}

func (want attrs) with(more attrs) attrs {
	out := attrs{}
	for k, v := range want {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}
