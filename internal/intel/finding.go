// Package intel turns named exchanges and connection events into findings: dependencies,
// error patterns and cascades, latency anomalies, security concerns, connection failures and
// retry storms; it also decides which healthy exchanges are kept as spans.
package intel

import (
	"net/netip"
	"time"

	"github.com/netintel/netintelreceiver/internal/identity"
)

// Kind is the type of a finding; its String is the event name suffix (netintel.<kind>).
type Kind uint8

const (
	KindServiceDependency Kind = iota + 1
	KindErrorPattern
	KindLatencyAnomaly
	KindSecurityConcern
	KindConnectionFailure
	KindRetryStorm
)

func (k Kind) String() string {
	switch k {
	case KindServiceDependency:
		return "service_dependency"
	case KindErrorPattern:
		return "error_pattern"
	case KindLatencyAnomaly:
		return "latency_anomaly"
	case KindSecurityConcern:
		return "security_concern"
	case KindConnectionFailure:
		return "connection_failure"
	case KindRetryStorm:
		return "retry_storm"
	}
	return "unknown"
}

// Severity of a finding.
type Severity uint8

const (
	SeverityInfo Severity = iota + 1
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

func (s Severity) String() string {
	switch s {
	case SeverityInfo:
		return "info"
	case SeverityLow:
		return "low"
	case SeverityMedium:
		return "medium"
	case SeverityHigh:
		return "high"
	case SeverityCritical:
		return "critical"
	}
	return "unknown"
}

// EdgeKey identifies a dependency: who calls whom, over what.
type EdgeKey struct {
	Source   string // client service name
	Dest     string // server service name
	Protocol string // "http", "grpc", "dns", "tls", "tcp"
	Port     uint16 // server port
}

// ExchangeRef points at an example exchange, so a finding links to its span
// (the ids are derived from these, see l7.Exchange.TraceID).
type ExchangeRef struct {
	TraceID [16]byte
	SpanID  [8]byte // the span of the side that was observed (server span when both were)
}

// Finding is one piece of intelligence. Exactly one of the kind-specific fields is set,
// matching Kind.
type Finding struct {
	Kind     Kind
	Time     time.Time
	Severity Severity
	// Subject is the service the finding is about; it becomes the log record's resource.
	Subject identity.Service
	Example *ExchangeRef

	Dependency        *Dependency
	ErrorPattern      *ErrorPattern
	LatencyAnomaly    *LatencyAnomaly
	SecurityConcern   *SecurityConcern
	ConnectionFailure *ConnectionFailure
	RetryStorm        *RetryStorm
}

// Dependency: an edge seen for the first time, or again after dependency_ttl of silence.
type Dependency struct {
	Edge         EdgeKey
	FirstSeen    time.Time
	RequestCount uint64
}

// ErrorPattern: errors of one group (dest service, method, route, status) in one window,
// possibly part of a cascade.
type ErrorPattern struct {
	Edge        EdgeKey
	Method      string
	Route       string // templated path ("/api/users/{id}") or gRPC "pkg.Service/Method" or DNS name
	StatusCode  int    // HTTP status, gRPC status or DNS rcode; 0 for failures without a status
	Status      string // "503", "UNAVAILABLE", "NXDOMAIN", "connection_reset"
	ErrorCount  uint64
	WindowStart time.Time
	WindowEnd   time.Time

	IsCascade        bool
	RootCause        string    // the deepest failing callee
	AffectedServices []string  // from the root cause outward
	Path             []EdgeKey // edges of the cascade, root cause first
}

// LatencyAnomaly: a request slower than its learned baseline (or the absolute threshold).
type LatencyAnomaly struct {
	Edge            EdgeKey
	Method          string
	Route           string
	Latency         time.Duration
	Baseline        time.Duration // 0 when only slow_request_threshold applied
	DeviationFactor float64
	Samples         uint64 // samples the baseline was learned from
}

// ConcernType names a security concern.
type ConcernType string

const (
	ConcernSuspiciousUserAgent ConcernType = "suspicious_user_agent"
	ConcernSuspiciousEndpoint  ConcernType = "suspicious_endpoint"
	ConcernEnumeration         ConcernType = "endpoint_enumeration"
	ConcernPortScan            ConcernType = "port_scan"
	ConcernUnauthorized        ConcernType = "unauthorized_communication"
)

// SecurityConcern: one per (type, source) per scan window.
type SecurityConcern struct {
	Type           ConcernType
	SourceIP       netip.Addr
	SourceService  string
	DestService    string
	DestAddr       netip.AddrPort
	UserAgent      string
	TargetEndpoint string
	Count          uint64 // distinct ports / paths / requests that triggered it
	Blocked        bool   // always false: netintel observes, it does not block
}

// ConnectionFailure: refused, timed-out or reset connections on an edge in one window.
type ConnectionFailure struct {
	Edge   EdgeKey
	Reason string // "refused", "timed_out", "reset", "unreachable"
	Count  uint64
}

// RetryStorm: a client repeating a failing request faster than the threshold.
type RetryStorm struct {
	Edge       EdgeKey
	Method     string
	Route      string
	Attempts   uint64
	Window     time.Duration
	RatePerSec float64
}
