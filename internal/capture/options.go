package capture

import (
	"fmt"
	"time"
)

// Defaults applied by Options.withDefaults to zero fields.
const (
	DefaultMaxPayloadBytes = 512
	DefaultRingBufferSize  = 8 << 20
	DefaultQueueSize       = 8192
	DefaultMaxSockets      = 16384
	// DefaultExitSweepInterval is how often the fd table is swept of processes that exited.
	DefaultExitSweepInterval = 10 * time.Second
	// MaxPayloadBytesLimit is the kernel's hard cap on a data event's payload.
	MaxPayloadBytesLimit = 4096
	// MaxPortsPerProtocol is how many ports each of HTTPPorts, HTTPSPorts and DNSPorts may list.
	MaxPortsPerProtocol = 8
)

// Options configure the eBPF source. The receiver maps its YAML config onto them.
type Options struct {
	// Address families and transports to capture.
	IPv4, IPv6, TCP, UDP bool
	// Protocols whose connections keep sending data events after the first exchange.
	HTTP, HTTPS, GRPC, DNS bool
	// Ports that mark a connection as HTTP, TLS or DNS even when its first bytes do not tell.
	// They are hints, not filters: protocols are detected on any port.
	HTTPPorts, HTTPSPorts, DNSPorts []uint16
	// MaxPayloadBytes is how many bytes of each read/write are copied (≤ MaxPayloadBytesLimit).
	MaxPayloadBytes int
	// RingBufferSize is the kernel ring buffer size in bytes (a power of two, ≥ one page).
	RingBufferSize int
	// QueueSize bounds the events waiting between the ring-buffer reader and the pipeline;
	// when it is full, events are dropped and counted in Counters.QueueDropped.
	QueueSize int
	// ExcludePID is the collector's own pid: its sockets are never captured, or exporting
	// would feed capture.
	ExcludePID uint32
	// MaxSockets bounds the kernel's fd table (socket fds of every process) and socket table.
	MaxSockets int
	// ProcRoot is where sockets opened before the capture are found ("/proc").
	ProcRoot string
	// Judging is how the kernel judges HTTP/1 at start (Judge.SetJudging changes it later).
	Judging Judging
	// Attach chooses classic or raw tracepoints (AttachAuto: classic when the kernel allows).
	Attach AttachMode
	// ExitSweepInterval is how often the fd table entries of processes that exited without
	// closing their sockets are removed (sweepExited).
	ExitSweepInterval time.Duration
}

// DefaultOptions captures everything: both families, both transports, every protocol.
func DefaultOptions() Options {
	return Options{
		IPv4: true, IPv6: true, TCP: true, UDP: true,
		HTTP: true, HTTPS: true, GRPC: true, DNS: true,
		DNSPorts:        []uint16{53},
		MaxPayloadBytes: DefaultMaxPayloadBytes,
		RingBufferSize:  DefaultRingBufferSize,
		QueueSize:       DefaultQueueSize,
	}
}

func (o Options) withDefaults() Options {
	if o.MaxPayloadBytes == 0 {
		o.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if o.RingBufferSize == 0 {
		o.RingBufferSize = DefaultRingBufferSize
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxSockets == 0 {
		o.MaxSockets = DefaultMaxSockets
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.ExitSweepInterval <= 0 {
		o.ExitSweepInterval = DefaultExitSweepInterval
	}
	return o
}

// Validate reports the first option the kernel side cannot honour.
func (o Options) Validate() error {
	if o.MaxPayloadBytes < 0 || o.MaxPayloadBytes > MaxPayloadBytesLimit {
		return fmt.Errorf("net_intel: max_payload_bytes %d out of range; use 0..%d", o.MaxPayloadBytes, MaxPayloadBytesLimit)
	}
	if o.RingBufferSize != 0 && (o.RingBufferSize < 4096 || o.RingBufferSize&(o.RingBufferSize-1) != 0) {
		return fmt.Errorf("net_intel: ring_buffer_size %d must be a power of two of at least 4096 bytes", o.RingBufferSize)
	}
	if o.QueueSize < 0 {
		return fmt.Errorf("net_intel: queue_size %d must not be negative", o.QueueSize)
	}
	if o.MaxSockets < 0 || o.MaxSockets > 1<<20 {
		return fmt.Errorf("net_intel: max_sockets %d out of range; use 0..%d", o.MaxSockets, 1<<20)
	}
	if len(o.Judging.Bounds) > MaxBounds {
		return fmt.Errorf("net_intel: %d histogram bounds; the kernel keeps at most %d", len(o.Judging.Bounds), MaxBounds)
	}
	for name, ports := range map[string][]uint16{"http_ports": o.HTTPPorts, "https_ports": o.HTTPSPorts, "dns_ports": o.DNSPorts} {
		if len(ports) > MaxPortsPerProtocol {
			return fmt.Errorf("net_intel: %s lists %d ports; at most %d are supported", name, len(ports), MaxPortsPerProtocol)
		}
	}
	return nil
}
