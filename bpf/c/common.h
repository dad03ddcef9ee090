/* Configuration, maps and small helpers every job of the kernel side uses. */
#ifndef NETINTEL_COMMON_H
#define NETINTEL_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "netintel.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_TYPE_MASK 0xf
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define EAGAIN 11

/* TCP states (include/net/tcp_states.h). */
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define TCP_LISTEN 10
#define TCP_NEW_SYN_RECV 12

#define NR_PORTS 8
/* Bytes of each read/write looked at to classify it and to judge HTTP/1 start lines. */
#define PEEK 16

/* clamp_len bounds a copy's length to cap in one piece of assembly, so the bound is on the very
 * register the helper gets: when clang spills the length before a C comparison and reloads it
 * for the call, 6.1's verifier does not carry the comparison's bound to the reloaded copy. */
#define clamp_len(v, cap) asm volatile("if %[x] <= %[c] goto +1; %[x] = %[c]" : [x] "+r"(v) : [c] "i"(cap))

/* no_merge keeps clang from folding the tests around it into one: two pointers tested for NULL
 * become (a | b) == 0, and the verifier refuses arithmetic on pointers. */
#define no_merge() asm volatile("" ::: "memory")

/* Configuration, rewritten by the loader before the programs are loaded. */
const volatile __u32 cfg_exclude_tgid = 0;
const volatile __u32 cfg_max_payload = 512;
const volatile __u8 cfg_ipv4 = 1;
const volatile __u8 cfg_ipv6 = 1;
const volatile __u8 cfg_tcp = 1;
const volatile __u8 cfg_udp = 1;
const volatile __u8 cfg_http = 1;
const volatile __u8 cfg_https = 1;
const volatile __u8 cfg_grpc = 1;
const volatile __u8 cfg_dns = 1;
const volatile __u64 cfg_rtt_interval_ns = 1000000000ULL;
/* Wake the reader only once this much data waits in the ring buffer (0: on every record).
 * Records submitted below it do not wake user space; the reader polls on a short deadline
 * instead, so a busy host costs one wakeup per batch, not one per record. */
const volatile __u64 cfg_wakeup_bytes = 0;
const volatile __u16 cfg_http_ports[NR_PORTS] = {};
const volatile __u16 cfg_https_ports[NR_PORTS] = {};
const volatile __u16 cfg_dns_ports[NR_PORTS] = {53};

/* --- per-socket state ---------------------------------------------------------------------- */

/* What is known of a socket's protocol. */
enum sock_class {
	CLASS_UNKNOWN = 0, /* no data seen yet */
	CLASS_HTTP1 = 1, /* judged here (http1.h) */
	CLASS_H2 = 2, /* HTTP/2 or gRPC: frame headers and HEADERS payloads are sent (http2.h) */
	CLASS_RAW = 3, /* DNS, TLS hellos, HTTP/1 the kernel cannot follow: bytes are sent */
	CLASS_FIRST_EXCHANGE = 4, /* no protocol matched: the first read and write are sent, then stop */
	CLASS_STOPPED = 5, /* nothing more is sent for this socket */
};

/* Where an HTTP/1 socket is in its request/response cycle. */
enum http1_state {
	H1_IDLE = 0, /* the next bytes in the request direction start a request */
	H1_WAIT_RESPONSE = 1, /* a request is stashed; request-direction bytes are its body */
	H1_IN_RESPONSE = 2, /* the response was judged; response-direction bytes are its body */
	H1_REQUEST_START = 3, /* the first bytes of a request came alone (a 1-byte read: Go servers
			       * read one byte ahead while a handler runs); the rest follows */
};

/* What connection events need of a TCP socket (also kept a while after its close). */
struct sock_info {
	__u64 cookie;
	__u64 open_ns;
	struct task_id owner;
	__u8 role;
	__u8 opened_sent;
	__u8 first_fin; /* enum first_fin */
	__u8 pad[5];
};

/* The fd table's value: one socket fd of one process. Written by user space too, for sockets
 * that predate the capture (sk 0, role from the listening state, seeded 1). Forks and dups copy
 * it: every fd of a socket points at the socket's one state. */
struct fd_entry {
	__u64 sk; /* struct sock *, 0 until resolved from the fd */
	__u32 slot1; /* TCP: the socket's state in sock_slots, plus one (0: not known yet) */
	__u8 transport;
	__u8 role; /* the seed's role, for the socket's state when it is made */
	__u8 cls; /* UDP: enum sock_class (a UDP socket's whole state) */
	__u8 seeded;
	__u8 quiet; /* TCP: a local client whose server's socket judges its exchanges (enum pair) */
	__u8 pad[7];
};

/* A client socket of this host, by its local address and port (local_clients). */
struct local_client_key {
	__u8 addr[16]; /* IPv4 in the first 4 bytes (a v4-mapped address is stored as IPv4) */
	__u16 port;
	__u16 family;
	__u32 pad;
};

/* The socket table's value, keyed by struct sock *: a TCP socket's connection and everything the
 * data path keeps for it. */
struct sock_state {
	struct sock_info info; /* first: an info pointer is the state's */
	/* What the data path reads and writes for every exchange comes first, in as few cache
	 * lines as it fits: a request touches the state once per call, after the other
	 * connections' calls, so each line it spans is a miss. */
	__u64 sk;
	__u64 last_rtt_ns;
	__u32 client_isn;
	__u32 server_isn;
	__u8 cls; /* enum sock_class */
	__u8 dirs_seen; /* CLASS_FIRST_EXCHANGE: bit 1 send, bit 2 recv */
	__u8 isn_known;
	__u8 key_made; /* key holds this socket's part of its aggregate keys */
	__u8 pair; /* enum pair: both ends of this HTTP/1 connection are on this node */
	__u8 pair_checked; /* client side: local_clients was asked whether its server judges */
	/* HTTP/1: the request in flight */
	__u8 h1; /* enum http1_state */
	__u8 method;
	__u8 version;
	__u8 req_partial; /* the request's head is longer than the stash */
	__u8 target_cut; /* even its target is: no route key */
	__u8 resp_start_len; /* bytes of a status line cut short, in resp_start */
	__u16 stash_len;
	__u16 pad;
	__u32 req_seq;
	__u32 req_size;
	__u64 req_ns;
	__u64 route;
	/* enum pair: the other end's socket, and (server side) the request from which the offer is
	 * withdrawn if the client has not gone quiet by then. */
	__u64 pair_peer; /* the other end's struct sock * (enum pair): each end names the other */
	__u32 pair_seq;
	__u8 pair_judged; /* pair_seq is the request of its first exchange judged while pending */
	__u8 pad2[3];
	__u32 slot1; /* this state's index in sock_slots, plus one */
	__u32 io_tgid; /* the process doing the exchange's I/O (a forked child may share the socket) */
	/* The part of its exchanges' aggregate keys that is the socket's, made once (key_template):
	 * role, family, port, peer (a local client's process looked up then). */
	struct agg_key key;
	__u8 stash[HTTP1_STASH + PEEK]; /* PEEK more: a request's start carried in is appended to */
	/* A status line cut short (a reader taking a few bytes): its start, completed by the next read. */
	__u8 resp_start[2 * PEEK];
	/* HTTP/2 */
	__u32 h2_left[2]; /* per direction: bytes of the current frame still to come */
	__u8 h2_copy[2]; /* per direction: the frame running into the next call is copied (1) or skipped */
	__u8 h2_hdr_len[2]; /* per direction: bytes of a frame header split across calls, kept in h2_hdr */
	__u8 pad4[4];
	__u8 h2_hdr[2][16]; /* 9 bytes used; 16 so a read at any split offset stays inside */
};

/* An HTTP/1 connection whose two ends are on this node is judged once, by its server's socket.
 * The server finds its client in local_clients at its first request (PAIR_PENDING); the client
 * judges its own first exchange, then goes quiet (PAIR_QUIET: its data calls cost the fd
 * lookup); the server sees that at its next exchange (PAIR_SERVER), and its records and
 * aggregates from then on stand for both ends (user space derives the client's side). */
enum pair {
	PAIR_NONE = 0,
	PAIR_PENDING = 1, /* server side: its client is local; until it goes quiet each end judges */
	PAIR_SERVER = 2, /* server side: its client went quiet, this socket judges for both */
	PAIR_QUIET = 3, /* client side: its server judges (from its second exchange) */
};

/* Which side sent the first FIN of a connection. */
enum first_fin {
	FIN_NONE = 0, /* no FIN yet (or the connection was reset) */
	FIN_LOCAL = 1, /* ESTABLISHED -> FIN_WAIT1: the local process closed first */
	FIN_PEER = 2, /* ESTABLISHED -> CLOSE_WAIT: the peer closed first */
};

/* What sys_enter of a receive syscall saw, for its sys_exit. */
enum buf_kind {
	BUF_PLAIN = 1, /* read/recvfrom: buf is the data */
	BUF_IOV = 2, /* readv: buf is a struct iovec array */
	BUF_MSG = 3, /* recvmsg: buf is a struct user_msghdr */
	BUF_MMSG = 4, /* recvmmsg: buf is a struct mmsghdr array; ret counts messages */
};

struct err_key {
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 pad;
};

/* --- maps ---------------------------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Socket fds of every process, fed by socket(), accept(), fork, dup and the /proc seed, emptied
 * by close(). A data syscall on any other fd costs one lookup here. Preallocated: full is counted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fd_key);
	__type(value, struct fd_entry);
} fds SEC(".maps");

/* The fd table's hot copy: a direct-mapped array in front of fds, indexed by a hash of the fd's
 * {tgid, fd}. A hit names the socket's state (or says the fd is quiet) without the hash map's
 * lookup, which is a call, a hash and two cache lines more on every read and write. The data
 * path fills a slot once an fd's TCP state is known (fd_hot_fill); every change of fds (close,
 * stop, a new socket or dup on the fd, a quiet client) changes fds first and then empties the
 * fd's slot (fd_hot_drop). A fill racing a change on another thread (a write while the fd is
 * closed) looks the fd up again after filling: each side orders its write before its read with
 * a locked instruction, so one of them sees the other and the slot does not outlive the change
 * (x86; on arm64 the JIT's atomic add is not a barrier and the window is only narrowed). Two CPUs
 * filling one slot at once (colliding fds) may leave it torn; each slot carries a check of its
 * fields, so a torn slot reads as a miss, never as one fd's key with another's socket. A miss
 * costs the lookup in fds it always did, and a fill one lookup more. Sized by the loader (a power
 * of two). */
struct fd_hot {
	__u64 key; /* tgid << 32 | fd; 0: empty */
	__u64 sk;
	__u32 slot1;
	__u32 quiet;
	__u64 check;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct fd_hot);
} fd_cache SEC(".maps");

/* fd_cache's size less one, set by the loader with the map's size. */
const volatile __u32 cfg_fd_cache_mask = 16383;

static __always_inline __u64 fd_hot_key(__u32 tgid, int fd)
{
	return ((__u64)tgid << 32) | (__u32)fd;
}

static __always_inline __u64 fd_hot_check(__u64 key, __u64 sk, __u32 slot1, __u32 quiet)
{
	return (key * 0x9E3779B97F4A7C15ULL) ^ (sk * 0xC2B2AE3D27D4EB4FULL) ^
	       ((((__u64)quiet << 32) | slot1) * 0x165667B19E3779F9ULL) ^ 1;
}

/* A process's fds sit side by side from a point its tgid hashes to: its live connections (small,
 * consecutive fd numbers) share a few cache lines and pages, not one of each per fd. Mirrored by
 * fdCacheSlot in internal/capture. */
static __always_inline struct fd_hot *fd_hot_slot(__u64 key)
{
	__u32 i = ((__u32)(((key >> 32) * 0x9E3779B97F4A7C15ULL) >> 32) + (__u32)key) & cfg_fd_cache_mask;
	return bpf_map_lookup_elem(&fd_cache, &i);
}

/* fd_hot_barrier orders the caller's writes before its next reads (a locked add of nothing to
 * the slot's check: its value is unchanged, and torn-slot detection with it). */
static __always_inline void fd_hot_barrier(struct fd_hot *h)
{
	__sync_fetch_and_add(&h->check, 0);
}

/* fd_hot_fill fills the slot of fd of tgid, which fds names (sk; its state's slot1, or quiet),
 * the key last so a reader meanwhile misses; then it looks fds up again, and empties the slot if
 * another thread changed the fd meanwhile (fd_hot_drop comes after every change of fds). */
static __always_inline void fd_hot_fill(__u32 tgid, int fd, __u64 sk, __u32 slot1, __u32 quiet)
{
	__u64 key = fd_hot_key(tgid, fd);
	struct fd_hot *h = fd_hot_slot(key);
	if (!h)
		return;
	h->key = 0;
	h->sk = sk;
	h->slot1 = slot1;
	h->quiet = quiet;
	h->check = fd_hot_check(key, sk, slot1, quiet);
	h->key = key;
	fd_hot_barrier(h);
	struct fd_key k = {.tgid = tgid, .fd = fd};
	struct fd_entry *fe = bpf_map_lookup_elem(&fds, &k);
	if ((!fe || fe->sk != sk || fe->quiet != quiet) && h->key == key)
		h->key = 0;
}

/* fd_hot_drop empties the slot of fd of tgid, if it holds that fd; called after fds changed. */
static __always_inline void fd_hot_drop(__u32 tgid, int fd)
{
	__u64 key = fd_hot_key(tgid, fd);
	struct fd_hot *h = fd_hot_slot(key);
	if (!h)
		return;
	fd_hot_barrier(h); /* the change of fds before the look at the slot */
	if (h->key == key)
		h->key = 0;
}

/* How many fds each process has in the fd table: a fork of a process with none copies nothing. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} fd_owners SEC(".maps");

/* TCP sockets' states, by slot: their connection and data state, for the data path and the sock
 * and tcp tracepoints. A socket's fd entries name its slot, so a read or write reaches the state
 * by index, not by a second hash lookup. Sized by the loader, like socks. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct sock_state);
} sock_slots SEC(".maps");

/* TCP sockets by struct sock *: their slot in sock_slots, plus one. Preallocated: full is
 * counted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u32);
} socks SEC(".maps");

/* Free slots of sock_slots: all of them at load (the loader fills it), taken by new sockets,
 * given back by closed ones. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 16384);
	__type(value, __u32);
} free_slots SEC(".maps");

/* slot_state is the state in slot slot1 - 1 if it is sk's (a slot is reused once its socket
 * closed). */
static __always_inline struct sock_state *slot_state(__u32 slot1, __u64 sk)
{
	if (slot1 == 0)
		return NULL;
	__u32 i = slot1 - 1;
	struct sock_state *st = bpf_map_lookup_elem(&sock_slots, &i);
	return st && st->sk == sk ? st : NULL;
}

/* sock_find returns the state of socket sk, NULL if it has none. */
static __always_inline struct sock_state *sock_find(__u64 sk)
{
	__u64 key = sk; /* a stack key: 6.1 takes no other */
	__u32 *slot1 = bpf_map_lookup_elem(&socks, &key);
	if (!slot1)
		return NULL;
	return slot_state(*slot1, sk);
}

/* Sockets that reached TCP_CLOSE, kept a little so a RST sent after the close still finds its
 * owner (SO_LINGER 0). LRU: an evicted entry only loses the owner of such a late RST. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct sock_info);
} closed_socks SEC(".maps");

/* Sockets user space asked to stop following, by socket cookie (capture.Source.StopSocket): an
 * l7 parser that gave up, a protocol switched off. Checked only on sockets whose bytes cross
 * (raw and HTTP/2), at their next read or write, then the socket is CLASS_STOPPED. LRU: a request
 * for a socket that closed before its next call ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} stop_requests SEC(".maps");

/* Asynchronous connect errors by tuple, for the SYN_SENT -> CLOSE that follows. LRU: eviction
 * only loses the errno detail (the failure is then reported as "other"). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct err_key);
	__type(value, __s32);
} conn_errors SEC(".maps");

/* Client sockets of this host connected to this host (loopback, or its own address), by their
 * local address and port: the server side of such a connection keys its aggregates by the
 * client's process, not by the connection's ephemeral port. Filled when the connect completes
 * (and by user space for connections older than the capture), emptied at close. */
/* A client socket of this host: its process, and the socket of its server when that one, on
 * this host too, judges the connection's exchanges for both ends (enum pair). */
struct local_client {
	__u32 tgid;
	__u32 pad;
	__u64 client_sk; /* its struct sock * */
	__u64 server_sk; /* its server's, on this host too, offering to judge for both (enum pair) */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct local_client_key);
	__type(value, struct local_client);
} local_clients SEC(".maps");

/* local_client_key_of keys a client socket of this host by its local address and port (a
 * v4-mapped address as IPv4); it says false when its peer is not on this host. */
static __always_inline bool local_client_key_of(struct local_client_key *k, const __u8 *local, const __u8 *peer,
						__u16 port, __u16 family)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->port = port;
	if (family == AF_INET) {
		if (peer[0] != 127 && !(peer[0] == local[0] && peer[1] == local[1] && peer[2] == local[2] && peer[3] == local[3]))
			return false;
		__builtin_memcpy(k->addr, local, 4);
		k->family = AF_INET;
		return true;
	}
	__u64 l[2], p[2];
	__builtin_memcpy(l, local, 16);
	__builtin_memcpy(p, peer, 16);
	__u64 phi = bpf_be64_to_cpu(p[0]), plo = bpf_be64_to_cpu(p[1]);
	bool mapped = phi == 0 && (plo >> 32) == 0xffff;
	bool local_peer = (l[0] == p[0] && l[1] == p[1]) || (phi == 0 && plo == 1) || (mapped && ((plo >> 24) & 0xff) == 127);
	if (!local_peer)
		return false;
	if (mapped) {
		__builtin_memcpy(k->addr, local + 12, 4);
		k->family = AF_INET;
	} else {
		__builtin_memcpy(k->addr, local, 16);
		k->family = AF_INET6;
	}
	return true;
}

/* Healthy HTTP/1 exchanges counted in the kernel, drained by user space every flush. Each CPU
 * counts into its own copy of a key's value, so the CPUs serving one key never share its cache
 * lines; user space sums them. Not preallocated: a key costs its value times the CPUs only while
 * it lives (user space sizes max_entries by the CPUs). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct agg_key);
	__type(value, struct agg_value);
} aggregates SEC(".maps");

/* Per-route latency limits from intel (baseline × latency_deviation_factor). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct limit_key);
	__type(value, struct route_limit);
} route_limits SEC(".maps");

/* Route rules user space learned: which path segments are identifiers. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct rule_key);
	__type(value, __u8);
} route_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct settings);
} runtime_settings SEC(".maps");

/* Scratch for records built before their size is known (HTTP/2 compaction). Twice the largest
 * payload, so a copy at any offset below MAX_PAYLOAD is provably inside it. */
struct scratch_event {
	/* Loop-carried offsets live here, not in registers: values loaded from a map are unknown to
	 * the verifier, so the frame walk's states prune instead of multiplying per iteration. */
	__u64 off;
	__u64 out;
	/* The call the HTTP/2 walk is on: its first iovec (src, avail) and direction (d). */
	__u64 src;
	__u64 avail;
	__u64 d;
	struct data_header h;
	__u8 payload[2 * MAX_PAYLOAD];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_event);
} data_scratch SEC(".maps");

/* Zeroed values to create large map entries from (the BPF stack holds 512 bytes); never written. */
struct blanks {
	struct sock_state state;
	struct fd_entry fd;
	struct agg_value agg;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct blanks);
} blank SEC(".maps");

static __always_inline struct blanks *blanks(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&blank, &zero);
}

/* Anchors so bpf2go -type finds the structs. */
const struct conn_event *unused_conn_event __attribute__((unused));
const struct data_header *unused_data_header __attribute__((unused));
const struct http1_header *unused_http1_header __attribute__((unused));
const struct agg_key *unused_agg_key __attribute__((unused));
const struct agg_value *unused_agg_value __attribute__((unused));
const struct limit_key *unused_limit_key __attribute__((unused));
const struct route_limit *unused_route_limit __attribute__((unused));
const struct rule_key *unused_rule_key __attribute__((unused));
const struct settings *unused_settings __attribute__((unused));
const struct fd_key *unused_fd_key __attribute__((unused));
const struct sock_state *unused_sock_state __attribute__((unused));
const struct fd_entry *unused_fd_entry __attribute__((unused));

/* --- helpers ------------------------------------------------------------------------------- */

/* count adds one to a per-CPU counter, atomically: the sock and tcp programs run in softirq,
 * nested in the syscall program they interrupted on the CPU, and both count (drops too). */
static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		__sync_fetch_and_add(v, 1);
}

/* count_syscall is count for a counter only syscall programs touch (one never interrupts
 * another): a plain add, on the path every healthy exchange takes. */
static __always_inline void count_syscall(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1;
}

static __always_inline void count_n(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		__sync_fetch_and_add(v, n);
}

/* BPF_RINGBUF_HDR_SZ: every ring-buffer record carries an 8-byte header and is 8-byte aligned. */
#define RINGBUF_HDR_SZ 8

/* count_ringbuf adds the ring-buffer space one record of len bytes takes. */
static __always_inline void count_ringbuf(__u64 len)
{
	count_n(COUNTER_RINGBUF_BYTES, (len + RINGBUF_HDR_SZ + 7) & ~7ULL);
}

static __always_inline __u64 wakeup_flags(void)
{
	if (!cfg_wakeup_bytes)
		return 0;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes ? BPF_RB_FORCE_WAKEUP
										  : BPF_RB_NO_WAKEUP;
}

static __always_inline bool excluded_tgid(__u32 tgid)
{
	return cfg_exclude_tgid != 0 && tgid == cfg_exclude_tgid;
}

static __always_inline bool excluded(void)
{
	return excluded_tgid(bpf_get_current_pid_tgid() >> 32);
}

static __always_inline void current_task_id(struct task_id *t)
{
	__u64 id = bpf_get_current_pid_tgid();
	t->tgid = id >> 32;
	t->tid = (__u32)id;
	t->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(t->comm, sizeof(t->comm));
}

static __always_inline bool family_wanted(__u16 family)
{
	return (family == AF_INET && cfg_ipv4) || (family == AF_INET6 && cfg_ipv6);
}

static __always_inline bool port_in(const volatile __u16 *ports, __u16 a, __u16 b)
{
#pragma unroll
	for (int i = 0; i < NR_PORTS; i++) {
		__u16 p = ports[i];
		if (p != 0 && (p == a || p == b))
			return true;
	}
	return false;
}

/* sock_from_fd returns the struct sock behind fd of the current task, or NULL when fd is not a
 * socket. Seven reads: done once per socket, never per syscall. */
static __always_inline struct sock *sock_from_fd(int fd)
{
	if (fd < 0)
		return NULL;
	count(COUNTER_FD_WALKS);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return NULL;
	unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned int)fd >= max_fds)
		return NULL;
	struct file **fdarr = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fdarr[fd]) != 0 || !f)
		return NULL;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

/* sock_transport says whether sk is a TCP or UDP inet socket the config asks for (0 otherwise). */
static __always_inline __u8 sock_transport(struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (!family_wanted(family))
		return 0;
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);
	__u16 type = BPF_CORE_READ(sk, sk_type);
	if (proto == IPPROTO_TCP && type == SOCK_STREAM)
		return cfg_tcp ? TRANSPORT_TCP : 0;
	if (proto == IPPROTO_UDP && type == SOCK_DGRAM)
		return cfg_udp ? TRANSPORT_UDP : 0;
	return 0;
}

static __always_inline void fill_tuple(struct sock *sk, struct sock_tuple *t)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->family = family;
	t->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		__builtin_memset(t->saddr, 0, sizeof(t->saddr));
		__builtin_memset(t->daddr, 0, sizeof(t->daddr));
		bpf_core_read(t->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(t->daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(t->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(t->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

/* tuple_of is the socket's tuple with its local port as the socket itself keeps it (inet_sport
 * outlives the port's release at close, as the sock tracepoints' own tuples do). */
static __always_inline void tuple_of(struct sock *sk, struct sock_tuple *t)
{
	fill_tuple(sk, t);
	struct inet_sock *inet = (struct inet_sock *)sk;
	__u16 sport = bpf_ntohs(BPF_CORE_READ(inet, inet_sport));
	if (sport)
		t->sport = sport;
}

/* remote_from_user takes the peer from a user sockaddr (unconnected UDP, failed connects). */
static __always_inline void remote_from_user(struct sock_tuple *t, __u64 uaddr)
{
	struct sockaddr_in6 sa = {};
	if (!uaddr || bpf_probe_read_user(&sa, sizeof(sa), (void *)uaddr) != 0)
		return;
	if (sa.sin6_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
		__builtin_memset(t->daddr, 0, sizeof(t->daddr));
		__builtin_memcpy(t->daddr, &s4->sin_addr, 4);
		t->dport = bpf_ntohs(s4->sin_port);
	} else if (sa.sin6_family == AF_INET6) {
		__builtin_memcpy(t->daddr, &sa.sin6_addr, 16);
		t->dport = bpf_ntohs(sa.sin6_port);
	}
}

static __always_inline struct settings *settings(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&runtime_settings, &zero);
}

/* mix64 is splitmix64's finalizer; the request identity's hash in Go (l7.Exchange.TraceID) is
 * built from the same function, so kernel and user space agree on the sampler's randomness. */
static __always_inline __u64 mix64(__u64 z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#define TRACE_LO_KEY 0x6c62272e07bb0142ULL
#define RANDOMNESS_MASK ((1ULL << 56) - 1)

/* request_randomness is the low 56 bits of the trace id of the exchange whose request starts at
 * req_seq (stream 0): the OTel consistent-sampling randomness. */
static __always_inline __u64 request_randomness(__u32 client_isn, __u32 server_isn, __u32 req_seq)
{
	__u64 a = ((__u64)client_isn << 32) | server_isn;
	__u64 b = (__u64)req_seq << 32;
	return mix64(b ^ TRACE_LO_KEY ^ mix64(a)) & RANDOMNESS_MASK;
}

#endif
