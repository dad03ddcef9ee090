// Package otlp converts what the pipeline produced — exchanges, findings, aggregates — into
// OTLP logs, spans and metrics that follow the OpenTelemetry semantic conventions.
//
// Everything here is plain conversion or aggregation over values: no goroutines, no I/O.
// The receiver decides when to call it and hands the results to the consumers.
package otlp

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/netintel/netintelreceiver/internal/identity"
)

// ScopeName is the instrumentation scope of every log, span and metric netintel emits.
// It equals internal/metadata.ScopeName (kept here so the stage does not depend on the
// component's metadata package).
const ScopeName = "github.com/netintel/netintelreceiver"

// unknownService is what the SDKs call a service that has no name.
const unknownService = "unknown_service"

// Resource attribute keys (semantic conventions).
const (
	attrServiceName    = string(semconv.ServiceNameKey)
	attrProcessPID     = string(semconv.ProcessPIDKey)
	attrExecutableName = string(semconv.ProcessExecutableNameKey)
	attrContainerID    = string(semconv.ContainerIDKey)
	attrHostName       = string(semconv.HostNameKey)
)

// Resource attribute keys of the container and Kubernetes pod a service runs in, and of
// aggregated remote clients (see identity.Resource).
var resourceStrings = []struct {
	key string
	get func(*identity.Resource) string
}{
	{string(semconv.ContainerNameKey), func(r *identity.Resource) string { return r.ContainerName }},
	{string(semconv.K8SNamespaceNameKey), func(r *identity.Resource) string { return r.K8sNamespace }},
	{string(semconv.K8SPodNameKey), func(r *identity.Resource) string { return r.K8sPodName }},
	{string(semconv.K8SPodUIDKey), func(r *identity.Resource) string { return r.K8sPodUID }},
	{string(semconv.K8SContainerNameKey), func(r *identity.Resource) string { return r.K8sContainer }},
	{attrClientNetwork, func(r *identity.Resource) string { return r.ClientNetwork }},
}

// attrClientNetwork is the network (/24, /64) of a remote client aggregated into
// "clients of <service>"; no convention covers it.
const attrClientNetwork = "netintel.client.network"

// resourceOf is the resource a service's telemetry is attributed to. A service known only by
// name (a remote peer) gets a resource with just service.name.
func resourceOf(s identity.Service) identity.Resource {
	r := s.Resource
	if r.ServiceName == "" {
		r.ServiceName = s.Name
	}
	if r.ServiceName == "" {
		r.ServiceName = unknownService
	}
	return r
}

// putResource writes r as resource attributes, leaving out what is unknown.
func putResource(attrs pcommon.Map, r identity.Resource) {
	attrs.EnsureCapacity(5 + len(resourceStrings))
	if r.ServiceName != "" {
		attrs.PutStr(attrServiceName, r.ServiceName)
	}
	if r.PID != 0 {
		attrs.PutInt(attrProcessPID, int64(r.PID))
	}
	if r.ExecutableName != "" {
		attrs.PutStr(attrExecutableName, r.ExecutableName)
	}
	if r.ContainerID != "" {
		attrs.PutStr(attrContainerID, r.ContainerID)
	}
	if r.HostName != "" {
		attrs.PutStr(attrHostName, r.HostName)
	}
	for _, a := range resourceStrings {
		if v := a.get(&r); v != "" {
			attrs.PutStr(a.key, v)
		}
	}
}

// serviceName is the name a service goes by in edge attributes (client, server).
func serviceName(s identity.Service) string {
	if s.Name != "" {
		return s.Name
	}
	if s.Resource.ServiceName != "" {
		return s.Resource.ServiceName
	}
	return unknownService
}
