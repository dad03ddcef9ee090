// SPDX-License-Identifier: GPL-2.0
/*
 * netintel kernel side: tracepoint programs that report TCP connection lifecycle events and the
 * first bytes of socket reads and writes to user space through one ring buffer.
 *
 * Tracepoints only (no kprobes, no fentry): syscalls sys_enter/exit, sock:*, tcp:*. The socket
 * of a read/write is found from its fd with CO-RE reads of task->files->fdt->fd[fd].
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "netintel.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115

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
 * instead, so a busy host costs one wakeup per batch, not one per read or write. */
const volatile __u64 cfg_wakeup_bytes = 0;
const volatile __u16 cfg_http_ports[NR_PORTS] = {};
const volatile __u16 cfg_https_ports[NR_PORTS] = {};
const volatile __u16 cfg_dns_ports[NR_PORTS] = {53};

/* Per-socket classification state. */
enum sock_class {
	CLASS_UNKNOWN = 0, /* no data seen yet */
	CLASS_KNOWN = 1, /* first bytes matched a protocol: keep sending data */
	CLASS_FIRST_EXCHANGE = 2, /* no match: send the first read and write, then stop */
	CLASS_STOPPED = 3, /* no match and first exchange done: data is not sent */
};

struct sock_info {
	__u64 cookie;
	__u64 open_ns;
	__u64 last_rtt_ns;
	struct task_id owner;
	__u8 role;
	__u8 cls;
	__u8 dirs_seen;
	__u8 opened_sent;
	__u8 closed; /* reached TCP_CLOSE; kept so a reset sent after close still finds its owner */
	__u8 first_fin; /* who ended ESTABLISHED with a FIN: enum first_fin */
	__u8 pad[6];
};

/* Which side sent the first FIN of a connection. */
enum first_fin {
	FIN_NONE = 0, /* no FIN yet (or the connection was reset) */
	FIN_LOCAL = 1, /* ESTABLISHED -> FIN_WAIT1: the local process closed first */
	FIN_PEER = 2, /* ESTABLISHED -> CLOSE_WAIT: the peer closed first */
};

/* What sys_enter of a data syscall saw, for its sys_exit. */
enum buf_kind {
	BUF_PLAIN = 1, /* read/write/sendto/recvfrom: buf is the data */
	BUF_IOV = 2, /* readv/writev: buf is a struct iovec array */
	BUF_MSG = 3, /* sendmsg/recvmsg: buf is a struct user_msghdr */
	BUF_MMSG = 4, /* sendmmsg/recvmmsg: buf is a struct mmsghdr array; ret counts messages */
};

struct data_args {
	__u64 sk;
	__u64 buf;
	__u64 addr; /* user sockaddr of sendto/recvfrom, or 0 */
	__u32 seq;
	__u8 kind;
	__u8 dir;
	__u8 transport;
	__u8 pad;
};

struct err_key {
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 pad;
};

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

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct sock * */
	__type(value, struct sock_info);
} socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct data_args);
} active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct err_key);
	__type(value, __s32);
} conn_errors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct data_event);
} data_scratch SEC(".maps");

/* Anchors so bpf2go -type finds the event structs. */
const struct conn_event *unused_conn_event __attribute__((unused));
const struct data_header *unused_data_header __attribute__((unused));

static __always_inline __u64 wakeup_flags(void)
{
	if (!cfg_wakeup_bytes)
		return 0;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes ? BPF_RB_FORCE_WAKEUP
										  : BPF_RB_NO_WAKEUP;
}

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1;
}

/* BPF_RINGBUF_HDR_SZ: every ring-buffer record carries an 8-byte header and is 8-byte aligned. */
#define RINGBUF_HDR_SZ 8

/* count_ringbuf adds the ring-buffer space one record of len bytes takes. */
static __always_inline void count_ringbuf(__u64 len)
{
	__u32 idx = COUNTER_RINGBUF_BYTES;
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += (len + RINGBUF_HDR_SZ + 7) & ~7ULL;
}

static __always_inline bool excluded(void)
{
	return cfg_exclude_tgid != 0 && (bpf_get_current_pid_tgid() >> 32) == cfg_exclude_tgid;
}

static __always_inline void current_task_id(struct task_id *t)
{
	__u64 id = bpf_get_current_pid_tgid();
	t->tgid = id >> 32;
	t->tid = (__u32)id;
	t->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(t->comm, sizeof(t->comm));
}

/* sock_from_fd returns the struct sock behind fd of the current task, or NULL when fd is not a
 * socket. */
static __always_inline struct sock *sock_from_fd(int fd)
{
	if (fd < 0)
		return NULL;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return NULL;
	unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned int)fd >= max_fds)
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) != 0 || !f)
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
	if (family == AF_INET) {
		if (!cfg_ipv4)
			return 0;
	} else if (family == AF_INET6) {
		if (!cfg_ipv6)
			return 0;
	} else {
		return 0;
	}
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

/* tuple_from_sockaddrs fills addresses from the sockaddr_in/in6 images some tcp tracepoints carry. */
static __always_inline void tuple_from_sockaddrs(struct sock_tuple *t, const __u8 *src, const __u8 *dst)
{
	struct sockaddr_in6 s6 = {}, d6 = {};
	/* Tracepoint context may not be addressed with computed offsets: copy through a helper. */
	bpf_probe_read_kernel(&s6, sizeof(s6), src);
	bpf_probe_read_kernel(&d6, sizeof(d6), dst);
	t->family = s6.sin6_family;
	t->sport = bpf_ntohs(s6.sin6_port);
	t->dport = bpf_ntohs(d6.sin6_port);
	if (s6.sin6_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&s6;
		struct sockaddr_in *d4 = (struct sockaddr_in *)&d6;
		__builtin_memset(t->saddr, 0, sizeof(t->saddr));
		__builtin_memset(t->daddr, 0, sizeof(t->daddr));
		__builtin_memcpy(t->saddr, &s4->sin_addr, 4);
		__builtin_memcpy(t->daddr, &d4->sin_addr, 4);
	} else {
		__builtin_memcpy(t->saddr, &s6.sin6_addr, 16);
		__builtin_memcpy(t->daddr, &d6.sin6_addr, 16);
	}
}

static __always_inline struct sock_info *sock_info_get(struct sock *sk, bool create)
{
	__u64 key = (__u64)sk;
	struct sock_info *info = bpf_map_lookup_elem(&socks, &key);
	if (!create || (info && !info->closed))
		return info;
	/* A closed socket's memory may be reused by a new socket: start over. */
	struct sock_info fresh = {};
	/* The kernel socket cookie is not reachable from tracepoint programs (bpf_get_socket_cookie
	 * is not offered to them and skc_cookie is assigned lazily), so a random 64-bit id is
	 * drawn when the socket is first seen. */
	fresh.cookie = ((__u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32();
	if (bpf_map_update_elem(&socks, &key, &fresh, info ? BPF_EXIST : BPF_NOEXIST) != 0) {
		info = bpf_map_lookup_elem(&socks, &key);
		if (!info)
			count(COUNTER_MAP_FULL);
		return info;
	}
	return bpf_map_lookup_elem(&socks, &key);
}

/* --- connection events --------------------------------------------------------------------- */

static __always_inline void emit_conn(__u8 kind, struct sock *sk, struct sock_info *info,
				      struct sock_tuple *tuple, __s32 err)
{
	if (info && info->owner.tgid != 0 && cfg_exclude_tgid != 0 && info->owner.tgid == cfg_exclude_tgid)
		return;
	if ((!info || info->owner.tgid == 0) && excluded())
		return;
	struct conn_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_RINGBUF_RESERVE_FAILED);
		return;
	}
	count_ringbuf(sizeof(*e));
	__builtin_memset(e, 0, sizeof(*e));
	e->type = EVENT_CONN;
	e->kind = kind;
	e->err = err;
	e->ts_ns = bpf_ktime_get_ns();
	if (tuple)
		e->tuple = *tuple;
	else if (sk)
		fill_tuple(sk, &e->tuple);
	e->tuple.transport = TRANSPORT_TCP;
	if (info) {
		e->cookie = info->cookie;
		e->tuple.role = info->role;
		if (info->owner.tgid != 0)
			e->task = info->owner;
		else if (kind == CONN_OPENED || kind == CONN_FAILED)
			current_task_id(&e->task);
		if (info->open_ns && (kind == CONN_CLOSED))
			e->duration_ns = e->ts_ns - info->open_ns;
		if (kind == CONN_CLOSED)
			e->local_closed_first = info->first_fin == FIN_LOCAL;
	} else if (kind == CONN_CLOSED || kind == CONN_FAILED) {
		current_task_id(&e->task);
	}
	if (sk && (kind == CONN_CLOSED || kind == CONN_RTT || kind == CONN_RETRANSMIT)) {
		struct tcp_sock *tp = (struct tcp_sock *)sk;
		e->bytes_sent = BPF_CORE_READ(tp, bytes_acked);
		e->bytes_received = BPF_CORE_READ(tp, bytes_received);
		e->retrans = BPF_CORE_READ(tp, total_retrans);
		e->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
	}
	bpf_ringbuf_submit(e, wakeup_flags());
}

static __always_inline void tuple_from_tp(struct sock_tuple *t, __u16 family, __u16 sport, __u16 dport,
					  const __u8 *s4, const __u8 *d4, const __u8 *s6, const __u8 *d6)
{
	t->family = family;
	t->sport = sport;
	t->dport = dport;
	if (family == AF_INET) {
		bpf_probe_read_kernel(t->saddr, 4, s4);
		bpf_probe_read_kernel(t->daddr, 4, d4);
	} else {
		bpf_probe_read_kernel(t->saddr, 16, s6);
		bpf_probe_read_kernel(t->daddr, 16, d6);
	}
}

SEC("tracepoint/sock/inet_sock_set_state")
int ni_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->protocol != IPPROTO_TCP || !cfg_tcp)
		return 0;
	if ((ctx->family == AF_INET && !cfg_ipv4) || (ctx->family == AF_INET6 && !cfg_ipv6))
		return 0;
	struct sock *sk = (struct sock *)ctx->skaddr;
	int oldstate = ctx->oldstate, newstate = ctx->newstate;
	/* The tracepoint's own tuple: at CLOSE the socket's local port may already be released. */
	struct sock_tuple t = {};
	tuple_from_tp(&t, ctx->family, ctx->sport, ctx->dport, ctx->saddr, ctx->daddr, ctx->saddr_v6,
		      ctx->daddr_v6);

	if (newstate == TCP_ESTABLISHED && (oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV)) {
		struct sock_info *info = sock_info_get(sk, true);
		if (!info)
			return 0;
		info->open_ns = bpf_ktime_get_ns();
		if (oldstate == TCP_SYN_SENT) {
			info->role = ROLE_CLIENT;
			/* The server side reports its open at accept(), where the owner is known. */
			if (!info->opened_sent) {
				info->opened_sent = 1;
				emit_conn(CONN_OPENED, sk, info, &t, 0);
			}
		} else {
			info->role = ROLE_SERVER;
		}
		return 0;
	}
	if (oldstate == TCP_ESTABLISHED && (newstate == TCP_FIN_WAIT1 || newstate == TCP_CLOSE_WAIT)) {
		/* The first FIN: sent by us (FIN_WAIT1) or received (CLOSE_WAIT). Only sockets already
		 * tracked (connect, accept, handshake or data seen) remember it. */
		__u64 key = (__u64)sk;
		struct sock_info *info = bpf_map_lookup_elem(&socks, &key);
		if (info && !info->closed && info->first_fin == FIN_NONE)
			info->first_fin = newstate == TCP_FIN_WAIT1 ? FIN_LOCAL : FIN_PEER;
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;

	__u64 key = (__u64)sk;
	struct sock_info *info = bpf_map_lookup_elem(&socks, &key);
	if (info && info->closed)
		info = NULL; /* left by an earlier socket at the same address */
	if (oldstate == TCP_SYN_SENT) {
		__s32 err = BPF_CORE_READ(sk, sk_err);
		if (err == 0) {
			struct err_key ek = {};
			ek.family = ctx->family;
			ek.sport = ctx->sport;
			ek.dport = ctx->dport;
			if (ctx->family == AF_INET)
				bpf_probe_read_kernel(ek.daddr, 4, ctx->daddr);
			else
				bpf_probe_read_kernel(ek.daddr, 16, ctx->daddr_v6);
			__s32 *found = bpf_map_lookup_elem(&conn_errors, &ek);
			if (found) {
				err = *found;
				bpf_map_delete_elem(&conn_errors, &ek);
			}
		}
		if (info)
			info->role = ROLE_CLIENT;
		emit_conn(CONN_FAILED, sk, info, &t, err);
	} else if (oldstate != TCP_LISTEN && oldstate != TCP_SYN_RECV && oldstate != TCP_NEW_SYN_RECV) {
		emit_conn(CONN_CLOSED, sk, info, &t, 0);
	}
	/* SO_LINGER 0 sets CLOSE before sending its RST: keep the entry, marked closed. */
	if (info)
		info->closed = 1;
	return 0;
}

SEC("tracepoint/sock/inet_sk_error_report")
int ni_error_report(struct trace_event_raw_inet_sk_error_report *ctx)
{
	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	/* No socket pointer here: remember the errno by tuple for the SYN_SENT -> CLOSE transition
	 * that follows, in case sk_err was already consumed. */
	struct err_key ek = {};
	ek.family = ctx->family;
	ek.sport = ctx->sport;
	ek.dport = ctx->dport;
	if (ctx->family == AF_INET)
		bpf_probe_read_kernel(ek.daddr, 4, ctx->daddr);
	else
		bpf_probe_read_kernel(ek.daddr, 16, ctx->daddr_v6);
	__s32 err = ctx->error;
	if (bpf_map_update_elem(&conn_errors, &ek, &err, BPF_ANY) != 0)
		count(COUNTER_MAP_FULL);
	return 0;
}

/*
 * tcp:tcp_send_reset and tcp:tcp_retransmit_skb changed layout across the kernels
 * users run. CO-RE picks the layout the running kernel has:
 *   - tcp_send_reset: its own event with sockaddr images (>= 6.10, trace_event_raw_tcp_send_reset),
 *     before that an event of the tcp_event_sk_skb class (address arrays);
 *   - tcp_retransmit_skb: its own event with an err field (>= 6.13), before that tcp_event_sk_skb.
 * The branch for the layout the kernel lacks is dead at load time, so its unresolved relocations
 * are never reached.
 */

/* The pre-6.10 / pre-6.13 class, under a flavor name so it also matches kernels that still
 * define it beside the new events. */
struct trace_event_raw_tcp_event_sk_skb___old {
	const void *skbaddr;
	const void *skaddr;
	int state;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_send_reset___new {
	const void *skbaddr;
	const void *skaddr;
	int state;
	__u8 saddr[28];
	__u8 daddr[28];
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_retransmit_skb___new {
	const void *skbaddr;
	const void *skaddr;
	int state;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
	int err;
} __attribute__((preserve_access_index));

static __always_inline bool family_wanted(__u16 family)
{
	return (family == AF_INET && cfg_ipv4) || (family == AF_INET6 && cfg_ipv6);
}

SEC("tracepoint/tcp/tcp_send_reset")
int ni_send_reset(void *ctx)
{
	if (!cfg_tcp)
		return 0;
	struct sock *sk;
	struct sock_tuple t = {};
	if (bpf_core_type_exists(struct trace_event_raw_tcp_send_reset___new)) {
		struct trace_event_raw_tcp_send_reset___new *e = ctx;
		sk = (struct sock *)BPF_CORE_READ(e, skaddr);
		tuple_from_sockaddrs(&t, e->saddr, e->daddr);
	} else {
		struct trace_event_raw_tcp_event_sk_skb___old *e = ctx;
		sk = (struct sock *)BPF_CORE_READ(e, skaddr);
		tuple_from_tp(&t, BPF_CORE_READ(e, family), BPF_CORE_READ(e, sport), BPF_CORE_READ(e, dport), e->saddr,
			      e->daddr, e->saddr_v6, e->daddr_v6);
	}
	if (!family_wanted(t.family))
		return 0;
	struct sock_info *info = NULL;
	if (sk) {
		__u64 key = (__u64)sk;
		info = bpf_map_lookup_elem(&socks, &key);
	}
	emit_conn(CONN_RESET_SENT, NULL, info, &t, 0);
	return 0;
}

SEC("tracepoint/tcp/tcp_receive_reset")
int ni_receive_reset(struct trace_event_raw_tcp_event_sk *ctx)
{
	if (!cfg_tcp)
		return 0;
	if (!family_wanted(ctx->family))
		return 0;
	struct sock *sk = (struct sock *)ctx->skaddr;
	struct sock_tuple t = {};
	tuple_from_tp(&t, ctx->family, ctx->sport, ctx->dport, ctx->saddr, ctx->daddr, ctx->saddr_v6,
		      ctx->daddr_v6);
	/* A RST answering our SYN is a refused connect: the CLOSE that follows reports it as such. */
	if (BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_SYN_SENT)
		return 0;
	__u64 key = (__u64)sk;
	struct sock_info *info = bpf_map_lookup_elem(&socks, &key);
	emit_conn(CONN_RESET_RECEIVED, NULL, info, &t, 0);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int ni_retransmit(void *ctx)
{
	if (!cfg_tcp)
		return 0;
	struct sock *sk;
	int state;
	struct sock_tuple t = {};
	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb___new)) {
		struct trace_event_raw_tcp_retransmit_skb___new *e = ctx;
		sk = (struct sock *)BPF_CORE_READ(e, skaddr);
		state = BPF_CORE_READ(e, state);
		tuple_from_tp(&t, BPF_CORE_READ(e, family), BPF_CORE_READ(e, sport), BPF_CORE_READ(e, dport), e->saddr,
			      e->daddr, e->saddr_v6, e->daddr_v6);
	} else {
		struct trace_event_raw_tcp_event_sk_skb___old *e = ctx;
		sk = (struct sock *)BPF_CORE_READ(e, skaddr);
		state = BPF_CORE_READ(e, state);
		tuple_from_tp(&t, BPF_CORE_READ(e, family), BPF_CORE_READ(e, sport), BPF_CORE_READ(e, dport), e->saddr,
			      e->daddr, e->saddr_v6, e->daddr_v6);
	}
	if (!family_wanted(t.family))
		return 0;
	__u64 key = (__u64)sk;
	struct sock_info *info = bpf_map_lookup_elem(&socks, &key);
	if (state == TCP_SYN_SENT) {
		/* Nobody answered our SYN: a server that stopped accepting, a filter, a lost packet. */
		t.role = ROLE_CLIENT;
		emit_conn(CONN_HANDSHAKE_RETRANSMIT, NULL, info, &t, 0);
		return 0;
	}
	emit_conn(CONN_RETRANSMIT, sk, info, &t, 0);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_synack")
int ni_retransmit_synack(struct trace_event_raw_tcp_retransmit_synack *ctx)
{
	if (!cfg_tcp || !family_wanted(ctx->family))
		return 0;
	/* Our SYN-ACK went unacknowledged: typically the listener's accept queue is full, so the
	 * client's ACK was dropped. skaddr is the listener; no process is known here. */
	struct sock_tuple t = {};
	tuple_from_tp(&t, ctx->family, ctx->sport, ctx->dport, ctx->saddr, ctx->daddr, ctx->saddr_v6,
		      ctx->daddr_v6);
	t.role = ROLE_SERVER;
	emit_conn(CONN_HANDSHAKE_RETRANSMIT, NULL, NULL, &t, 0);
	return 0;
}

/* --- connect / accept ---------------------------------------------------------------------- */

SEC("tracepoint/syscalls/sys_enter_connect")
int ni_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	if (excluded())
		return 0;
	struct sock *sk = sock_from_fd((int)ctx->args[0]);
	if (!sk || sock_transport(sk) != TRANSPORT_TCP)
		return 0;
	struct sock_info *info = sock_info_get(sk, true);
	if (!info)
		return 0;
	info->role = ROLE_CLIENT;
	current_task_id(&info->owner);
	__u64 id = bpf_get_current_pid_tgid();
	struct data_args a = {};
	a.sk = (__u64)sk;
	a.addr = ctx->args[1]; /* the destination, for failures that leave the socket without one */
	if (bpf_map_update_elem(&active, &id, &a, BPF_ANY) != 0)
		count(COUNTER_MAP_FULL);
	return 0;
}

static __always_inline void remote_from_user(struct sock_tuple *t, __u64 uaddr);

SEC("tracepoint/syscalls/sys_exit_connect")
int ni_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct data_args *a = bpf_map_lookup_elem(&active, &id);
	if (!a)
		return 0;
	struct sock *sk = (struct sock *)a->sk;
	__u64 uaddr = a->addr;
	bpf_map_delete_elem(&active, &id);
	long ret = ctx->ret;
	if (ret == 0 || ret == -EINPROGRESS || !sk)
		return 0;
	/* Failures the TCP state machine never sees (no SYN sent: unreachable network, ...). */
	__u64 key = (__u64)sk;
	struct sock_info *info = bpf_map_lookup_elem(&socks, &key);
	if (!info || info->opened_sent || info->closed)
		return 0;
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (state != TCP_CLOSE)
		return 0;
	/* A connect that failed before a route was found leaves the socket without a peer: take
	 * the destination the caller asked for. */
	struct sock_tuple t = {};
	fill_tuple(sk, &t);
	if (t.dport == 0)
		remote_from_user(&t, uaddr);
	emit_conn(CONN_FAILED, sk, info, &t, (__s32)-ret);
	info->closed = 1;
	return 0;
}

static __always_inline int exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	if (excluded() || ctx->ret < 0)
		return 0;
	struct sock *sk = sock_from_fd((int)ctx->ret);
	if (!sk || sock_transport(sk) != TRANSPORT_TCP)
		return 0;
	struct sock_info *info = sock_info_get(sk, true);
	if (!info)
		return 0;
	info->role = ROLE_SERVER;
	current_task_id(&info->owner);
	if (!info->opened_sent) {
		info->opened_sent = 1;
		emit_conn(CONN_OPENED, sk, info, NULL, 0);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int ni_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return exit_accept(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int ni_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return exit_accept(ctx);
}

/* --- data ---------------------------------------------------------------------------------- */

static __always_inline int enter_data(int fd, __u64 buf, __u64 addr, __u8 kind, __u8 dir)
{
	if (excluded())
		return 0;
	struct sock *sk = sock_from_fd(fd);
	if (!sk)
		return 0;
	__u8 transport = sock_transport(sk);
	if (!transport)
		return 0;
	struct data_args a = {};
	a.sk = (__u64)sk;
	a.buf = buf;
	a.addr = addr;
	a.kind = kind;
	a.dir = dir;
	a.transport = transport;
	if (transport == TRANSPORT_TCP) {
		__u64 key = (__u64)sk;
		struct sock_info *info = bpf_map_lookup_elem(&socks, &key);
		if (info && info->cls == CLASS_STOPPED)
			return 0;
		struct tcp_sock *tp = (struct tcp_sock *)sk;
		/* The sequence number of the first byte this call moves (DESIGN §4). */
		a.seq = dir == DIR_SEND ? BPF_CORE_READ(tp, write_seq) : BPF_CORE_READ(tp, copied_seq);
	}
	__u64 id = bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&active, &id, &a, BPF_ANY) != 0)
		count(COUNTER_MAP_FULL);
	return 0;
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

static __always_inline bool is_http1(const __u8 *p, __u32 n)
{
	if (n < 4)
		return false;
	switch (p[0]) {
	case 'G':
		return p[1] == 'E' && p[2] == 'T' && p[3] == ' ';
	case 'P':
		return (p[1] == 'O' && p[2] == 'S' && p[3] == 'T') || (p[1] == 'U' && p[2] == 'T' && p[3] == ' ') ||
		       (p[1] == 'A' && p[2] == 'T' && p[3] == 'C');
	case 'H':
		return (p[1] == 'E' && p[2] == 'A' && p[3] == 'D') || (p[1] == 'T' && p[2] == 'T' && p[3] == 'P');
	case 'D':
		return p[1] == 'E' && p[2] == 'L' && p[3] == 'E';
	case 'O':
		return p[1] == 'P' && p[2] == 'T' && p[3] == 'I';
	case 'C':
		return p[1] == 'O' && p[2] == 'N' && p[3] == 'N';
	case 'T':
		return p[1] == 'R' && p[2] == 'A' && p[3] == 'C';
	}
	return false;
}

#define H2_FRAME_HEADER_LEN 9
#define H2_MAX_FRAME_TYPE 9

static __always_inline bool is_http2(const __u8 *p, __u32 n)
{
	/* Client connection preface "PRI * HTTP/2.0". */
	if (n >= 8 && p[0] == 'P' && p[1] == 'R' && p[2] == 'I' && p[3] == ' ' && p[4] == '*' && p[5] == ' ' &&
	    p[6] == 'H' && p[7] == 'T')
		return true;
	/* A plausible frame header: a server's first bytes are a SETTINGS frame on stream 0. */
	if (n < H2_FRAME_HEADER_LEN)
		return false;
	__u32 len = ((__u32)p[0] << 16) | ((__u32)p[1] << 8) | p[2];
	__u8 type = p[3];
	__u32 stream = ((__u32)(p[5] & 0x7f) << 24) | ((__u32)p[6] << 16) | ((__u32)p[7] << 8) | p[8];
	return type == 4 /* SETTINGS */ && stream == 0 && len % 6 == 0 && len <= 16384;
}

#define TLS_HANDSHAKE 0x16

static __always_inline bool is_tls(const __u8 *p, __u32 n)
{
	return n >= 6 && p[0] == TLS_HANDSHAKE && p[1] == 0x03 && p[2] <= 0x04 &&
	       (p[5] == 1 /* ClientHello */ || p[5] == 2 /* ServerHello */);
}

#define DNS_HEADER_LEN 12

static __always_inline bool is_dns(const __u8 *p, __u32 n)
{
	if (n < DNS_HEADER_LEN)
		return false;
	__u8 opcode = (p[2] >> 3) & 0xf;
	__u16 qd = ((__u16)p[4] << 8) | p[5];
	__u16 an = ((__u16)p[6] << 8) | p[7];
	__u8 z = (p[3] >> 6) & 1;
	return opcode <= 2 && qd == 1 && an < 256 && z == 0;
}

/* classify_tcp says whether the first bytes of a connection are worth following. */
static __always_inline bool classify_tcp(const __u8 *p, __u32 n, __u16 sport, __u16 dport)
{
	if (cfg_http && (is_http1(p, n) || port_in(cfg_http_ports, sport, dport)))
		return true;
	if ((cfg_http || cfg_grpc) && is_http2(p, n))
		return true;
	if (cfg_https && (is_tls(p, n) || port_in(cfg_https_ports, sport, dport)))
		return true;
	if (cfg_dns && port_in(cfg_dns_ports, sport, dport))
		return true;
	return false;
}

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

/* emit_data sends one data event: total bytes moved by the call (or by one message of an mmsg
 * vector), found according to kind at buf — for BUF_MMSG, buf is that message's struct mmsghdr
 * and total its msg_len — the first of them at TCP sequence number seq. */
static __always_inline int emit_data(const struct data_args *ap, __u8 kind, __u64 buf, __u64 total, __u32 seq)
{
	struct data_args a = *ap;

	/* Where the bytes are: the buffer, or the first iovec. */
	__u64 src = buf;
	__u64 uaddr = a.addr;
	if (kind == BUF_MSG || kind == BUF_MMSG) {
		/* msg_hdr leads struct mmsghdr. */
		struct user_msghdr msg = {};
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)buf) != 0)
			return 0;
		src = (__u64)msg.msg_iov;
		uaddr = (__u64)msg.msg_name;
	}
	__u64 avail = total;
	if (kind != BUF_PLAIN) {
		struct iovec iov = {};
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)src) != 0)
			return 0;
		src = (__u64)iov.iov_base;
		if (iov.iov_len < avail)
			avail = iov.iov_len;
	}

	__u32 zero = 0;
	struct data_event *e = bpf_map_lookup_elem(&data_scratch, &zero);
	if (!e)
		return 0;
	__u32 n = avail;
	if (avail > cfg_max_payload)
		n = cfg_max_payload;
	if (n > MAX_PAYLOAD)
		n = MAX_PAYLOAD;
	asm volatile("%[n] &= 0x1fff" : [n] "+r"(n));
	if (n > MAX_PAYLOAD)
		return 0;
	if (bpf_probe_read_user(e->payload, n, (void *)src) != 0)
		return 0;

	struct sock *sk = (struct sock *)a.sk;
	fill_tuple(sk, &e->h.tuple);
	e->h.tuple.transport = a.transport;
	e->h.seq = 0;
	e->h.client_isn = 0;
	e->h.server_isn = 0;
	e->h.cookie = 0;

	if (a.transport == TRANSPORT_UDP) {
		if (e->h.tuple.dport == 0)
			remote_from_user(&e->h.tuple, uaddr);
		bool dns = cfg_dns && (port_in(cfg_dns_ports, e->h.tuple.sport, e->h.tuple.dport) || is_dns(e->payload, n));
		if (!dns) {
			count(COUNTER_UNCLASSIFIED);
			return 0;
		}
		e->h.tuple.role = ROLE_UNKNOWN;
	} else {
		struct sock_info *info = sock_info_get(sk, true);
		if (!info)
			return 0;
		__u8 dirbit = a.dir == DIR_SEND ? 1 : 2;
		if (info->cls == CLASS_UNKNOWN) {
			if (classify_tcp(e->payload, n, e->h.tuple.sport, e->h.tuple.dport)) {
				info->cls = CLASS_KNOWN;
			} else {
				info->cls = CLASS_FIRST_EXCHANGE;
				count(COUNTER_UNCLASSIFIED);
			}
		} else if (info->cls == CLASS_FIRST_EXCHANGE && (info->dirs_seen & dirbit)) {
			info->cls = CLASS_STOPPED;
		}
		if (info->cls == CLASS_STOPPED)
			return 0;
		info->dirs_seen |= dirbit;
		if (info->owner.tgid == 0)
			current_task_id(&info->owner);
		e->h.cookie = info->cookie;
		/* RTT: sampled here, where the socket is in hand, at most once per socket per
		 * cfg_rtt_interval_ns (not from tcp:tcp_probe, which runs on every segment). */
		__u64 now = bpf_ktime_get_ns();
		if (now - info->last_rtt_ns >= cfg_rtt_interval_ns) {
			info->last_rtt_ns = now;
			emit_conn(CONN_RTT, sk, info, NULL, 0);
		}

		__u8 role = info->role;
		if (role == ROLE_UNKNOWN)
			/* Socket predates capture: guess that the side with the lower port serves. */
			role = e->h.tuple.sport < e->h.tuple.dport ? ROLE_SERVER : ROLE_CLIENT;
		e->h.tuple.role = info->role;
		struct tcp_sock *tp = (struct tcp_sock *)sk;
		__u32 rcv_nxt = BPF_CORE_READ(tp, rcv_nxt);
		__u32 snd_una = BPF_CORE_READ(tp, snd_una);
		__u64 bytes_received = BPF_CORE_READ(tp, bytes_received);
		__u64 bytes_acked = BPF_CORE_READ(tp, bytes_acked);
		/* DESIGN §4: the connecting side's bytes_acked counts its SYN. */
		__u32 peer_isn = rcv_nxt - (__u32)bytes_received - 1;
		__u32 own_isn = snd_una - (__u32)bytes_acked - (role == ROLE_SERVER ? 1 : 0);
		e->h.client_isn = role == ROLE_CLIENT ? own_isn : peer_isn;
		e->h.server_isn = role == ROLE_CLIENT ? peer_isn : own_isn;
		e->h.seq = seq;
	}

	e->h.type = EVENT_DATA;
	e->h.dir = a.dir;
	e->h.size = total;
	e->h.payload_len = n;
	e->h.truncated = total > n;
	if (e->h.truncated)
		count(COUNTER_PAYLOAD_TRUNCATED);
	e->h.ts_ns = bpf_ktime_get_ns();
	current_task_id(&e->h.task);

	__u64 size = sizeof(*e) - MAX_PAYLOAD + n;
	if (size > sizeof(*e))
		return 0;
	if (bpf_ringbuf_output(&events, e, size, wakeup_flags()) != 0)
		count(COUNTER_RINGBUF_RESERVE_FAILED);
	else
		count_ringbuf(size);
	return 0;
}

/* Messages of one sendmmsg/recvmmsg call reported, from the first; further ones are not. */
#define MAX_MMSG 4

/* exit_data reports what the syscall whose sys_enter stored its arguments moved. kind is a
 * constant per program, so each program keeps only its own path. */
static __always_inline int exit_data(struct trace_event_raw_sys_exit *ctx, __u8 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct data_args *ap = bpf_map_lookup_elem(&active, &id);
	if (!ap)
		return 0;
	struct data_args a = *ap;
	bpf_map_delete_elem(&active, &id);
	long ret = ctx->ret;
	/* A different kind is a leftover of a syscall whose exit we missed. */
	if (ret <= 0 || a.kind != kind)
		return 0;
	if (kind != BUF_MMSG)
		return emit_data(&a, kind, a.buf, (__u64)ret, a.seq);
	/* ret counts messages; each message's msg_len says what it moved. */
	__u32 seq = a.seq;
	for (int i = 0; i < MAX_MMSG; i++) {
		if (i >= ret)
			break;
		struct mmsghdr mm = {};
		__u64 at = a.buf + (__u64)i * sizeof(mm);
		if (bpf_probe_read_user(&mm, sizeof(mm), (void *)at) != 0)
			break;
		if (mm.msg_len > 0)
			emit_data(&a, BUF_MMSG, at, mm.msg_len, seq);
		seq += mm.msg_len;
	}
	return 0;
}

#define DATA_PROGS(name, fdarg, bufarg, addrarg, kind, dir)                                    \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                             \
	int ni_enter_##name(struct trace_event_raw_sys_enter *ctx)                          \
	{                                                                                       \
		return enter_data((int)ctx->args[fdarg], ctx->args[bufarg], addrarg, kind, dir); \
	}                                                                                       \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                              \
	int ni_exit_##name(struct trace_event_raw_sys_exit *ctx)                            \
	{                                                                                       \
		return exit_data(ctx, kind);                                                    \
	}

DATA_PROGS(read, 0, 1, 0, BUF_PLAIN, DIR_RECV)
DATA_PROGS(write, 0, 1, 0, BUF_PLAIN, DIR_SEND)
DATA_PROGS(readv, 0, 1, 0, BUF_IOV, DIR_RECV)
DATA_PROGS(writev, 0, 1, 0, BUF_IOV, DIR_SEND)
DATA_PROGS(sendto, 0, 1, ctx->args[4], BUF_PLAIN, DIR_SEND)
DATA_PROGS(recvfrom, 0, 1, ctx->args[4], BUF_PLAIN, DIR_RECV)
DATA_PROGS(sendmsg, 0, 1, 0, BUF_MSG, DIR_SEND)
DATA_PROGS(recvmsg, 0, 1, 0, BUF_MSG, DIR_RECV)
DATA_PROGS(sendmmsg, 0, 1, 0, BUF_MMSG, DIR_SEND)
DATA_PROGS(recvmmsg, 0, 1, 0, BUF_MMSG, DIR_RECV)
