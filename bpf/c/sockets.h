/* Socket tracking: which fds are sockets (socket, accept, close, the /proc seed), which TCP
 * sockets exist (connect, accept, state changes), and their connection events. */
#ifndef NETINTEL_SOCKETS_H
#define NETINTEL_SOCKETS_H

#include "common.h"
#include "http1.h"

/* sock_free ends the state of socket sk: its slot goes back to free_slots. */
static __always_inline void sock_free(__u64 sk)
{
	__u64 key = sk;
	__u32 *slot1 = bpf_map_lookup_elem(&socks, &key);
	if (!slot1 || *slot1 == 0)
		return;
	__u32 i = *slot1 - 1;
	/* Of two CPUs freeing the same socket, the one that deletes it frees its slot. */
	if (bpf_map_delete_elem(&socks, &key) != 0)
		return;
	struct sock_state *st = bpf_map_lookup_elem(&sock_slots, &i);
	if (st)
		st->sk = 0;
	bpf_map_push_elem(&free_slots, &i, 0);
}

/* sock_closed says whether TCP socket sk has reached TCP_CLOSE. */
static __always_inline bool sock_closed(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_CLOSE;
}

/* forget_stale_state frees a state sk already has at its birth (socket(), or a listener's new
 * child): it is a dead socket's at the same address, whose CLOSE this capture did not see. Left,
 * the new socket would take over its class, its request waiting and its owner. */
static __always_inline void forget_stale_state(struct sock *sk)
{
	if (!sock_find((__u64)sk))
		return;
	sock_free((__u64)sk);
	count(COUNTER_STALE_SOCK_STATE);
}

/* sock_state_get returns the state of sk, creating it when asked. */
static __always_inline struct sock_state *sock_state_get(struct sock *sk, bool create)
{
	__u64 key = (__u64)sk;
	struct sock_state *st = sock_find(key);
	if (st || !create)
		return st;
	struct blanks *b = blanks();
	if (!b)
		return NULL;
	__u32 i = 0;
	if (bpf_map_pop_elem(&free_slots, &i) != 0) {
		count(COUNTER_SOCKS_FULL); /* every slot is taken */
		return NULL;
	}
	if (bpf_map_update_elem(&sock_slots, &i, &b->state, BPF_ANY) != 0) {
		bpf_map_push_elem(&free_slots, &i, 0);
		count(COUNTER_SOCKS_FULL);
		return NULL;
	}
	st = bpf_map_lookup_elem(&sock_slots, &i);
	if (!st)
		return NULL;
	/* Filled before it is published in socks, so a reader never finds it half made. */
	st->sk = key;
	st->slot1 = i + 1;
	/* The kernel socket cookie is not reachable from tracepoint programs
	 * (bpf_get_socket_cookie is not offered to them and skc_cookie is assigned lazily),
	 * so a random 64-bit id is drawn when the socket is first seen. */
	st->info.cookie = ((__u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32();
	__u32 slot1 = i + 1;
	if (bpf_map_update_elem(&socks, &key, &slot1, BPF_NOEXIST) != 0) {
		/* Another CPU made this socket's state first, or socks is full. */
		st->sk = 0;
		bpf_map_push_elem(&free_slots, &i, 0);
		st = sock_find(key);
		if (!st)
			count(COUNTER_SOCKS_FULL);
	}
	return st;
}

/* sock_info_get is sock_state_get's connection part. */
static __always_inline struct sock_info *sock_info_get(struct sock *sk, bool create)
{
	struct sock_state *st = sock_state_get(sk, create);
	return st ? &st->info : NULL;
}

/* --- connection events --------------------------------------------------------------------- */

static __always_inline void emit_conn(__u8 kind, struct sock *sk, struct sock_info *info,
				      struct sock_tuple *tuple, __s32 err)
{
	if (info && info->owner.tgid != 0 && excluded_tgid(info->owner.tgid))
		return;
	if ((!info || info->owner.tgid == 0) && excluded())
		return;
	struct conn_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_RINGBUF_FULL);
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

/* known_info finds the connection of sk, also one that already reached TCP_CLOSE. */
static __always_inline struct sock_info *known_info(struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct sock_state *st = sock_find(key);
	if (st)
		return &st->info;
	return bpf_map_lookup_elem(&closed_socks, &key);
}

/* err_key_of is the key an asynchronous connect error is kept under: the connection's tuple. */
static __always_inline void err_key_of(struct err_key *ek, const struct sock_tuple *t)
{
	ek->family = t->family;
	ek->sport = t->sport;
	ek->dport = t->dport;
	__builtin_memcpy(ek->daddr, t->daddr, 16);
}

/* pair_unanswered: a quiet client's connection closed (enum pair). Its server's socket, which
 * judges for it, may never close (a server that hangs): a request it still waits to answer is
 * sent now, as the client's close would have sent it. */
static __always_inline void pair_unanswered(struct sock_state *client, struct sock *sk, const struct sock_tuple *t)
{
	struct sock_state *srv = sock_find(client->pair_peer);
	/* The same connection: each end names the other. */
	if (!srv || srv->pair_peer != (__u64)sk || !server_paired(srv, false))
		return;
	struct sock_tuple st = *t;
	__builtin_memcpy(st.saddr, t->daddr, 16);
	__builtin_memcpy(st.daddr, t->saddr, 16);
	st.sport = t->dport;
	st.dport = t->sport;
	http1_unanswered(srv, &st);
}

/* on_set_state follows a TCP socket's state changes: opens, the first FIN, the close. */
static __always_inline int on_set_state(struct sock *sk, int oldstate, int newstate, struct sock_tuple *t)
{
	if (newstate == TCP_SYN_RECV && oldstate == TCP_LISTEN) {
		forget_stale_state(sk); /* a listener's new child, cloned from it */
		return 0;
	}
	if (newstate == TCP_ESTABLISHED && (oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV)) {
		struct sock_info *info = sock_info_get(sk, true);
		if (!info)
			return 0;
		info->open_ns = bpf_ktime_get_ns();
		if (oldstate == TCP_SYN_SENT) {
			info->role = ROLE_CLIENT;
			struct local_client_key lk;
			struct local_client c = {.tgid = info->owner.tgid, .client_sk = (__u64)sk};
			if (c.tgid && local_client_key_of(&lk, t->saddr, t->daddr, t->sport, t->family))
				bpf_map_update_elem(&local_clients, &lk, &c, BPF_ANY);
			/* The server side reports its open at accept(), where the owner is known. */
			if (!info->opened_sent) {
				info->opened_sent = 1;
				emit_conn(CONN_OPENED, sk, info, t, 0);
			}
		} else {
			info->role = ROLE_SERVER;
		}
		return 0;
	}
	__u64 key = (__u64)sk;
	if (oldstate == TCP_ESTABLISHED && (newstate == TCP_FIN_WAIT1 || newstate == TCP_CLOSE_WAIT)) {
		/* The first FIN: sent by us (FIN_WAIT1) or received (CLOSE_WAIT). */
		struct sock_state *st = sock_find(key);
		struct sock_info *info = st ? &st->info : NULL;
		if (info && info->first_fin == FIN_NONE)
			info->first_fin = newstate == TCP_FIN_WAIT1 ? FIN_LOCAL : FIN_PEER;
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;

	struct sock_state *st = sock_find(key);
	struct sock_info *info = st ? &st->info : NULL;
	if (st)
		/* No response can come any more: a request still waiting is sent as unanswered. */
		http1_unanswered(st, t);
	if (st && st->pair == PAIR_QUIET)
		pair_unanswered(st, sk, t);
	if (info && info->role == ROLE_CLIENT) {
		struct local_client_key lk;
		if (local_client_key_of(&lk, t->saddr, t->daddr, t->sport, t->family))
			bpf_map_delete_elem(&local_clients, &lk);
	}
	if (oldstate == TCP_SYN_SENT) {
		__s32 err = BPF_CORE_READ(sk, sk_err);
		if (err == 0) {
			struct err_key ek = {};
			err_key_of(&ek, t);
			__s32 *found = bpf_map_lookup_elem(&conn_errors, &ek);
			if (found) {
				err = *found;
				bpf_map_delete_elem(&conn_errors, &ek);
			}
		}
		if (info)
			info->role = ROLE_CLIENT;
		emit_conn(CONN_FAILED, sk, info, t, err);
	} else if (oldstate != TCP_LISTEN && oldstate != TCP_SYN_RECV && oldstate != TCP_NEW_SYN_RECV) {
		emit_conn(CONN_CLOSED, sk, info, t, 0);
	}
	if (info) {
		/* SO_LINGER 0 sets CLOSE before sending its RST: keep the owner a little longer, and
		 * free the socket table entry (the struct sock may be reused by a new socket). */
		bpf_map_update_elem(&closed_socks, &key, info, BPF_ANY);
		sock_free(key);
	}
	return 0;
}

/* on_error_report remembers a connect's errno by tuple for the SYN_SENT -> CLOSE transition that
 * follows, in case the socket's error was consumed by then. */
static __always_inline int on_error_report(struct sock_tuple *t, __s32 err)
{
	struct err_key ek = {};
	err_key_of(&ek, t);
	if (bpf_map_update_elem(&conn_errors, &ek, &err, BPF_ANY) != 0)
		count(COUNTER_CONN_ERRORS_FULL);
	return 0;
}

/* The sock and tcp tracepoints fire in softirq as often as in a process: they attach as raw
 * tracepoints in every mode. A classic tracepoint's program does not run while any other
 * tracing program runs on the CPU (the kernel's bpf_prog_active): a softirq that interrupts a
 * syscall's program would lose its CLOSE, and the socket's state would outlive the socket (the
 * next socket at its address took it over). A raw tracepoint's program is skipped only when it
 * interrupts itself; the kernel counts every skipped run (netintel.receiver.dropped
 * {reason=program_runs_missed}). */
SEC("raw_tp/inet_sock_set_state")
int ni_raw_set_state(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP || !cfg_tcp ||
	    !family_wanted(BPF_CORE_READ(sk, __sk_common.skc_family)))
		return 0;
	int oldstate = (int)ctx->args[1], newstate = (int)ctx->args[2];
	/* Only a client's open and a close use the tuple: read from the socket (eight reads), it is
	 * not read for the other changes (most of a connection's). */
	struct sock_tuple t = {};
	if (newstate == TCP_CLOSE || (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_SENT))
		tuple_of(sk, &t);
	return on_set_state(sk, oldstate, newstate, &t);
}

SEC("raw_tp/inet_sk_error_report")
int ni_raw_error_report(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	struct sock_tuple t = {};
	tuple_of(sk, &t);
	return on_error_report(&t, BPF_CORE_READ(sk, sk_err));
}

/* --- the fd table -------------------------------------------------------------------------- */

static __always_inline void owner_add(__u32 tgid, int delta)
{
	__u32 *n = bpf_map_lookup_elem(&fd_owners, &tgid);
	if (n) {
		if (delta > 0)
			__sync_fetch_and_add(n, 1);
		else if (*n <= 1)
			bpf_map_delete_elem(&fd_owners, &tgid);
		else
			__sync_fetch_and_add(n, -1);
		return;
	}
	if (delta > 0) {
		__u32 one = 1;
		bpf_map_update_elem(&fd_owners, &tgid, &one, BPF_NOEXIST);
	}
}

/* fd_forget removes an fd from the table (close, or a socket that stopped being followed). */
static __always_inline void fd_forget(struct fd_key *key)
{
	if (bpf_map_delete_elem(&fds, key) == 0)
		owner_add(key->tgid, -1);
	fd_hot_drop(key->tgid, key->fd); /* after the change of fds (fd_hot_fill) */
}

/* track_fd enters fd of the current process in the fd table, with its socket when known. */
static __always_inline struct fd_entry *track_fd(__u32 tgid, int fd, struct sock *sk, __u8 transport)
{
	struct fd_key key = {.tgid = tgid, .fd = fd};
	struct fd_entry fresh = {.sk = (__u64)sk, .transport = transport};
	if (bpf_map_update_elem(&fds, &key, &fresh, BPF_NOEXIST) == 0) {
		owner_add(tgid, 1);
	} else if (bpf_map_update_elem(&fds, &key, &fresh, BPF_EXIST) != 0) {
		count(COUNTER_FDS_FULL);
		fd_hot_drop(tgid, fd);
		return NULL;
	}
	fd_hot_drop(tgid, fd); /* a socket the fd named before; after the change of fds */
	return bpf_map_lookup_elem(&fds, &key);
}

/* resolve fills in the socket of an entry made without one (the /proc seed): fe->sk stays 0 and
 * the entry is dropped when the fd is not an inet socket. */
static __always_inline bool resolve(struct fd_entry *fe, __u32 tgid, int fd)
{
	if (fe->sk)
		return true;
	struct sock *sk = sock_from_fd(fd);
	__u8 transport = sk ? sock_transport(sk) : 0;
	if (!transport) {
		struct fd_key key = {.tgid = tgid, .fd = fd};
		fd_forget(&key);
		return false;
	}
	fe->sk = (__u64)sk;
	fe->transport = transport;
	return true;
}

/* socket(): an inet stream or datagram socket enters the fd table at birth. */
static __always_inline int on_exit_socket(long ret)
{
	if (ret < 0)
		return 0;
	/* The family and type are the socket's own; read them from it (one walk per socket). */
	struct sock *sk = sock_from_fd((int)ret);
	if (!sk)
		return 0;
	__u8 transport = sock_transport(sk);
	if (!transport)
		return 0;
	if (transport == TRANSPORT_TCP)
		forget_stale_state(sk); /* the collector's own too: on_set_state follows every socket */
	if (excluded())
		return 0;
	track_fd(bpf_get_current_pid_tgid() >> 32, (int)ret, sk, transport);
	return 0;
}


/* --- fork: a child inherits its parent's socket fds ----------------------------------------- */

/* Sockets a fork-per-connection server (busybox httpd, inetd, a PostgreSQL backend) accepted in
 * the parent are served by the child. Its first syscalls after the fork copy the parent's
 * entries of the fds it could have inherited. */
#define FORK_FDS 256

struct fork_copy {
	__u32 parent;
	__u32 child;
	__u32 copied;
};

static long fork_copy_step(__u32 fd, void *ctx)
{
	struct fork_copy *fc = ctx;
	struct fd_key pk = {.tgid = fc->parent, .fd = fd};
	struct fd_entry *fe = bpf_map_lookup_elem(&fds, &pk);
	if (!fe)
		return 0;
	struct fd_key ck = {.tgid = fc->child, .fd = fd};
	if (bpf_map_update_elem(&fds, &ck, fe, BPF_NOEXIST) == 0) {
		fd_hot_drop(fc->child, fd);
		fc->copied++;
		owner_add(fc->child, 1);
	}
	return 0;
}

/* Forks in flight: the clone's caller, and whether it makes a process (1) or a thread (0). Its
 * sched_process_fork, in the same task, reads and removes it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64); /* pid_tgid */
	__type(value, __u8);
} forks SEC(".maps");

#define CLONE_THREAD 0x00010000

static __always_inline int enter_fork(__u64 flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!bpf_map_lookup_elem(&fd_owners, &tgid))
		return 0;
	__u8 process = !(flags & CLONE_THREAD);
	bpf_map_update_elem(&forks, &id, &process, BPF_ANY);
	return 0;
}

static __always_inline void copy_fds(__u32 parent, __u32 child)
{
	__u32 *owned = bpf_map_lookup_elem(&fd_owners, &parent);
	if (!owned)
		return;
	__u32 want = *owned;
	struct fork_copy fc = {.parent = parent, .child = child};
	bpf_loop(FORK_FDS, fork_copy_step, &fc, 0);
	if (fc.copied < want)
		count_n(COUNTER_FORK_FDS_BEYOND, want - fc.copied);
}

/* A new task's id names no live process: fd entries under it as a tgid are a dead process's (one
 * that exited with sockets open: no close() told the table), which a process given that pid would
 * otherwise take for its own. Its fds below FORK_FDS go here, before the child can run; the rest,
 * and a dead process's entries whose pid is not reused, go at user space's sweep. */
static long stale_fd_step(__u32 fd, void *ctx)
{
	struct fork_copy *fc = ctx;
	struct fd_key k = {.tgid = fc->child, .fd = fd};
	if (bpf_map_delete_elem(&fds, &k) == 0) {
		fd_hot_drop(fc->child, fd);
		fc->copied++;
	}
	return 0;
}

static __always_inline void forget_stale(__u32 task)
{
	if (!bpf_map_lookup_elem(&fd_owners, &task))
		return;
	struct fork_copy fc = {.child = task};
	bpf_loop(FORK_FDS, stale_fd_step, &fc, 0);
	bpf_map_delete_elem(&fd_owners, &task);
	count_n(COUNTER_STALE_FDS, fc.copied);
}

/* sched_process_fork runs in the parent once the child exists and before it first runs: the copy
 * is made before either can use, dup or close a socket. The child's pid is the kernel's own (the
 * clone's return value is the pid in the parent's namespace, another number in a container);
 * task is the new task's own id (a thread's too), child its process's. */
static __always_inline int on_fork(__u32 child, __u32 task)
{
	forget_stale(task);
	__u64 id = bpf_get_current_pid_tgid();
	__u8 *process = bpf_map_lookup_elem(&forks, &id);
	if (!process)
		return 0;
	__u8 is_process = *process;
	bpf_map_delete_elem(&forks, &id);
	if (is_process)
		copy_fds(id >> 32, child);
	return 0;
}

SEC("tracepoint/sched/sched_process_fork")
int ni_fork(struct trace_event_raw_sched_process_fork *ctx)
{
	/* child_pid moves between kernels (6.1 inlines the comms): its offset is relocated. */
	__u32 pid = (__u32)BPF_CORE_READ(ctx, child_pid);
	return on_fork(pid, pid); /* a process's pid is its tgid; a thread's copies nothing */
}

SEC("raw_tp/sched_process_fork")
int ni_raw_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	return on_fork((__u32)BPF_CORE_READ(child, tgid), (__u32)BPF_CORE_READ(child, pid));
}

static __always_inline int on_enter_clone(const __u64 *args)
{
	return enter_fork(args[0]);
}

static __always_inline int on_enter_clone3(const __u64 *args)
{
	__u64 flags = 0;
	if (bpf_probe_read_user(&flags, sizeof(flags), (void *)args[0]) != 0)
		return 0;
	return enter_fork(flags);
}

static __always_inline int on_enter_fork(const __u64 *args)
{
	return enter_fork(0);
}

static __always_inline int on_enter_vfork(const __u64 *args)
{
	return enter_fork(0);
}

/* --- dup: another fd of the same socket ---------------------------------------------------- */

/* An fd copy (dup2 onto stdin/stdout, as inetd-style servers do) points at the socket's one
 * state. dup2/dup3 name the new fd up front; dup and fcntl(F_DUPFD) return it. */

static __always_inline void dup_fd(__u32 tgid, int oldfd, int newfd)
{
	if (oldfd == newfd || newfd < 0)
		return;
	struct fd_key ok = {.tgid = tgid, .fd = oldfd};
	struct fd_entry *fe = bpf_map_lookup_elem(&fds, &ok);
	struct fd_key nk = {.tgid = tgid, .fd = newfd};
	if (!fe) {
		fd_forget(&nk); /* newfd, if it was a socket, is closed by the dup */
		return;
	}
	if (bpf_map_update_elem(&fds, &nk, fe, BPF_NOEXIST) == 0)
		owner_add(tgid, 1);
	else if (bpf_map_update_elem(&fds, &nk, fe, BPF_EXIST) != 0)
		count(COUNTER_FDS_FULL);
	fd_hot_drop(tgid, newfd); /* after the change of fds */
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64); /* pid_tgid */
	__type(value, __s32); /* the fd being duplicated */
} dups SEC(".maps");

static __always_inline int enter_dup(int oldfd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct fd_key k = {.tgid = id >> 32, .fd = oldfd};
	if (!bpf_map_lookup_elem(&fds, &k))
		return 0;
	__s32 fd = oldfd;
	bpf_map_update_elem(&dups, &id, &fd, BPF_ANY);
	return 0;
}

static __always_inline int exit_dup(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s32 *oldfd = bpf_map_lookup_elem(&dups, &id);
	if (!oldfd)
		return 0;
	int fd = *oldfd;
	bpf_map_delete_elem(&dups, &id);
	if (ret >= 0)
		dup_fd(id >> 32, fd, (int)ret);
	return 0;
}

static __always_inline int on_enter_dup2(const __u64 *args)
{
	dup_fd(bpf_get_current_pid_tgid() >> 32, (int)args[0], (int)args[1]);
	return 0;
}

static __always_inline int on_enter_dup3(const __u64 *args)
{
	dup_fd(bpf_get_current_pid_tgid() >> 32, (int)args[0], (int)args[1]);
	return 0;
}

static __always_inline int on_enter_dup(const __u64 *args)
{
	return enter_dup((int)args[0]);
}

static __always_inline int on_exit_dup(long ret)
{
	return exit_dup(ret);
}

#define F_DUPFD 0
#define F_DUPFD_CLOEXEC 1030

static __always_inline int on_enter_fcntl(const __u64 *args)
{
	long cmd = args[1];
	if (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC)
		return 0;
	return enter_dup((int)args[0]);
}

static __always_inline int on_exit_fcntl(long ret)
{
	return exit_dup(ret);
}

/* --- connect / accept ---------------------------------------------------------------------- */

/* The connect in flight on each thread, for its exit: the socket and the destination asked for. */
struct connect_args {
	__u64 sk;
	__u64 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct connect_args);
} connects SEC(".maps");

static __always_inline int on_enter_connect(const __u64 *args)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (excluded_tgid(tgid))
		return 0;
	int fd = (int)args[0];
	struct fd_key fk = {.tgid = tgid, .fd = fd};
	struct fd_entry *fe = bpf_map_lookup_elem(&fds, &fk);
	struct sock *sk;
	if (fe) {
		if (!resolve(fe, tgid, fd))
			return 0;
		sk = (struct sock *)fe->sk;
	} else {
		/* A socket from before the capture, or passed from another process. */
		sk = sock_from_fd(fd);
		if (!sk)
			return 0;
		__u8 transport = sock_transport(sk);
		if (!transport)
			return 0;
		fe = track_fd(tgid, fd, sk, transport);
		if (!fe)
			return 0;
	}
	if (fe->transport != TRANSPORT_TCP)
		return 0;
	struct sock_info *info = sock_info_get(sk, true);
	if (!info)
		return 0;
	info->role = ROLE_CLIENT;
	current_task_id(&info->owner);
	struct connect_args a = {.sk = (__u64)sk, .addr = args[1]};
	bpf_map_update_elem(&connects, &id, &a, BPF_ANY);
	return 0;
}

static __always_inline int on_exit_connect(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct connect_args *a = bpf_map_lookup_elem(&connects, &id);
	if (!a)
		return 0;
	struct sock *sk = (struct sock *)a->sk;
	__u64 uaddr = a->addr;
	bpf_map_delete_elem(&connects, &id);
	if (ret == 0 || ret == -EINPROGRESS || !sk)
		return 0;
	/* Failures the TCP state machine never sees (no SYN sent: unreachable network, no local
	 * port left, ...). */
	__u64 key = (__u64)sk;
	struct sock_info *info = sock_info_get(sk, false);
	if (!info || info->opened_sent)
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
	bpf_map_update_elem(&closed_socks, &key, info, BPF_ANY);
	sock_free(key);
	return 0;
}

static __always_inline int exit_accept(long ret)
{
	if (ret < 0 || excluded())
		return 0;
	int fd = (int)ret;
	struct sock *sk = sock_from_fd(fd);
	if (!sk || sock_transport(sk) != TRANSPORT_TCP)
		return 0;
	if (sock_closed(sk))
		return 0; /* reset before it was accepted: no state (see tcp_state), nothing to follow */
	struct sock_info *info = sock_info_get(sk, true);
	if (!info)
		return 0;
	info->role = ROLE_SERVER;
	current_task_id(&info->owner);
	if (!info->opened_sent) {
		info->opened_sent = 1;
		emit_conn(CONN_OPENED, sk, info, NULL, 0);
	}
	track_fd(info->owner.tgid, fd, sk, TRANSPORT_TCP);
	return 0;
}

static __always_inline int on_exit_accept(long ret)
{
	return exit_accept(ret);
}

static __always_inline int on_exit_accept4(long ret)
{
	return exit_accept(ret);
}

/* tcp_state returns the state of the TCP socket behind an fd entry, making one for a socket first
 * seen in the data path (seeded from /proc): its owner is the caller, its role the seed's. */
static __always_inline struct sock_state *tcp_state(struct fd_entry *fe)
{
	/* The fd entry names the state's slot: an array index, no hash lookup. */
	struct sock_state *st = slot_state(fe->slot1, fe->sk);
	if (st)
		return st;
	struct sock *sk = (struct sock *)fe->sk;
	st = sock_find(fe->sk);
	if (!st) {
		/* A socket that already closed (a write after the peer's reset: its CLOSE freed
		 * its state) gets none. No CLOSE would free it, and a socket the kernel allocates
		 * at the same address later would find it: its class, its open already sent. */
		if (sock_closed(sk))
			return NULL;
		st = sock_state_get(sk, true);
		if (!st)
			return NULL;
		current_task_id(&st->info.owner);
		st->info.role = fe->role;
	}
	fe->slot1 = st->slot1;
	return st;
}

#endif
