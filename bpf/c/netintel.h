/* Records and keys shared by the kernel programs and (through bpf2go -type) the Go loader. */
#ifndef NETINTEL_H
#define NETINTEL_H

/* Hard upper bound of a data event's payload; Options.MaxPayloadBytes is clamped to it. */
#define MAX_PAYLOAD 4096
#define COMM_LEN 16
/* Request bytes an HTTP/1 socket keeps until its response is judged (request line and the
 * first headers: enough for method, target, Host and User-Agent of real clients). */
#define HTTP1_STASH 256
/* Response bytes an HTTP/1 exchange record carries (status line and headers). */
#define HTTP1_RESPONSE 256
/* Latency buckets of an HTTP/1 aggregate: 0 is below 1 µs, bucket i >= 1 covers
 * [2^((i-1)/4), 2^(i/4)) µs (four per octave), the last one everything above. */
#define LATENCY_BUCKETS 112
/* Explicit buckets of an HTTP/1 aggregate, on the bounds user space writes (settings.bounds_ns):
 * bucket i counts (bounds[i-1], bounds[i]], the last one everything above. */
#define MAX_BOUNDS 16
#define EXPLICIT_BUCKETS (MAX_BOUNDS + 1)

enum event_type {
	EVENT_CONN = 1,
	EVENT_DATA = 2,
	EVENT_HTTP1 = 3,
};

/* Mirrors capture.ConnKind. */
enum conn_kind {
	CONN_OPENED = 1,
	CONN_CLOSED = 2,
	CONN_FAILED = 3,
	CONN_RESET_SENT = 4,
	CONN_RESET_RECEIVED = 5,
	CONN_RETRANSMIT = 6,
	CONN_RTT = 7,
	CONN_HANDSHAKE_RETRANSMIT = 8, /* a SYN (role client) or SYN-ACK (role server) sent again */
};

/* Mirrors capture.Role. */
enum sock_role {
	ROLE_UNKNOWN = 0,
	ROLE_CLIENT = 1,
	ROLE_SERVER = 2,
};

/* Mirrors capture.Direction. */
enum data_dir {
	DIR_SEND = 1,
	DIR_RECV = 2,
};

/* Mirrors capture.Transport. */
enum transport {
	TRANSPORT_TCP = 1,
	TRANSPORT_UDP = 2,
};

/* Indexes of the per-CPU counters; mirrored in Go (capture.kernelCounterNames). Every place the
 * kernel loses, cuts or skips something counts it here. */
enum counter_index {
	COUNTER_RINGBUF_FULL = 0, /* a record was lost: the ring buffer was full */
	COUNTER_RINGBUF_BYTES = 1, /* ring-buffer space taken by submitted records (header included) */
	COUNTER_SOCKS_FULL = 2, /* a TCP socket was not tracked: the socket table was full */
	COUNTER_FDS_FULL = 3, /* a socket fd was not tracked: the fd table was full */
	COUNTER_READ_FAILED = 4, /* user memory could not be read (paged out): the bytes are lost */
	COUNTER_PAYLOAD_TRUNCATED = 5, /* a payload was cut to max_payload_bytes */
	COUNTER_UNCLASSIFIED = 6, /* a connection matched no protocol: data stops after its first exchange */
	COUNTER_MMSG_TRUNCATED = 7, /* messages of a sendmmsg/recvmmsg vector beyond the first ones */
	COUNTER_CONN_ERRORS_FULL = 8, /* an asynchronous connect error could not be kept */
	COUNTER_AGGS_FULL = 9, /* an HTTP/1 aggregate could not be created: the exchange was sent instead */
	COUNTER_HTTP1_AGGREGATED = 10, /* HTTP/1 exchanges counted in the kernel (healthy, not sent) */
	COUNTER_HTTP1_SENT = 11, /* HTTP/1 exchanges sent to user space (first, error, slow, sampled) */
	COUNTER_HTTP1_UNMATCHED = 12, /* HTTP/1 responses with no request pending (pipelining, joins) */
	COUNTER_HTTP1_RAW = 13, /* HTTP/1 sockets handed to user space as raw bytes (not parsable here) */
	COUNTER_H2_FRAMES_CUT = 14, /* HTTP/2 calls not walked to their end (frame bound, full record, lost boundary) */
	COUNTER_FD_WALKS = 15, /* fd -> socket walks (first data on an untracked socket-only syscall, seeded fds) */
	COUNTER_FORK_FDS_BEYOND = 16, /* a forked child's socket fds above the copied range: not followed */
	COUNTER_HTTP1_LOST_COUNTED = 17, /* HTTP/1 exchanges whose record the full ring lost, counted in their aggregate */
	COUNTER_STOPPED_BY_USER = 18, /* sockets stopped because user space asked (stop_requests) */
	COUNTER_HTTP1_PAIRED = 19, /* HTTP/1 client sockets left quiet: their local server's socket judges for both */
	COUNTER_STALE_FDS = 20, /* fd entries of a process that exited with sockets open, removed as its pid was reused */
	COUNTER_STALE_SOCK_STATE = 21, /* a socket's state found at its birth: a dead socket's at the same address (its CLOSE unseen) */
	COUNTER_HTTP1_ERRORS_COUNTED = 22, /* HTTP/1 errors beyond their key's records of the drain: counted, not sent */
	COUNTER_MAX = 23,
};

struct task_id {
	__u32 tgid;
	__u32 tid;
	__u64 cgroup_id;
	char comm[COMM_LEN];
};

/* Addresses in network byte order; IPv4 in the first 4 bytes. Ports in host order. */
struct sock_tuple {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 transport;
	__u8 role;
};

struct conn_event {
	__u8 type; /* EVENT_CONN */
	__u8 kind;
	__u8 local_closed_first; /* CONN_CLOSED: this socket sent the first FIN (ESTABLISHED -> FIN_WAIT1) */
	__u8 pad;
	__s32 err; /* CONN_FAILED: positive errno */
	__u64 ts_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u64 cookie;
	struct task_id task;
	struct sock_tuple tuple;
	__u64 duration_ns;
	__u64 bytes_sent;
	__u64 bytes_received;
	__u32 retrans;
	__u32 srtt_us;
};

/* data_flags: what a data event's bytes are. */
enum data_flags {
	DATA_TRUNCATED = 1, /* size > payload_len; with DATA_H2_COMPACT: frames of the call not walked */
	DATA_H2_COMPACT = 2, /* HTTP/2 frames with DATA payloads left out (frame headers kept) */
	DATA_PAIRED = 4, /* a server socket whose client is on this node and quiet (enum pair) */
};

/* The fixed part of a data event; payload_len bytes of payload follow it in the ring buffer. */
struct data_header {
	__u8 type; /* EVENT_DATA */
	__u8 dir;
	__u8 flags; /* enum data_flags */
	__u8 pad;
	__u32 size; /* bytes the syscall transferred */
	__u64 ts_ns;
	__u64 cookie;
	struct task_id task;
	struct sock_tuple tuple;
	__u32 seq;
	__u32 client_isn;
	__u32 server_isn;
	__u32 payload_len;
};

struct data_event {
	struct data_header h;
	__u8 payload[MAX_PAYLOAD];
};

/* Why an HTTP/1 exchange was sent to user space instead of being counted in the kernel. */
enum http1_reason {
	HTTP1_FIRST = 1, /* its aggregate key was new (routes, user agents, new peers reach user space) */
	HTTP1_ERROR = 2, /* status >= settings.error_status */
	HTTP1_SLOW = 4, /* latency above its route's limit (or settings.slow_ns) */
	HTTP1_SAMPLED = 8, /* kept by the consistent sampler (request identity >= threshold) */
	HTTP1_NO_AGGREGATE = 16, /* its aggregate could not be created (table full) */
	HTTP1_PARTIAL = 32, /* the request was longer than the stash: its head is cut */
	HTTP1_UNANSWERED = 64, /* the socket was closed with the request unanswered (no response bytes) */
	HTTP1_RECOVERY = 128, /* healthy, but its owner, peer and route failed within recovery_ns */
};

/* One HTTP/1 exchange judged interesting by the kernel: request and response heads with their
 * sequence numbers and times. Two slots follow: slot bytes holding req_len bytes of request, then
 * resp_slot bytes holding resp_len bytes of response. */
struct http1_header {
	__u8 type; /* EVENT_HTTP1 */
	__u8 reasons; /* enum http1_reason */
	__u8 method; /* enum http1_method */
	__u8 paired; /* the server's socket judged for its quiet local client too (enum pair) */
	__u16 status;
	__u16 req_len;
	__u16 resp_len;
	__u16 slot; /* bytes of the request's slot, which the response's (resp_slot bytes) follows */
	__u32 req_size; /* bytes of the request's first read/write */
	__u64 req_ns;
	__u64 resp_ns;
	__u64 cookie;
	__u64 route; /* the kernel's route key (templated path hash) */
	struct task_id task;
	struct sock_tuple tuple;
	__u32 req_seq;
	__u32 resp_seq;
	__u32 client_isn;
	__u32 server_isn;
	__s32 sk_err; /* HTTP1_UNANSWERED: the socket's pending error (ECONNRESET: reset) */
	__u8 tcp_state; /* HTTP1_UNANSWERED: the TCP state at close (CLOSE_WAIT: the peer closed first) */
	__u8 pad3;
	__u16 resp_slot; /* bytes of the response's slot */
};

/* HTTP/1 methods the kernel parses; 0 is "not parsed". Mirrored in Go. */
enum http1_method {
	METHOD_GET = 1,
	METHOD_POST = 2,
	METHOD_PUT = 3,
	METHOD_DELETE = 4,
	METHOD_HEAD = 5,
	METHOD_OPTIONS = 6,
	METHOD_PATCH = 7,
	METHOD_CONNECT = 8,
	METHOD_TRACE = 9,
};

/* The key of a kernel HTTP/1 aggregate. On the server side port is the local port and peer the
 * client (see server_side_peer in http1.h: its address, with peer_port when it shares the server's
 * address, or its network when it is on the Internet); on the client side peer and port are the
 * server's. */
struct agg_key {
	__u32 tgid; /* the observing socket's owner */
	__u8 role;
	__u8 method;
	__u16 status;
	__u16 port;
	__u16 family;
	__u8 version; /* 0: HTTP/1.0, 1: HTTP/1.1 */
	__u8 paired; /* server side: the client (peer_tgid) is quiet, these counts stand for its side too */
	__u16 peer_port;
	__u8 peer[16];
	__u8 local[16]; /* server side: the address the server was reached at */
	__u32 peer_tgid; /* server side, a client on this host: its process (peer_port is then 0) */
	__u32 pad2;
	__u64 route;
};

struct agg_value {
	__u64 count;
	__u64 sum_ns;
	__u64 first_ns; /* when the key was created (its first exchange was sent) */
	__u32 latency[LATENCY_BUCKETS];
	__u32 explicit[EXPLICIT_BUCKETS];
	__u32 sent; /* an error key: its exchanges sent whole since the drain, on this CPU */
	__u32 pad;
};

/* Per-route latency limits and sampling written by user space, keyed by owner and route. */
struct limit_key {
	__u32 tgid;
	__u32 pad;
	__u64 route;
};

struct route_limit {
	__u64 latency_ns; /* an exchange at least this slow is sent (0: settings.slow_ns) */
};

/* A learned route rule: below the templated prefix with this hash (on this server port), the
 * next path segment is an identifier. */
struct rule_key {
	__u16 port;
	__u16 pad;
	__u32 pad2;
	__u64 prefix;
};

/* Runtime settings written by user space (one entry), laid out for a healthy exchange's judging:
 * what it reads (the flags, the thresholds, the first bounds) is in the first cache line. */
struct settings {
	__u16 error_status; /* error_status_threshold */
	__u8 have_limits; /* route_limits has entries */
	__u8 have_rules; /* route_rules has entries */
	__u8 aggregate; /* judge HTTP/1 in the kernel (0: send every exchange) */
	__u8 pair_local; /* judge a connection with both ends on this node once, on its server's socket (enum pair) */
	__u16 error_records; /* errors of one aggregate key sent whole per drain and CPU; beyond, counted (0: all sent) */
	__u64 recovery_ns; /* after an error, healthy exchanges of its owner, peer and route are sent this long (0: never) */
	__u64 slow_ns; /* slow_request_threshold */
	__u64 min_limit_ns; /* the smallest route_limit written: faster exchanges skip the lookup */
	__u64 sample_threshold; /* keep when the request's randomness (56 bits) >= this; 2^56: none */
	__u64 bounds_ns[MAX_BOUNDS]; /* explicit histogram bounds, ascending; 0 ends the list */
	/* Bit (prefix ^ port) & 255 is set for every route rule: a segment whose prefix's bit is
	 * clear has no rule, and costs no lookup. */
	__u64 rule_filter[4];
};

/* The fd table's key: a socket fd of one process. */
struct fd_key {
	__u32 tgid;
	__s32 fd;
};

/* What user space writes for a socket that predates the capture (seeded from /proc). */
struct fd_seed {
	__u8 role; /* from the listening state: a local port with a listener is the server side */
	__u8 transport;
	__u8 pad[6];
};

#endif
