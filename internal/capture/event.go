// Package capture loads the kernel programs, reads what they report and decodes it into Events;
// it also replays recorded events so every later stage can be tested without a kernel.
package capture

import (
	"context"
	"net/netip"
	"time"
)

// Transport is the L4 protocol of a socket.
type Transport uint8

const (
	TransportTCP Transport = iota + 1
	TransportUDP
)

func (t Transport) String() string {
	switch t {
	case TransportTCP:
		return "tcp"
	case TransportUDP:
		return "udp"
	}
	return "unknown"
}

// Direction says whether the observed process wrote (sent) or read (received) the bytes.
type Direction uint8

const (
	DirectionSend Direction = iota + 1 // the local process wrote to the socket
	DirectionRecv                      // the local process read from the socket
)

// Role is the side a local socket plays in its connection.
type Role uint8

const (
	RoleUnknown Role = iota // socket predates the capture: neither connect nor accept was seen
	RoleClient              // the local process called connect()
	RoleServer              // the local process got the socket from accept()
)

func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleServer:
		return "server"
	}
	return "unknown"
}

// Process identifies the task that owns a socket at the moment of the event.
type Process struct {
	PID      uint32 // thread group id (what userspace calls the pid)
	TID      uint32 // thread id
	Comm     string // task comm, at most 15 bytes
	CgroupID uint64 // cgroup v2 id of the task
}

// Socket identifies one local socket and its connection, as seen from this node.
type Socket struct {
	Cookie    uint64 // kernel socket cookie: unique for the socket's lifetime
	Transport Transport
	Local     netip.AddrPort
	Remote    netip.AddrPort
	Role      Role
}

// ConnKind is what happened to a connection.
type ConnKind uint8

const (
	ConnOpened        ConnKind = iota + 1 // handshake completed (client: connect, server: accept)
	ConnClosed                            // connection left ESTABLISHED for good; carries totals
	ConnFailed                            // connect() failed; Errno says why
	ConnResetSent                         // this node sent a RST on the connection
	ConnResetReceived                     // a RST arrived for the connection
	ConnRetransmit                        // a segment was retransmitted
	ConnRTT                               // a (sampled) smoothed RTT reading
	// ConnHandshakeRetransmit: a handshake segment was sent again — a client's SYN (Role
	// client: nobody answered it) or a server's SYN-ACK (Role server: the client's ACK was
	// dropped, typically because the listener's accept queue is full).
	ConnHandshakeRetransmit
)

func (k ConnKind) String() string {
	switch k {
	case ConnOpened:
		return "opened"
	case ConnClosed:
		return "closed"
	case ConnFailed:
		return "failed"
	case ConnResetSent:
		return "reset_sent"
	case ConnResetReceived:
		return "reset_received"
	case ConnRetransmit:
		return "retransmit"
	case ConnRTT:
		return "rtt"
	case ConnHandshakeRetransmit:
		return "handshake_retransmit"
	}
	return "unknown"
}

// FailureReason classifies a failed connect.
type FailureReason uint8

const (
	FailureNone         FailureReason = iota
	FailureRefused                    // ECONNREFUSED
	FailureTimedOut                   // ETIMEDOUT
	FailureUnreachable                // EHOSTUNREACH / ENETUNREACH
	FailureReset                      // ECONNRESET
	FailureAddrNotAvail               // EADDRNOTAVAIL: no local address/port left (ephemeral ports exhausted)
	FailureOther
)

func (f FailureReason) String() string {
	switch f {
	case FailureRefused:
		return "refused"
	case FailureTimedOut:
		return "timed_out"
	case FailureUnreachable:
		return "unreachable"
	case FailureReset:
		return "reset"
	case FailureAddrNotAvail:
		return "address_not_available"
	case FailureOther:
		return "other"
	}
	return ""
}

// ConnEvent is a TCP connection lifecycle event.
type ConnEvent struct {
	Kind    ConnKind
	Time    time.Time
	Process Process
	Socket  Socket

	Reason FailureReason // ConnFailed
	Errno  int32         // ConnFailed: the raw errno (positive)

	Duration      time.Duration // ConnClosed: since open (0 when the open predates capture)
	BytesSent     uint64        // ConnClosed
	BytesReceived uint64        // ConnClosed
	Retransmits   uint32        // ConnClosed: segments retransmitted over the connection
	// LocalClosedFirst (ConnClosed): this socket sent the first FIN — the local process ended
	// the connection; false when the peer closed first or the connection was reset.
	LocalClosedFirst bool
	SRTT             time.Duration // ConnRTT, ConnClosed: smoothed RTT
}

// DataEvent is the first bytes of one read or write on a socket.
type DataEvent struct {
	Time      time.Time
	Process   Process
	Socket    Socket
	Direction Direction
	Size      int    // bytes the syscall transferred
	Payload   []byte // the first min(Size, max_payload_bytes) of them
	Truncated bool   // Size > len(Payload)

	// TCP only (zero for UDP): the absolute sequence number of Payload[0] and the two
	// initial sequence numbers of the connection (DESIGN §4). They are identical on the
	// two ends of a connection, which is what pairs client and server spans.
	Seq       uint32
	ClientISN uint32
	ServerISN uint32
}

// Event is one decoded kernel report: exactly one of Conn and Data is set.
type Event struct {
	Conn *ConnEvent
	Data *DataEvent
}

// Counters are the running totals of everything dropped or cut on the way from the kernel.
// All values are cumulative since the source started.
type Counters struct {
	RingbufReserveFailed uint64 // kernel: ring buffer full, event lost
	MapFull              uint64 // kernel: an LRU/hash map update failed
	PayloadTruncated     uint64 // kernel: payload cut to max_payload_bytes
	Unclassified         uint64 // kernel: connection stopped sending data (not a known protocol)
	RingbufBytes         uint64 // kernel: ring-buffer space taken by submitted records (8-byte header and alignment included, like Options.RingBufferSize)
	ReadErrors           uint64 // user space: ring buffer records that failed to decode
	QueueDropped         uint64 // user space: events dropped because the pipeline was slow
	EventsRead           uint64 // user space: events decoded from the ring buffer
}

// Source produces capture events. The eBPF source reads the kernel; the replay source
// reads a recording.
type Source interface {
	// Start begins producing events on Events(). It returns an error naming what is
	// missing when capture cannot start (privileges, BTF, tracefs, a tracepoint).
	Start(ctx context.Context) error
	// Events is closed after Close, or when a finite source (replay) is exhausted.
	Events() <-chan Event
	// Counters reports drops and truncations so far.
	Counters() Counters
	// Close stops capture and releases every kernel object. Safe to call more than once.
	Close() error
}
