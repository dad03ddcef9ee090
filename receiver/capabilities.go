package receiver

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/metadata"
)

// capabilityReporter is what a capture source that knows its kernel's capabilities offers (the
// eBPF source; a replay has none).
type capabilityReporter interface {
	Capabilities() []capture.CapabilityState
}

// capabilitiesOf returns the source's capability report, nil when it has none.
func capabilitiesOf(src capture.Source) []capture.CapabilityState {
	if r, ok := src.(capabilityReporter); ok {
		return r.Capabilities()
	}
	return nil
}

// reportCapabilities says in component status whether this kernel gave every capability:
// StatusOK when it did, a recoverable error naming what is off when it did not (the receiver
// runs; the findings that need what is off stay quiet).
func reportCapabilities(host component.Host, states []capture.CapabilityState) {
	off := capture.Degraded(states)
	if len(off) == 0 {
		componentstatus.ReportStatus(host, componentstatus.NewEvent(componentstatus.StatusOK))
		return
	}
	names := make([]string, 0, len(off))
	for _, s := range off {
		names = append(names, fmt.Sprintf("%s (%s)", s.Name, s.Reason))
	}
	componentstatus.ReportStatus(host, componentstatus.NewRecoverableErrorEvent(
		fmt.Errorf("net_intel: running degraded on this kernel: %s are off; see documentation.md, kernel capabilities", strings.Join(names, ", "))))
}

// capabilityGauge registers netintel.receiver.capability{name, state} in the collector's own
// telemetry: 1 for the state each capability is in (on / off), so a dashboard over a fleet
// shows which nodes run degraded and why. The returned function unregisters it.
func capabilityGauge(mp metric.MeterProvider, states func() []capture.CapabilityState) (func() error, error) {
	meter := mp.Meter(metadata.ScopeName)
	g, err := meter.Int64ObservableGauge("netintel.receiver.capability",
		metric.WithDescription("Kernel capabilities of the capture on this node: 1 for the state (on, off) each capability is in."),
		metric.WithUnit("1"))
	if err != nil {
		return nil, err
	}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, s := range states() {
			state := "on"
			if !s.On {
				state = "off"
			}
			o.ObserveInt64(g, 1, metric.WithAttributes(attribute.String("name", string(s.Name)), attribute.String("state", state)))
		}
		return nil
	}, g)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}
