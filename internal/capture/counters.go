package capture

// KernelCounter describes one of the kernel's per-CPU counters (enum counter_index in
// bpf/c/netintel.h, same order). Kind groups them for telemetry: "dropped" is data lost,
// "truncated" data cut, "fallback" work the kernel handed to user space instead of doing it,
// "work" what it did. Adding a counter is a line here and one in the C enum.
type KernelCounter struct {
	Name        string
	Kind        string
	Description string
}

// KernelCounters is indexed like Counters.Kernel.
var KernelCounters = [...]KernelCounter{
	{"ringbuf_full", "dropped", "a record was lost: the kernel ring buffer was full (raise capture.ring_buffer_size)"},
	{"ringbuf_bytes", "work", "ring-buffer space taken by submitted records, header and alignment included"},
	{"socket_table_full", "dropped", "a TCP socket was not tracked: the kernel socket table was full"},
	{"fd_table_full", "dropped", "a socket fd was not tracked: the kernel fd table was full (raise capture.max_sockets)"},
	{"user_read_failed", "dropped", "user memory could not be read (paged out): those bytes were lost"},
	{"payload_truncated", "truncated", "a payload was cut to capture.max_payload_bytes"},
	{"unclassified", "fallback", "a connection matched no protocol: its data stopped after the first exchange"},
	{"mmsg_truncated", "truncated", "messages of a sendmmsg/recvmmsg vector beyond the first four were not reported"},
	{"connect_errors_full", "dropped", "an asynchronous connect error was not kept: that failure is reported as 'other'"},
	{"aggregates_full", "fallback", "an HTTP/1 aggregate could not be created: the exchange was sent instead"},
	{"http1_aggregated", "work", "HTTP/1 exchanges judged healthy and counted in the kernel"},
	{"http1_sent", "work", "HTTP/1 exchanges sent to user space (first of a key, error, slow, sampled, recovery after an error)"},
	{"http1_unmatched", "dropped", "HTTP/1 responses with no request pending (pipelining, a connection joined mid-exchange)"},
	{"http1_raw", "fallback", "HTTP/1 connections the kernel could not follow, handed to user space as raw bytes"},
	{"h2_frames_cut", "truncated", "HTTP/2 reads and writes not walked to their end (more than 128 frames, a full record, a lost frame boundary): the stream resyncs"},
	{"fd_walks", "work", "fd -> socket walks (socket creation, accepted and seeded sockets)"},
	{"fork_fds_beyond", "dropped", "socket fds of a forked child above the first 256: not followed in the child"},
	{"http1_counted_after_loss", "fallback", "HTTP/1 exchanges whose record the full ring buffer lost, counted in their aggregate instead (the span is lost, the count is kept)"},
	{"stopped_by_user_space", "work", "sockets the kernel stopped following because user space asked (an l7 parser gave up, a protocol switched off)"},
	{"http1_pairs_judged_once", "work", "HTTP/1 client sockets left quiet because their server, on this node too, judges the connection for both ends"},
	{"stale_fds_of_reused_pid", "work", "fd table entries of a process that exited with sockets open, removed when a new task took its pid"},
	{"stale_socket_states", "work", "socket states found at a socket's birth, a dead socket's at the same address whose close was not seen, removed"},
	{"http1_errors_counted", "work", "HTTP/1 errors beyond the first of their key sent whole per drain, counted in the kernel (their counts stay exact; their spans are the first ones')"},
}

// Kernel counter indexes used by name in Go.
const (
	kcRingbufFull = iota
	kcRingbufBytes
	kcSocketTableFull
	kcFDTableFull
	kcUserReadFailed
	kcPayloadTruncated
	kcUnclassified
	kcMmsgTruncated
	kcConnErrorsFull
	kcAggregatesFull
	kcHTTP1Aggregated
	kcHTTP1Sent
	kcHTTP1Unmatched
	kcHTTP1Raw
	kcH2FramesCut
	kcFDWalks
	kcForkFDsBeyond
	kcHTTP1CountedAfterLoss
	kcStoppedByUser
	kcHTTP1Paired
	kcStaleFDs
	kcStaleSockStates
	kcHTTP1ErrorsCounted
	numKernelCounters
)

// fillSummary sets the summary fields of c from c.Kernel.
func (c *Counters) fillSummary() {
	k := c.Kernel
	c.RingbufReserveFailed = k[kcRingbufFull]
	c.MapFull = k[kcSocketTableFull] + k[kcFDTableFull] + k[kcConnErrorsFull]
	c.PayloadTruncated = k[kcPayloadTruncated]
	c.Unclassified = k[kcUnclassified]
	c.RingbufBytes = k[kcRingbufBytes]
}
