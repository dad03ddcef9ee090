// Package identity names who is talking: it turns an endpoint (address, pid, cgroup) into a
// service and the resource attributes that describe it.
package identity

// Service is a named participant of an exchange.
type Service struct {
	Name     string   // service.name
	Local    bool     // a process on this node (otherwise a remote peer)
	Resource Resource // for local services; for remote peers ServiceName (and ClientNetwork)
}

// Resource is the OTLP resource of a service, with semantic-convention meanings. It is
// comparable: the stages below key their tables by it.
type Resource struct {
	ServiceName    string // service.name
	PID            uint32 // process.pid (0 when unknown or remote)
	ExecutableName string // process.executable.name
	ContainerID    string // container.id
	ContainerName  string // container.name: Docker's name of the container
	K8sNamespace   string // k8s.namespace.name
	K8sPodName     string // k8s.pod.name
	K8sPodUID      string // k8s.pod.uid
	K8sContainer   string // k8s.container.name
	HostName       string // host.name
	// ClientNetwork is netintel.client.network: for the remote clients of a local service,
	// aggregated under one name, the network (/24, /64) of the client at hand.
	ClientNetwork string
}
