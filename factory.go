// Package netintelreceiver is the net_intel receiver: eBPF network capture turned into
// service dependencies, error cascades, latency anomalies and security findings, emitted as
// OTLP logs, spans and metrics.
package netintelreceiver

import (
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/receiver"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/intel"
	"github.com/netintel/netintelreceiver/internal/l7"
	"github.com/netintel/netintelreceiver/internal/metadata"
)

// NewFactory returns the factory of the net_intel receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
		receiver.WithTraces(createTraces, metadata.TracesStability),
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		IPv4:  true,
		IPv6:  true,
		TCP:   true,
		UDP:   true,
		HTTP:  ProtocolConfig{Enabled: true, Ports: []int{80, 8080, 3000}},
		HTTPS: ProtocolConfig{Enabled: true, Ports: []int{443, 8443}},
		GRPC:  SwitchConfig{Enabled: true},
		DNS:   ProtocolConfig{Enabled: true, Ports: []int{53}},
		Capture: CaptureConfig{
			MaxPayloadBytes: 512,
			RingBufferSize:  8 << 20,
			JudgeInKernel:   true,
			MaxSockets:      capture.DefaultMaxSockets,
		},
		L7:      L7Config{MaxStateBytes: l7.DefaultMaxStateBytes},
		Privacy: PrivacyConfig{URLPath: URLPathRaw},
		Intelligence: IntelligenceConfig{
			SlowRequestThreshold:    time.Second,
			ErrorStatusThreshold:    400,
			LatencyDeviationFactor:  3.0,
			BaselineWarmup:          30,
			CascadeWindow:           30 * time.Second,
			DependencyTTL:           5 * time.Minute,
			SpanSampling:            0.01,
			FlushInterval:           10 * time.Second,
			ErrorSpanExemplars:      5,
			ChattyCallsPerRequest:   20,
			ExfiltrationBytes:       10 << 20,
			NewConnectionsPerSecond: 10,
			UnansweredHandshakes:    3,
		},
		Security: SecurityConfig{
			SuspiciousUserAgents: []string{"sqlmap", "nikto", "masscan", "nmap", "gobuster", "dirbuster", "zgrab", "nuclei"},
			SuspiciousEndpoints: []string{"/.env", "/.git", "/admin", "/wp-admin", "/wp-login.php", "/phpmyadmin", "/.aws",
				"/actuator/env", "/actuator/heapdump", "/actuator/jolokia"},
			PortScanThreshold:     20,
			EnumerationThreshold:  20,
			ScanWindow:            30 * time.Second,
			HealthCheckUserAgents: intel.DefaultHealthCheckUserAgents(),
			InternalNetworks:      []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "fc00::/7", "::1/128"},
		},
		Naming: NamingConfig{
			HostRoot:       "/",
			DockerDataRoot: identity.DefaultDockerDataRoot,
		},
	}
}
