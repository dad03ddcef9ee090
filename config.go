package netintelreceiver

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/zap"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/intel"
)

// Config is the net_intel receiver's configuration.
type Config struct {
	IPv4 bool `mapstructure:"ipv4"`
	IPv6 bool `mapstructure:"ipv6"`
	TCP  bool `mapstructure:"tcp"`
	UDP  bool `mapstructure:"udp"`

	// Ports are hints: detection works on any port.
	HTTP  ProtocolConfig `mapstructure:"http"`
	HTTPS ProtocolConfig `mapstructure:"https"`
	GRPC  SwitchConfig   `mapstructure:"grpc"`
	DNS   ProtocolConfig `mapstructure:"dns"`

	Capture      CaptureConfig      `mapstructure:"capture"`
	L7           L7Config           `mapstructure:"l7"`
	Intelligence IntelligenceConfig `mapstructure:"intelligence"`
	Security     SecurityConfig     `mapstructure:"security"`
	Privacy      PrivacyConfig      `mapstructure:"privacy"`
	Telemetry    TelemetryConfig    `mapstructure:"telemetry"`

	// Services names endpoints statically; the first match wins.
	Services []ServiceConfig `mapstructure:"services"`

	// Naming says where the node's processes, cgroups and container runtimes' state are
	// read from (local services are named from them when Services does not name them).
	Naming NamingConfig `mapstructure:"naming"`

	// source, when set, replaces the platform's capture source (tests inject a replay).
	source func(*zap.Logger) (capture.Source, error)
}

// SwitchConfig turns a protocol on or off.
type SwitchConfig struct {
	Enabled bool `mapstructure:"enabled"`
}

// ProtocolConfig turns a protocol on or off and hints at its usual ports.
type ProtocolConfig struct {
	Enabled bool  `mapstructure:"enabled"`
	Ports   []int `mapstructure:"ports"`
}

// CaptureConfig bounds what crosses from the kernel.
type CaptureConfig struct {
	// MaxPayloadBytes is how many bytes of each read/write are copied for parsing.
	MaxPayloadBytes int `mapstructure:"max_payload_bytes"`
	// RingBufferSize is the kernel ring buffer size in bytes (a power of two, multiple of the page size).
	RingBufferSize int `mapstructure:"ring_buffer_size"`
	// JudgeInKernel judges HTTP/1 in the kernel: healthy exchanges are counted there (exact
	// metrics and graph from aggregates) and never cross; off, every exchange is sent.
	JudgeInKernel bool `mapstructure:"judge_in_kernel"`
	// MaxSockets bounds the kernel's socket and fd tables.
	MaxSockets int `mapstructure:"max_sockets"`
}

// L7Config bounds the protocol parsers' state.
type L7Config struct {
	// MaxStateBytes is the memory budget of all connections' parser state together (bytes,
	// estimated); over it the least recently used connections are shed, the largest first.
	MaxStateBytes int64 `mapstructure:"max_state_bytes"`
}

// PrivacyConfig says what of a request may leave the node.
type PrivacyConfig struct {
	// URLPath is what spans and findings carry in url.path: "raw" (the path as sent, without
	// the query string, as the semantic conventions require), "template" (the route template
	// in its place) or "drop" (no url.path at all).
	URLPath string `mapstructure:"url_path"`
}

// URL path policies.
const (
	URLPathRaw      = "raw"
	URLPathTemplate = "template"
	URLPathDrop     = "drop"
)

// TelemetryConfig says where the receiver's own metrics go.
type TelemetryConfig struct {
	// MetricsInPipeline also sends the receiver's own metrics (netintel.receiver.*: drops,
	// evictions, truncations) down its metrics pipeline. They always go to the collector's
	// internal telemetry (service::telemetry::metrics, :8888 by default).
	MetricsInPipeline bool `mapstructure:"metrics_in_pipeline"`
}

// IntelligenceConfig holds the thresholds of the findings.
type IntelligenceConfig struct {
	SlowRequestThreshold   time.Duration `mapstructure:"slow_request_threshold"`
	ErrorStatusThreshold   int           `mapstructure:"error_status_threshold"`
	LatencyDeviationFactor float64       `mapstructure:"latency_deviation_factor"`
	BaselineWarmup         int           `mapstructure:"baseline_warmup"`
	CascadeWindow          time.Duration `mapstructure:"cascade_window"`
	DependencyTTL          time.Duration `mapstructure:"dependency_ttl"`
	SpanSampling           float64       `mapstructure:"span_sampling"`
	FlushInterval          time.Duration `mapstructure:"flush_interval"`
	// ErrorSpanExemplars is how many error spans each error group keeps per flush window.
	ErrorSpanExemplars int `mapstructure:"error_span_exemplars"`
	// ChattyCallsPerRequest: calls to one dependency per request served that are N+1.
	ChattyCallsPerRequest float64 `mapstructure:"chatty_calls_per_request"`
	// ExfiltrationBytes: bytes to one external destination in a minute that may be exfiltration.
	ExfiltrationBytes int64 `mapstructure:"exfiltration_bytes"`
	// NewConnectionsPerSecond: new connections a second to one destination, about one per
	// request, that are no connection reuse.
	NewConnectionsPerSecond float64 `mapstructure:"new_connections_per_second"`
	// UnansweredHandshakes: retransmitted or abandoned handshakes towards one live listener in
	// a window that say its accept queue is full.
	UnansweredHandshakes int `mapstructure:"unanswered_handshakes"`
}

// SecurityConfig holds what counts as a security concern.
type SecurityConfig struct {
	SuspiciousUserAgents []string      `mapstructure:"suspicious_user_agents"`
	SuspiciousEndpoints  []string      `mapstructure:"suspicious_endpoints"`
	PortScanThreshold    int           `mapstructure:"port_scan_threshold"`
	EnumerationThreshold int           `mapstructure:"enumeration_threshold"`
	ScanWindow           time.Duration `mapstructure:"scan_window"`
	// AllowedDependencies, when set, lists the only allowed "source -> dest" pairs.
	AllowedDependencies []string `mapstructure:"allowed_dependencies"`
	// HealthCheckUserAgents are the prefixes of health checkers' user agents: never a concern.
	HealthCheckUserAgents []string `mapstructure:"health_check_user_agents"`
	// InternalNetworks: destinations outside them are external.
	InternalNetworks []string `mapstructure:"internal_networks"`
	// Zones and AllowedZoneFlows: a flow between two zones not allowed is a segmentation_violation.
	Zones            []ZoneConfig `mapstructure:"zones"`
	AllowedZoneFlows []string     `mapstructure:"allowed_zone_flows"`
}

// ZoneConfig is a named network zone: CIDRs, IPs, ip:port or service names.
type ZoneConfig struct {
	Name  string   `mapstructure:"name"`
	Match []string `mapstructure:"match"`
}

// ServiceConfig names the endpoints that match an "ip:port", an IP or a CIDR.
type ServiceConfig struct {
	Name  string `mapstructure:"name"`
	Match string `mapstructure:"match"`
}

// NamingConfig locates what local services are named from: /proc, the cgroup filesystem,
// and the state the container runtimes keep (containerd and CRI-O OCI configs, Docker's
// config.v2.json), all read-only.
type NamingConfig struct {
	// HostRoot is where the node's root filesystem is seen: "/" when the collector runs on
	// the node, "/host" in the DaemonSet (deploy/kubernetes mounts the paths there).
	HostRoot string `mapstructure:"host_root"`
	// DockerDataRoot is dockerd's --data-root on the node (under HostRoot).
	DockerDataRoot string `mapstructure:"docker_data_root"`
}

var (
	_ component.Config  = (*Config)(nil)
	_ confmap.Validator = (*Config)(nil)
)

// Limits of the configuration surface.
const (
	minPayloadBytes = 16
	maxPayloadBytes = 4096
	minRingBuffer   = 1 << 16
	minSockets      = 1024
	maxSockets      = 1 << 20
	maxRingBuffer   = 1 << 30
	minStateBytes   = 1 << 20
)

// Validate checks every field and reports every problem, each naming its key and value.
func (cfg *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !cfg.IPv4 && !cfg.IPv6 {
		add("ipv4 and ipv6 are both false: nothing would be captured")
	}
	if !cfg.TCP && !cfg.UDP {
		add("tcp and udp are both false: nothing would be captured")
	}
	for _, p := range []struct {
		key   string
		ports []int
	}{{"http", cfg.HTTP.Ports}, {"https", cfg.HTTPS.Ports}, {"dns", cfg.DNS.Ports}} {
		for i, port := range p.ports {
			if port < 1 || port > 65535 {
				add("%s.ports[%d]: %d is not a port (1-65535)", p.key, i, port)
			}
		}
		if len(p.ports) > capture.MaxPortsPerProtocol {
			add("%s.ports: %d ports listed; the kernel side takes at most %d per protocol (ports are hints: every protocol is detected on any port)", p.key, len(p.ports), capture.MaxPortsPerProtocol)
		}
	}

	c := cfg.Capture
	if c.MaxPayloadBytes < minPayloadBytes || c.MaxPayloadBytes > maxPayloadBytes {
		add("capture.max_payload_bytes: %d is outside %d-%d", c.MaxPayloadBytes, minPayloadBytes, maxPayloadBytes)
	}
	if c.RingBufferSize < minRingBuffer || c.RingBufferSize > maxRingBuffer || c.RingBufferSize&(c.RingBufferSize-1) != 0 {
		add("capture.ring_buffer_size: %d must be a power of two between %d and %d bytes", c.RingBufferSize, minRingBuffer, maxRingBuffer)
	}
	if c.MaxSockets < minSockets || c.MaxSockets > maxSockets {
		add("capture.max_sockets: %d is outside %d-%d", c.MaxSockets, minSockets, maxSockets)
	}

	if cfg.L7.MaxStateBytes < minStateBytes {
		add("l7.max_state_bytes: %d must be at least %d bytes (1 MiB)", cfg.L7.MaxStateBytes, minStateBytes)
	}
	switch cfg.Privacy.URLPath {
	case URLPathRaw, URLPathTemplate, URLPathDrop:
	default:
		add("privacy.url_path: %q must be %s, %s or %s", cfg.Privacy.URLPath, URLPathRaw, URLPathTemplate, URLPathDrop)
	}

	in := cfg.Intelligence
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			add("intelligence.%s: %s must be a positive duration", key, d)
		}
	}
	positive("slow_request_threshold", in.SlowRequestThreshold)
	positive("cascade_window", in.CascadeWindow)
	positive("dependency_ttl", in.DependencyTTL)
	positive("flush_interval", in.FlushInterval)
	if in.ErrorStatusThreshold < 100 || in.ErrorStatusThreshold > 599 {
		add("intelligence.error_status_threshold: %d is not an HTTP status (100-599)", in.ErrorStatusThreshold)
	}
	if !(in.LatencyDeviationFactor > 1) {
		add("intelligence.latency_deviation_factor: %g must be greater than 1 (a multiple of the baseline; at 1 every request above the baseline would be an anomaly)", in.LatencyDeviationFactor)
	}
	if in.BaselineWarmup < 1 {
		add("intelligence.baseline_warmup: %d must be at least 1 sample", in.BaselineWarmup)
	}
	if in.SpanSampling < 0 || in.SpanSampling > 1 {
		add("intelligence.span_sampling: %g must be a fraction between 0 and 1", in.SpanSampling)
	}
	if in.ErrorSpanExemplars < 0 {
		add("intelligence.error_span_exemplars: %d must be 0 or more spans per error group and window", in.ErrorSpanExemplars)
	}
	if in.ChattyCallsPerRequest < 1 {
		add("intelligence.chatty_calls_per_request: %g must be at least 1 call per request", in.ChattyCallsPerRequest)
	}
	if in.ExfiltrationBytes <= 0 {
		add("intelligence.exfiltration_bytes: %d must be a positive number of bytes", in.ExfiltrationBytes)
	}
	if in.NewConnectionsPerSecond <= 0 {
		add("intelligence.new_connections_per_second: %g must be a positive rate", in.NewConnectionsPerSecond)
	}
	if in.UnansweredHandshakes < 1 {
		add("intelligence.unanswered_handshakes: %d must be at least 1", in.UnansweredHandshakes)
	}

	s := cfg.Security
	if s.PortScanThreshold < 2 {
		add("security.port_scan_threshold: %d must be at least 2 distinct ports", s.PortScanThreshold)
	}
	if s.EnumerationThreshold < 2 {
		add("security.enumeration_threshold: %d must be at least 2 distinct paths", s.EnumerationThreshold)
	}
	if s.ScanWindow <= 0 {
		add("security.scan_window: %s must be a positive duration", s.ScanWindow)
	}
	for i, ua := range s.SuspiciousUserAgents {
		if strings.TrimSpace(ua) == "" {
			add("security.suspicious_user_agents[%d]: empty pattern would match every request", i)
		}
	}
	for i, ep := range s.SuspiciousEndpoints {
		if !strings.HasPrefix(ep, "/") {
			add("security.suspicious_endpoints[%d]: %q must be a path starting with /", i, ep)
		}
	}
	for i, dep := range s.AllowedDependencies {
		if _, _, err := intel.ParseAllowedDependency(dep); err != nil {
			add("security.allowed_dependencies[%d]: %w", i, err)
		}
	}
	for i, ua := range s.HealthCheckUserAgents {
		if strings.TrimSpace(ua) == "" {
			add("security.health_check_user_agents[%d]: empty prefix would exempt every request", i)
		}
	}
	for i, n := range s.InternalNetworks {
		if _, err := netip.ParsePrefix(strings.TrimSpace(n)); err != nil {
			add("security.internal_networks[%d]: %q is not a CIDR (10.0.0.0/8, fc00::/7): %v", i, n, err)
		}
	}
	zones := map[string]bool{}
	for i, z := range s.Zones {
		name := strings.TrimSpace(z.Name)
		switch {
		case name == "" || name == "*":
			add("security.zones[%d].name: %q must be a name (not empty, not *)", i, z.Name)
		case zones[name]:
			add("security.zones[%d].name: %q is already the name of another zone", i, z.Name)
		}
		zones[name] = true
		if len(z.Match) == 0 {
			add("security.zones[%d].match: empty: list CIDRs, IPs, ip:port or service names", i)
		}
		for j, m := range z.Match {
			if _, err := intel.ParseZoneMatch(m); err != nil {
				add("security.zones[%d].match[%d]: %w", i, j, err)
			}
		}
	}
	for i, f := range s.AllowedZoneFlows {
		src, dst, err := intel.ParseZoneFlow(f)
		if err != nil {
			add("security.allowed_zone_flows[%d]: %w", i, err)
			continue
		}
		for _, z := range []string{src, dst} {
			if z != "*" && !zones[z] {
				add("security.allowed_zone_flows[%d]: %q names zone %q, which security.zones does not define", i, f, z)
			}
		}
	}

	for _, p := range []struct{ key, path string }{
		{"naming.host_root", cfg.Naming.HostRoot}, {"naming.docker_data_root", cfg.Naming.DockerDataRoot},
	} {
		if !filepath.IsAbs(p.path) {
			add("%s: %q must be an absolute path", p.key, p.path)
		}
	}

	for i, svc := range cfg.Services {
		if strings.TrimSpace(svc.Name) == "" {
			add("services[%d].name: must not be empty", i)
		}
		if _, err := identity.ParseMatch(svc.Match); err != nil {
			add("services[%d].match: %w", i, err)
		}
	}
	return errors.Join(errs...)
}
