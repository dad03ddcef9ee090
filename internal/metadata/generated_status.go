// Package metadata holds the component's type, scope name and stability: the hand-written
// equivalent of what mdatagen generates from metadata.yaml (mdatagen is not installable here).
package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	// Type is the component type used in collector configuration.
	Type = component.MustNewType("net_intel")
	// ScopeName is the instrumentation scope of everything the receiver emits.
	ScopeName = "github.com/netintel/netintelreceiver"
)

const (
	LogsStability    = component.StabilityLevelDevelopment
	TracesStability  = component.StabilityLevelDevelopment
	MetricsStability = component.StabilityLevelDevelopment
)
