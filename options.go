package netintelreceiver

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/intel"
	"github.com/netintel/netintelreceiver/internal/l7"
	"github.com/netintel/netintelreceiver/internal/otlp"
	nireceiver "github.com/netintel/netintelreceiver/receiver"
)

// sessionSettings maps the YAML configuration onto the options of each stage.
func sessionSettings(cfg *Config) nireceiver.Settings {
	src := cfg.source
	if src == nil {
		src = newSource(cfg)
	}
	host, _ := os.Hostname()
	return nireceiver.Settings{
		L7:            l7Options(cfg),
		Identity:      identityOptions(cfg, host),
		Intel:         intelOptions(cfg),
		Metrics:       otlpMetricsOptions(host),
		FlushInterval: cfg.Intelligence.FlushInterval,
		NewSource:     src,

		URLPath:             urlPathPolicy(cfg.Privacy.URLPath),
		PipelineSelfMetrics: cfg.Telemetry.MetricsInPipeline,
	}
}

func ports(ps []int) []uint16 {
	out := make([]uint16, 0, len(ps))
	for _, p := range ps {
		out = append(out, uint16(p))
	}
	return out
}

func captureOptions(cfg *Config) capture.Options {
	o := capture.DefaultOptions()
	o.IPv4, o.IPv6, o.TCP, o.UDP = cfg.IPv4, cfg.IPv6, cfg.TCP, cfg.UDP
	o.HTTP, o.HTTPS, o.GRPC, o.DNS = cfg.HTTP.Enabled, cfg.HTTPS.Enabled, cfg.GRPC.Enabled, cfg.DNS.Enabled
	o.HTTPPorts, o.HTTPSPorts, o.DNSPorts = ports(cfg.HTTP.Ports), ports(cfg.HTTPS.Ports), ports(cfg.DNS.Ports)
	o.MaxPayloadBytes = cfg.Capture.MaxPayloadBytes
	o.RingBufferSize = cfg.Capture.RingBufferSize
	o.MaxSockets = cfg.Capture.MaxSockets
	if cfg.Naming.HostRoot != "" {
		o.ProcRoot = filepath.Join(cfg.Naming.HostRoot, "proc")
	}
	// The kernel judges HTTP/1 with intel's thresholds, and counts on the metric bounds.
	in := cfg.Intelligence
	o.Judging = capture.Judging{
		Aggregate:         cfg.Capture.JudgeInKernel,
		ErrorStatus:       in.ErrorStatusThreshold,
		ErrorRecords:      errorRecords(in.ErrorSpanExemplars),
		Slow:              in.SlowRequestThreshold,
		SampleProbability: in.SpanSampling,
		Bounds:            durationBounds(),
		// A retried call's success is sent with its failures: retry_storm counts attempts.
		Recovery: intel.DefaultOptions().RetryGap,
		// Both ends on this node: judged once, on the server's socket (the client's side is
		// derived from it in the pipeline).
		PairLocal: true,
	}
	// Never capture the collector's own sockets: exporting would feed capture.
	o.ExcludePID = uint32(os.Getpid())
	return o
}

// errorRecords is how many errors of one kernel aggregate key are sent whole per drain and
// CPU: enough for the error spans intel keeps per group and window (error_span_exemplars) and
// for retry_storm to see calls repeated (it counts the rest from the aggregates); an outage
// beyond them costs counts, not records.
func errorRecords(exemplars int) int {
	return max(32, 2*exemplars)
}

// durationBounds are the metric histogram bounds (otlp.DefaultDurationBounds) as the kernel
// counts them.
func durationBounds() []time.Duration {
	out := make([]time.Duration, 0, len(otlp.DefaultDurationBounds))
	for _, b := range otlp.DefaultDurationBounds {
		out = append(out, time.Duration(b*float64(time.Second)))
	}
	return out
}

func l7Options(cfg *Config) l7.Options {
	o := l7.DefaultOptions()
	o.DurationBounds = durationBounds()
	o.HTTP, o.HTTPS, o.GRPC, o.DNS = cfg.HTTP.Enabled, cfg.HTTPS.Enabled, cfg.GRPC.Enabled, cfg.DNS.Enabled
	o.HTTPPorts, o.HTTPSPorts, o.DNSPorts = ports(cfg.HTTP.Ports), ports(cfg.HTTPS.Ports), ports(cfg.DNS.Ports)
	o.MaxStateBytes = cfg.L7.MaxStateBytes
	return o
}

func identityOptions(cfg *Config, host string) identity.Options {
	o := identity.Options{HostName: host, HostRoot: cfg.Naming.HostRoot, DockerDataRoot: cfg.Naming.DockerDataRoot}
	for _, s := range cfg.Services {
		m, err := identity.ParseMatch(s.Match)
		if err != nil {
			continue // Validate rejected it already
		}
		m.Name = s.Name
		o.Services = append(o.Services, m)
	}
	return o
}

func intelOptions(cfg *Config) intel.Options {
	o := intel.DefaultOptions()
	in, sec := cfg.Intelligence, cfg.Security
	o.SlowRequestThreshold = in.SlowRequestThreshold
	o.ErrorStatusThreshold = in.ErrorStatusThreshold
	o.LatencyDeviationFactor = in.LatencyDeviationFactor
	o.BaselineWarmup = in.BaselineWarmup
	o.CascadeWindow = in.CascadeWindow
	o.DependencyTTL = in.DependencyTTL
	o.SpanSampling = in.SpanSampling
	o.FlushInterval = in.FlushInterval
	o.SuspiciousUserAgents = sec.SuspiciousUserAgents
	o.SuspiciousEndpoints = sec.SuspiciousEndpoints
	o.PortScanThreshold = sec.PortScanThreshold
	o.EnumerationThreshold = sec.EnumerationThreshold
	o.ScanWindow = sec.ScanWindow
	o.AllowedDependencies = nil
	for _, dep := range sec.AllowedDependencies {
		if src, dst, err := intel.ParseAllowedDependency(dep); err == nil {
			o.AllowedDependencies = append(o.AllowedDependencies, [2]string{src, dst})
		}
	}
	o.ErrorSpanExemplars = in.ErrorSpanExemplars
	o.ChattyCallsPerRequest = in.ChattyCallsPerRequest
	o.ExfiltrationBytes = uint64(max(in.ExfiltrationBytes, 1))
	o.NewConnectionsPerSecond = in.NewConnectionsPerSecond
	o.UnansweredHandshakes = in.UnansweredHandshakes
	o.HealthCheckUserAgents = sec.HealthCheckUserAgents
	// Validate rejected what does not parse; what is left here parses.
	o.InternalNetworks = nil
	for _, n := range sec.InternalNetworks {
		if p, err := netip.ParsePrefix(strings.TrimSpace(n)); err == nil {
			o.InternalNetworks = append(o.InternalNetworks, p.Masked())
		}
	}
	o.Zones = nil
	for _, z := range sec.Zones {
		zone := intel.Zone{Name: strings.TrimSpace(z.Name)}
		for _, m := range z.Match {
			if zm, err := intel.ParseZoneMatch(m); err == nil {
				zone.Match = append(zone.Match, zm)
			}
		}
		o.Zones = append(o.Zones, zone)
	}
	o.AllowedZoneFlows = nil
	for _, f := range sec.AllowedZoneFlows {
		if src, dst, err := intel.ParseZoneFlow(f); err == nil {
			o.AllowedZoneFlows = append(o.AllowedZoneFlows, [2]string{src, dst})
		}
	}
	return o
}

func urlPathPolicy(s string) otlp.PathPolicy {
	switch s {
	case URLPathTemplate:
		return otlp.PathTemplate
	case URLPathDrop:
		return otlp.PathDrop
	}
	return otlp.PathRaw
}

func otlpMetricsOptions(host string) otlp.MetricsOptions {
	return otlp.MetricsOptions{Host: identity.Resource{HostName: host}}
}
