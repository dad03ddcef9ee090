// Package capture loads the kernel programs, reads what they report and decodes it into Events;
// it also replays recorded events so every later stage can be tested without a kernel.
package capture

import (
	"context"
	"math"
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
	Truncated bool   // Size > len(Payload); with H2Compact: frames of the call were not walked
	// H2Compact: Payload is the call's HTTP/2 frames with DATA payloads left out — every frame
	// header is there, and every other frame's payload (HEADERS, SETTINGS, RST_STREAM, ...).
	H2Compact bool
	// Paired: a server socket whose client is on this node and left quiet by the kernel (see
	// HTTP1Event.Paired); its exchanges stand for both ends.
	Paired bool

	// TCP only (zero for UDP): the absolute sequence number of Payload[0] and the two
	// initial sequence numbers of the connection (DESIGN §4). They are identical on the
	// two ends of a connection, which is what pairs client and server spans.
	Seq       uint32
	ClientISN uint32
	ServerISN uint32
}

// Event is one decoded kernel report: exactly one of Conn, Data and HTTP1 is set.
type Event struct {
	Conn  *ConnEvent
	Data  *DataEvent
	HTTP1 *HTTP1Event
}

// HTTP1Reasons say why the kernel sent an HTTP/1 exchange instead of counting it (DESIGN §2).
type HTTP1Reasons uint8

const (
	HTTP1First       HTTP1Reasons = 1 << iota // its aggregate key was new: routes, user agents and peers reach user space
	HTTP1Error                                // status at or above the error threshold
	HTTP1Slow                                 // slower than its route's limit (or slow_request_threshold)
	HTTP1Sampled                              // kept by the consistent sampler
	HTTP1NoAggregate                          // its aggregate could not be made (table full)
	HTTP1Partial                              // the request head was longer than the kernel keeps
	HTTP1Unanswered                           // the socket closed with the request unanswered
	HTTP1Recovery                             // healthy, after an error of its owner, peer and route (Judging.Recovery)
)

// HTTP1Event is one HTTP/1 exchange the kernel judged worth sending: the first bytes of its
// request and of its response, with their times and sequence numbers, as seen on one socket.
type HTTP1Event struct {
	Process Process // the observing socket's owner
	Socket  Socket

	RequestTime  time.Time
	ResponseTime time.Time
	Request      []byte // the request's first bytes (at most the kernel's stash)
	RequestSize  int    // bytes of the request's first read/write
	Response     []byte // the response's first bytes

	Status   int    // as the kernel parsed it
	RouteKey uint64 // the kernel's route key (RouteKey of the templated target)
	Reasons  HTTP1Reasons

	RequestSeq  uint32
	ResponseSeq uint32
	ClientISN   uint32
	ServerISN   uint32

	// HTTP1Unanswered: how the socket stood when its process closed it — its pending error
	// (ECONNRESET: reset) and whether the peer had closed first (TCP CLOSE_WAIT).
	SocketError int32
	PeerClosed  bool

	// Paired: both ends of the connection are on this node and the kernel judged it once, on
	// this server socket; the client's socket is quiet (its exchanges are not judged, counted or
	// sent), so this exchange stands for the client's too.
	Paired bool
}

// HTTP1Aggregate is the kernel's count of healthy HTTP/1 exchanges with one key since the last
// drain: one observing process, one side, one peer, one operation and status.
type HTTP1Aggregate struct {
	PID      uint32
	Role     Role
	Port     uint16     // the server's port (local on the server side, remote on the client side)
	Peer     netip.Addr // client side: the server; server side: the client, or its network (/24, /64) on the Internet
	PeerPID  uint32     // server side, a client on this host (loopback, the node's address): its process
	Paired   bool       // server side: that client's socket is quiet (Judging.PairLocal), these counts stand for its side too
	PeerPort uint16     // server side, such a client whose process is unknown (older than the capture): its port
	Local    netip.Addr // server side: the address the server was reached at
	Method   string
	Status   int
	Version  string // "1.0", "1.1"
	RouteKey uint64

	Count    uint64
	Sum      time.Duration
	Latency  [LatencyBuckets]uint64  // see LatencyBucketBounds
	Explicit [ExplicitBuckets]uint64 // on the bounds written with SetBounds
	First    time.Time               // when the key's first exchange was sent
}

// Buckets of a kernel aggregate's latency histogram: bucket 0 is below 1 µs, bucket i >= 1
// covers [2^((i-1)/4), 2^(i/4)) µs, the last everything above.
const (
	LatencyBuckets  = 112
	MaxBounds       = 16
	ExplicitBuckets = MaxBounds + 1
)

// LatencyBucketBounds are the upper bounds of the kernel's latency buckets, shared by every
// HTTP1Aggregate: LatencyBucketBounds[i] is the upper bound of bucket i (the last bucket has
// none, so there is one bound fewer than buckets).
var LatencyBucketBounds = func() []time.Duration {
	b := make([]time.Duration, LatencyBuckets-1)
	for i := range b {
		b[i] = time.Duration(math.Round(math.Pow(2, float64(i)/4) * float64(time.Microsecond)))
	}
	return b
}()

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
	ExitedFDs            uint64 // user space: fd table entries of processes that exited without closing their sockets, removed
	SeedFDTableFull      uint64 // user space: sockets open at start not entered in the fd table: it was full
	ProgramRunsMissed    uint64 // kernel: program runs the kernel skipped (a program interrupted by itself on its CPU): their events are lost

	// Kernel holds every kernel counter, indexed like KernelCounters (the fields above sum
	// some of them).
	Kernel [len(KernelCounters)]uint64
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

// Ender is a Source that can end its events before Close: Stop ends capture, delivers what
// was captured, then closes Events(), while what the source counted stays readable (Judge's
// DrainHTTP1, Counters) until Close. A consumer's last flush then loses nothing.
type Ender interface {
	Stop()
}
