// Package intel turns named exchanges, kernel-counted aggregates and connection events into
// findings, one detector per finding type; it also decides which exchanges are kept as spans.
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
	KindChattyCommunication
	KindConnectionPoolExhaustion
	KindDataExfiltration
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
	case KindChattyCommunication:
		return "chatty_communication"
	case KindConnectionPoolExhaustion:
		return "connection_pool_exhaustion"
	case KindDataExfiltration:
		return "data_exfiltration"
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
	Chatty            *ChattyCommunication
	PoolExhaustion    *ConnectionPoolExhaustion
	Exfiltration      *DataExfiltration
}

// Dependency: an edge seen for the first time, or again after dependency_ttl of silence.
type Dependency struct {
	Edge         EdgeKey
	FirstSeen    time.Time
	RequestCount uint64
	// External: the destination is outside security.internal_networks (the audit of external
	// calls); DestAddr is the address the client called, named in Edge.Dest by the name the
	// client resolved or its TLS server name when one was seen.
	External bool
	DestAddr netip.AddrPort
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

	// A cascade names the endpoint at its root cause: ErrorCount is the errors of that
	// endpoint in the window, and Path lists the failing edges with their own counts.
	IsCascade        bool
	RootCause        string       // the deepest failing callee
	AffectedServices []string     // from the root cause outward
	Path             []CascadeHop // edges of the cascade, root cause first
}

// CascadeHop is one failing edge of a cascade and its errors in the window.
type CascadeHop struct {
	Edge   EdgeKey
	Errors uint64
}

// LatencyAnomaly: a route whose latency distribution moved beyond latency_deviation_factor
// × its learned baseline, for two windows in a row (Quantile names the quantile that moved
// most; Before and After give the baseline's and the window's quantiles); or one request
// slower than slow_request_threshold (Quantile empty, After zero).
type LatencyAnomaly struct {
	Edge            EdgeKey
	Method          string
	Route           string
	Quantile        string        // "p50", "p95", "p99"; "" for a single slow request
	Latency         time.Duration // the window's quantile, or the slow request's latency
	Baseline        time.Duration // the baseline's same quantile (its median for a slow request); 0 when none was learned yet
	DeviationFactor float64
	Samples         uint64 // samples the baseline was learned from
	WindowSamples   uint64 // samples of the windows that moved
	Before, After   Quantiles
}

// Quantiles of a latency distribution; zero where too few samples were seen to tell.
type Quantiles struct {
	P50, P95, P99 time.Duration
}

// ConcernType names a security concern.
type ConcernType string

const (
	ConcernSuspiciousUserAgent ConcernType = "suspicious_user_agent"
	ConcernSuspiciousEndpoint  ConcernType = "suspicious_endpoint"
	ConcernEnumeration         ConcernType = "endpoint_enumeration"
	ConcernPortScan            ConcernType = "port_scan"
	ConcernUnauthorized        ConcernType = "unauthorized_communication"
	ConcernSegmentation        ConcernType = "segmentation_violation"
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
	// SourceZone and DestZone: the zones of a segmentation_violation (security.zones).
	SourceZone, DestZone string
}

// ConnectionFailure: refused, timed-out or reset connections on an edge in one window.
type ConnectionFailure struct {
	Edge   EdgeKey
	Reason string // "refused", "timed_out", "reset", "unreachable"
	Count  uint64
}

// RetryStorm: one client repeating the same failing call: most of its calls on the route
// fail, failed calls are attempted again after short gaps (AttemptsPerCall attempts per
// logical call on average), faster than the threshold.
type RetryStorm struct {
	Edge            EdgeKey
	Method          string
	Route           string
	Attempts        uint64 // failed attempts in the window
	Calls           uint64 // logical calls those attempts belong to
	AttemptsPerCall float64
	FailureRatio    float64 // failed / all attempts of the client on the route
	Window          time.Duration
	RatePerSec      float64
}

// ChattyCommunication: a service that makes, per request it serves, at least
// chatty_calls_per_request calls to one dependency in a window (the N+1 pattern).
type ChattyCommunication struct {
	Edge            EdgeKey // the calls: source, dependency, protocol, port
	CallsPerRequest float64
	RequestCount    uint64 // requests the source served in the window
	CallCount       uint64 // calls it made to the dependency
	Window          time.Duration
}

// PoolReason says how a connection pool ran dry.
type PoolReason string

const (
	// PoolNoReuse: about one new connection per request, at a high rate, to one destination.
	PoolNoReuse PoolReason = "no_connection_reuse"
	// PoolAcceptQueueFull: a listening server stopped accepting; handshakes queue and SYNs
	// go unanswered while some connects still complete.
	PoolAcceptQueueFull PoolReason = "accept_queue_full"
	// PoolEphemeralPortsExhausted: connect failed with EADDRNOTAVAIL.
	PoolEphemeralPortsExhausted PoolReason = "ephemeral_ports_exhausted"
)

// ConnectionPoolExhaustion: one of PoolReason on an edge in a window.
type ConnectionPoolExhaustion struct {
	Reason      PoolReason
	Edge        EdgeKey // Protocol "tcp"
	Connections uint64  // connections opened in the window
	Requests    uint64  // requests carried on the edge in the window
	Unanswered  uint64  // handshakes retransmitted or abandoned / timed out
	Failures    uint64  // connects refused with EADDRNOTAVAIL
	Window      time.Duration
	RatePerSec  float64 // connections opened per second (no_connection_reuse)
}

// DataExfiltration: bytes sent by one local service to one external destination in a
// window, above intelligence.exfiltration_bytes and above its learned baseline.
type DataExfiltration struct {
	Source        string
	Dest          string // the name the client resolved, the TLS server name, or ip:port
	DestAddr      netip.AddrPort
	BytesSent     uint64
	BaselineBytes uint64 // what the source usually sends there in a window (0: never before)
	Window        time.Duration
}
