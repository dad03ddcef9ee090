package receiver

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/metadata"
)

// degradedSource is a replay that reports a kernel without tcp_synack_retransmits.
type degradedSource struct {
	capture.Source
	states []capture.CapabilityState
}

func (d degradedSource) Capabilities() []capture.CapabilityState { return d.states }

// statusHost records the component status events reported to it.
type statusHost struct {
	component.Host
	mu     sync.Mutex
	events []*componentstatus.Event
}

func (h *statusHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
}

func startWithCapabilities(t *testing.T, states []capture.CapabilityState) (*Receiver, *statusHost, *sdkmetric.ManualReader) {
	t.Helper()
	settings := replaySettings(t)
	settings.NewSource = func(*zap.Logger) (capture.Source, error) {
		src, err := capture.NewReplay(recording)
		return degradedSource{Source: src, states: states}, err
	}
	reader := sdkmetric.NewManualReader()
	set := receivertest.NewNopSettings(metadata.Type)
	set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	s := NewSession(set, settings)
	s.SetLogs(new(consumertest.LogsSink))
	r := NewReceiver(s, nil)
	host := &statusHost{Host: componentHost{}}
	require.NoError(t, r.Start(context.Background(), host))
	return r, host, reader
}

type componentHost struct{}

func (componentHost) GetExtensions() map[component.ID]component.Component { return nil }

func capabilityPoints(t *testing.T, reader *sdkmetric.ManualReader) map[string]string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]string{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "netintel.receiver.capability" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
				name, _ := dp.Attributes.Value("name")
				state, _ := dp.Attributes.Value("state")
				assert.EqualValues(t, 1, dp.Value)
				out[name.AsString()] = state.AsString()
			}
		}
	}
	return out
}

func TestDegradedKernelIsReportedInStatusAndTelemetry(t *testing.T) {
	states := []capture.CapabilityState{
		{Name: capture.CapSocketData, Required: true, On: true},
		{Name: capture.CapSynAckRetransmits, On: false, Reason: "ni_raw_retransmit_synack: tracepoint tcp:tcp_retransmit_synack not in this kernel"},
	}
	r, host, reader := startWithCapabilities(t, states)
	host.mu.Lock()
	require.Len(t, host.events, 1)
	ev := host.events[0]
	host.mu.Unlock()
	assert.Equal(t, componentstatus.StatusRecoverableError, ev.Status())
	require.Error(t, ev.Err())
	assert.Contains(t, ev.Err().Error(), "tcp_synack_retransmits")
	assert.Contains(t, ev.Err().Error(), "tcp:tcp_retransmit_synack not in this kernel")

	assert.Equal(t, map[string]string{"socket_data": "on", "tcp_synack_retransmits": "off"}, capabilityPoints(t, reader))

	require.NoError(t, r.Shutdown(context.Background()))
	assert.Empty(t, capabilityPoints(t, reader), "the gauge outlived the run")
}

func TestFullKernelIsStatusOK(t *testing.T) {
	r, host, reader := startWithCapabilities(t, []capture.CapabilityState{{Name: capture.CapSocketData, Required: true, On: true}})
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
	host.mu.Lock()
	defer host.mu.Unlock()
	require.Len(t, host.events, 1)
	assert.Equal(t, componentstatus.StatusOK, host.events[0].Status())
	assert.Equal(t, map[string]string{"socket_data": "on"}, capabilityPoints(t, reader))
}
