// Package identity names who is talking: it turns an endpoint (address, pid, cgroup) into a
// service and the resource attributes that describe it.
package identity

// Service is a named participant of an exchange.
type Service struct {
	Name     string   // service.name
	Local    bool     // a process on this node (otherwise a remote peer)
	Resource Resource // for local services; for remote peers only ServiceName is set
}

// Resource is the OTLP resource of a service, with semantic-convention meanings.
type Resource struct {
	ServiceName    string // service.name
	PID            uint32 // process.pid (0 when unknown or remote)
	ExecutableName string // process.executable.name
	ContainerID    string // container.id
	HostName       string // host.name
}
