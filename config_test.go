package netintelreceiver

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/netintel/netintelreceiver/internal/intel"
	"github.com/netintel/netintelreceiver/internal/metadata"
	"github.com/netintel/netintelreceiver/internal/otlp"
)

func loadConfig(t *testing.T, file, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", file))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		return nil, err
	}
	return cfg, cfg.Validate()
}

func TestLoadConfig(t *testing.T) {
	def, err := loadConfig(t, "config.yaml", "")
	require.NoError(t, err)
	assert.Equal(t, createDefaultConfig(), def)

	full, err := loadConfig(t, "config.yaml", "full")
	require.NoError(t, err)
	want := createDefaultConfig().(*Config)
	want.IPv6 = false
	want.DNS.Ports = []int{53, 5353}
	want.Capture = CaptureConfig{MaxPayloadBytes: 1024, RingBufferSize: 16 << 20, JudgeInKernel: false, MaxSockets: 32768}
	want.L7 = L7Config{MaxStateBytes: 32 << 20}
	want.Privacy = PrivacyConfig{URLPath: URLPathTemplate}
	want.Telemetry = TelemetryConfig{MetricsInPipeline: true}
	want.Intelligence = IntelligenceConfig{
		SlowRequestThreshold:    2 * time.Second,
		ErrorStatusThreshold:    500,
		LatencyDeviationFactor:  4.5,
		BaselineWarmup:          50,
		CascadeWindow:           time.Minute,
		DependencyTTL:           10 * time.Minute,
		SpanSampling:            0.05,
		FlushInterval:           5 * time.Second,
		ErrorSpanExemplars:      2,
		ChattyCallsPerRequest:   30,
		ExfiltrationBytes:       50 << 20,
		NewConnectionsPerSecond: 25,
		UnansweredHandshakes:    5,
	}
	want.Security = SecurityConfig{
		SuspiciousUserAgents:  []string{"sqlmap", "nikto"},
		SuspiciousEndpoints:   []string{"/.env", "/.git"},
		PortScanThreshold:     30,
		EnumerationThreshold:  25,
		ScanWindow:            time.Minute,
		AllowedDependencies:   []string{"frontend -> api", "api->inventory"},
		HealthCheckUserAgents: []string{"kube-probe/", "my-checker"},
		InternalNetworks:      []string{"10.0.0.0/8", "fd00::/8"},
		Zones: []ZoneConfig{
			{Name: "web", Match: []string{"frontend", "10.1.0.0/16"}},
			{Name: "db", Match: []string{"10.2.0.5:5432", "ledger"}},
		},
		AllowedZoneFlows: []string{"web -> db"},
	}
	want.Services = []ServiceConfig{
		{Name: "checkout", Match: "127.0.0.10:8080"},
		{Name: "payments", Match: "10.1.0.0/16"},
		{Name: "db", Match: "::1"},
	}
	want.Naming = NamingConfig{HostRoot: "/host", DockerDataRoot: "/data/docker"}
	assert.Equal(t, want, full)
}

// Each invalid file holds one bad value; the error must name its key and the value.
func TestInvalidConfig(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"invalid_latency_deviation_factor.yaml", []string{"intelligence.latency_deviation_factor", "0.5"}},
		{"invalid_negative_duration.yaml", []string{"intelligence.cascade_window", "-5s"}},
		{"invalid_zero_duration.yaml", []string{"intelligence.flush_interval", "0s"}},
		{"invalid_error_status_threshold.yaml", []string{"intelligence.error_status_threshold", "700"}},
		{"invalid_port.yaml", []string{"http.ports[1]", "70000"}},
		{"invalid_span_sampling.yaml", []string{"intelligence.span_sampling", "1.5"}},
		{"invalid_services_match.yaml", []string{"services[0].match", "127.0.0.300:80"}},
		{"invalid_allowed_dependencies.yaml", []string{"security.allowed_dependencies[0]", "frontend api"}},
		{"invalid_unknown_key.yaml", []string{"latency_deviaton_factor"}},
		{"invalid_max_payload_bytes.yaml", []string{"capture.max_payload_bytes", "0"}},
		{"invalid_ring_buffer_size.yaml", []string{"capture.ring_buffer_size", "1000000"}},
		{"invalid_max_sockets.yaml", []string{"capture.max_sockets", "12"}},
		{"invalid_chatty_calls_per_request.yaml", []string{"intelligence.chatty_calls_per_request", "0.5"}},
		{"invalid_exfiltration_bytes.yaml", []string{"intelligence.exfiltration_bytes", "-1"}},
		{"invalid_new_connections_per_second.yaml", []string{"intelligence.new_connections_per_second", "0"}},
		{"invalid_unanswered_handshakes.yaml", []string{"intelligence.unanswered_handshakes", "0"}},
		{"invalid_error_span_exemplars.yaml", []string{"intelligence.error_span_exemplars", "-3"}},
		{"invalid_internal_networks.yaml", []string{"security.internal_networks[1]", "192.168.0.0"}},
		{"invalid_zone_match.yaml", []string{"security.zones[0].match[1]", "10.0.0.300"}},
		{"invalid_zone_name.yaml", []string{"security.zones[1].name", "web", "already"}},
		{"invalid_allowed_zone_flows.yaml", []string{"security.allowed_zone_flows[0]", "web -> dmz", "dmz"}},
		{"invalid_health_check_user_agents.yaml", []string{"security.health_check_user_agents[0]"}},
		// Rejected by validate, not at Start by the kernel side.
		{"invalid_too_many_ports.yaml", []string{"http.ports", "9 ports", "at most 8"}},
		// At 1 every request above the baseline would be an anomaly: rejected, never replaced.
		{"invalid_latency_deviation_factor_one.yaml", []string{"intelligence.latency_deviation_factor", "1", "greater than 1"}},
		{"invalid_url_path.yaml", []string{"privacy.url_path", `"hash"`, "raw, template or drop"}},
		{"invalid_max_state_bytes.yaml", []string{"l7.max_state_bytes", "4096"}},
		{"invalid_naming_host_root.yaml", []string{"naming.host_root", `"host"`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := loadConfig(t, tt.file, "")
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Intelligence.LatencyDeviationFactor = 0.5
	cfg.Intelligence.SpanSampling = -1
	cfg.Security.ScanWindow = 0
	cfg.Services = []ServiceConfig{{Name: "", Match: "nope"}}
	err := cfg.Validate()
	require.Error(t, err)
	for _, key := range []string{"latency_deviation_factor", "span_sampling", "security.scan_window", "services[0].name", "services[0].match"} {
		assert.Contains(t, err.Error(), key)
	}
}

// The YAML reaches the engine: every intelligence and security key of the full
// configuration is in the engine's options, parsed.
func TestIntelOptionsFromConfig(t *testing.T) {
	cfg, err := loadConfig(t, "config.yaml", "full")
	require.NoError(t, err)
	o := intelOptions(cfg)
	assert.Equal(t, 2, o.ErrorSpanExemplars)
	assert.Equal(t, 30.0, o.ChattyCallsPerRequest)
	assert.Equal(t, uint64(50<<20), o.ExfiltrationBytes)
	assert.Equal(t, 25.0, o.NewConnectionsPerSecond)
	assert.Equal(t, 5, o.UnansweredHandshakes)
	assert.Equal(t, []string{"kube-probe/", "my-checker"}, o.HealthCheckUserAgents)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}, o.InternalNetworks)
	assert.Equal(t, []intel.Zone{
		{Name: "web", Match: []intel.ZoneMatch{{Service: "frontend"}, {Prefix: netip.MustParsePrefix("10.1.0.0/16")}}},
		{Name: "db", Match: []intel.ZoneMatch{{AddrPort: netip.MustParseAddrPort("10.2.0.5:5432")}, {Service: "ledger"}}},
	}, o.Zones)
	assert.Equal(t, [][2]string{{"web", "db"}}, o.AllowedZoneFlows)
	assert.Equal(t, [][2]string{{"frontend", "api"}, {"api", "inventory"}}, o.AllowedDependencies)

	// The defaults are the engine's defaults.
	d := intelOptions(createDefaultConfig().(*Config))
	def := intel.DefaultOptions()
	assert.Equal(t, def.InternalNetworks, d.InternalNetworks)
	assert.Equal(t, def.HealthCheckUserAgents, d.HealthCheckUserAgents)
	assert.Equal(t, def.ChattyCallsPerRequest, d.ChattyCallsPerRequest)
	assert.Equal(t, def.ExfiltrationBytes, d.ExfiltrationBytes)
	assert.Equal(t, def.ErrorSpanExemplars, d.ErrorSpanExemplars)
}

// Whatever validate accepts reaches the stages unchanged: the capture options the kernel
// side checks at Start accept it, and no stage replaces a value the user set.
func TestValidConfigReachesTheStagesUnchanged(t *testing.T) {
	cfg, err := loadConfig(t, "config.yaml", "full")
	require.NoError(t, err)
	require.NoError(t, captureOptions(cfg).Validate(), "validate must reject what Start would")

	edge := createDefaultConfig().(*Config)
	edge.HTTP.Ports = []int{1, 2, 3, 4, 5, 6, 7, 8}
	edge.Intelligence.LatencyDeviationFactor = 1.01
	require.NoError(t, edge.Validate())
	require.NoError(t, captureOptions(edge).Validate())
	assert.Equal(t, 1.01, intelOptions(edge).LatencyDeviationFactor)

	s := sessionSettings(cfg)
	assert.Equal(t, int64(32<<20), s.L7.MaxStateBytes)
	assert.Equal(t, otlp.PathTemplate, s.URLPath)
	assert.True(t, s.PipelineSelfMetrics)
	def := sessionSettings(createDefaultConfig().(*Config))
	assert.Equal(t, otlp.PathRaw, def.URLPath, "url_path defaults to raw (the conventions)")
	assert.False(t, def.PipelineSelfMetrics, "the pipeline copy of the receiver's own metrics is off by default")
}
