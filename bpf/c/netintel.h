/* Event layouts shared by the kernel programs and (through bpf2go -type) the Go loader. */
#ifndef NETINTEL_H
#define NETINTEL_H

/* Hard upper bound of a data event's payload; Options.MaxPayloadBytes is clamped to it. */
#define MAX_PAYLOAD 4096
#define COMM_LEN 16

enum event_type {
	EVENT_CONN = 1,
	EVENT_DATA = 2,
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

/* Indexes of the per-CPU drop counters; mirrored in Go (counterIndex*). */
enum counter_index {
	COUNTER_RINGBUF_RESERVE_FAILED = 0,
	COUNTER_MAP_FULL = 1,
	COUNTER_PAYLOAD_TRUNCATED = 2,
	COUNTER_UNCLASSIFIED = 3,
	COUNTER_RINGBUF_BYTES = 4, /* ring-buffer space taken by submitted records (header included) */
	COUNTER_MAX = 5,
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

/* The fixed part of a data event; payload_len bytes of payload follow it in the ring buffer. */
struct data_header {
	__u8 type; /* EVENT_DATA */
	__u8 dir;
	__u8 truncated;
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

#endif
