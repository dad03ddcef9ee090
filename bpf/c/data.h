/* The data path: the bytes of socket reads and writes. A syscall on an fd that is not in the fd
 * table exits after one lookup. Writes are handled at sys_enter (their bytes are there and the
 * TCP write sequence tells a retry from new data); reads keep their arguments in task storage
 * for sys_exit. Each socket is classified once; HTTP/1 is judged in the kernel (http1.h),
 * HTTP/2 walked by frames (http2.h), DNS and TLS hellos sent, everything else sent for its
 * first exchange and then stopped. */
#ifndef NETINTEL_DATA_H
#define NETINTEL_DATA_H

#include "common.h"
#include "records.h"
#include "sockets.h"
#include "http1.h"
#include "http2.h"

#define TLS_HANDSHAKE 0x16

static __always_inline bool is_tls(const __u8 *p, __u32 n)
{
	return n >= 6 && p[0] == TLS_HANDSHAKE && p[1] == 0x03 && p[2] <= 0x04 &&
	       (p[5] == 1 /* ClientHello */ || p[5] == 2 /* ServerHello */);
}

#define DNS_HEADER_LEN 12

/* is_dns: a DNS header with one question (opcode QUERY, IQUERY or STATUS, Z clear). */
static __always_inline bool is_dns(const __u8 *p, __u32 n)
{
	if (n < DNS_HEADER_LEN)
		return false;
	__u8 opcode = (p[2] >> 3) & 0xf;
	__u16 qd = ((__u16)p[4] << 8) | p[5];
	__u16 an = ((__u16)p[6] << 8) | p[7];
	return opcode <= 2 && qd == 1 && an < 256 && ((p[3] >> 6) & 1) == 0;
}

/* is_dns_over_tcp: a 2-byte length then a DNS header with one question. */
static __always_inline bool is_dns_over_tcp(const __u8 *p, __u32 n)
{
	if (n < 2 + DNS_HEADER_LEN)
		return false;
	__u16 len = ((__u16)p[0] << 8) | p[1];
	__u8 opcode = (p[4] >> 3) & 0xf;
	__u16 qd = ((__u16)p[6] << 8) | p[7];
	return len >= DNS_HEADER_LEN && opcode <= 2 && qd == 1 && ((p[5] >> 6) & 1) == 0;
}

/* tcp_identity fills the connection's two initial sequence numbers (DESIGN §4), once. */
static __always_inline void tcp_identity(struct sock_state *st, struct sock *sk)
{
	if (st->isn_known)
		return;
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 rcv_nxt = BPF_CORE_READ(tp, rcv_nxt);
	__u32 snd_una = BPF_CORE_READ(tp, snd_una);
	__u64 bytes_received = BPF_CORE_READ(tp, bytes_received);
	__u64 bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	/* The connecting side's bytes_acked counts its SYN. */
	__u32 peer_isn = rcv_nxt - (__u32)bytes_received - 1;
	__u32 own_isn = snd_una - (__u32)bytes_acked - (st->info.role == ROLE_SERVER ? 1 : 0);
	/* Role unknown (a socket user space could not place): reported as if this side were the
	 * client; user space, deciding it served, swaps them and takes one off (capture.Socket). */
	st->client_isn = st->info.role != ROLE_SERVER ? own_isn : peer_isn;
	st->server_isn = st->info.role != ROLE_SERVER ? peer_isn : own_isn;
	st->isn_known = st->info.role != ROLE_UNKNOWN;
}

/* stop ends data for a socket's fd: it leaves the table, so its syscalls cost one lookup (a TCP
 * socket's state says CLASS_STOPPED for its other fds, forked or duplicated). */
static __always_inline int stop(__u32 tgid, int fd)
{
	struct fd_key k = {.tgid = tgid, .fd = fd};
	fd_forget(&k);
	return 0;
}

/* classify decides a TCP socket's class from the first bytes it moves (p: PEEK of them). */
static __always_inline void classify(struct sock_state *st, struct sock *sk, const __u8 *p, __u32 n, __u8 dir)
{
	__u16 sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__u32 mlen = 0;
	__u8 v = 0;
	if (cfg_http && http1_method(p, n, &mlen)) {
		st->cls = CLASS_HTTP1;
		if (st->info.role == ROLE_UNKNOWN)
			st->info.role = dir == DIR_SEND ? ROLE_CLIENT : ROLE_SERVER;
		return;
	}
	if (cfg_http && n < 8 && http1_method_prefix(p, n)) {
		/* "G": a request's start moved alone (a reader taking one byte ahead); the rest
		 * completes it, or hands the connection to user space when it is no request. */
		st->cls = CLASS_HTTP1;
		if (st->info.role == ROLE_UNKNOWN)
			st->info.role = dir == DIR_SEND ? ROLE_CLIENT : ROLE_SERVER;
		return;
	}
	if (cfg_http && http1_status(p, n, &v)) {
		/* Joined mid-connection on a response: the next request starts the cycle. */
		st->cls = CLASS_HTTP1;
		if (st->info.role == ROLE_UNKNOWN)
			st->info.role = dir == DIR_SEND ? ROLE_SERVER : ROLE_CLIENT;
		st->h1 = H1_IN_RESPONSE;
		return;
	}
	if ((cfg_http || cfg_grpc) && is_h2_start(p, n)) {
		st->cls = CLASS_H2;
		if (st->info.role == ROLE_UNKNOWN && n >= 3 && p[0] == 'P' && p[1] == 'R' && p[2] == 'I')
			st->info.role = dir == DIR_SEND ? ROLE_CLIENT : ROLE_SERVER;
		return;
	}
	if (cfg_https && is_tls(p, n)) {
		st->cls = CLASS_FIRST_EXCHANGE; /* ClientHello and ServerHello, then nothing to read */
		return;
	}
	if (cfg_dns && (port_in(cfg_dns_ports, sport, dport) || is_dns_over_tcp(p, n))) {
		st->cls = CLASS_RAW;
		return;
	}
	if ((cfg_http && port_in(cfg_http_ports, sport, dport)) || (cfg_https && port_in(cfg_https_ports, sport, dport))) {
		/* A hinted port whose first bytes we could not place (a keep-alive connection joined
		 * mid-body): user space follows the raw bytes. */
		st->cls = CLASS_RAW;
		count(COUNTER_HTTP1_RAW);
		return;
	}
	st->cls = CLASS_FIRST_EXCHANGE;
	count(COUNTER_UNCLASSIFIED);
}

/* tcp_data handles one read or write of a TCP socket: its bytes are at buf (of kind), or where pre
 * says when the caller located them already. */
/* client_quiet takes the offer of a client's local server to judge for both (enum pair), at the
 * client's first response: that exchange is the client's own, the next ones the server's. The
 * quiet socket's fd is marked, so its data calls stop at the fd lookup. */
static __always_inline void client_quiet(struct sock_state *st, struct sock *sk, __u32 tgid, int fd)
{
	if (st->pair_checked)
		return;
	st->pair_checked = 1;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u8 local[16] = {}, peer[16] = {};
	if (family == AF_INET) {
		bpf_core_read(local, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(peer, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(local, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(peer, 16, &sk->__sk_common.skc_v6_daddr);
	}
	struct local_client_key lk;
	if (!local_client_key_of(&lk, local, peer, BPF_CORE_READ(sk, __sk_common.skc_num), family))
		return;
	struct local_client *c = bpf_map_lookup_elem(&local_clients, &lk);
	if (!c || !c->server_sk)
		return;
	/* This exchange is judged here; the server's socket judges the next ones for both. */
	st->pair = PAIR_QUIET;
	st->pair_peer = c->server_sk;
	struct fd_key fk = {.tgid = tgid, .fd = fd};
	struct fd_entry *fe = bpf_map_lookup_elem(&fds, &fk);
	if (fe)
		fe->quiet = 1;
	fd_hot_drop(tgid, fd);
	count(COUNTER_HTTP1_PAIRED);
}

static __always_inline int tcp_data(struct sock_state *st, __u32 tgid, int fd, __u8 dir, __u8 kind, __u64 buf,
				    __u64 total, __u32 seq, const struct buf_ref *pre)
{
	struct sock *sk = (struct sock *)st->sk;
	if (st->cls == CLASS_STOPPED)
		return stop(tgid, fd);
	if (st->pair == PAIR_QUIET)
		return 0; /* an fd of the socket not marked quiet (a dup) */
	if (st->cls == CLASS_RAW || st->cls == CLASS_H2) {
		/* Sockets whose bytes cross: has user space asked to stop this one? */
		__u64 cookie = st->info.cookie;
		if (bpf_map_lookup_elem(&stop_requests, &cookie)) {
			bpf_map_delete_elem(&stop_requests, &cookie);
			st->cls = CLASS_STOPPED;
			count(COUNTER_STOPPED_BY_USER);
			return stop(tgid, fd);
		}
	}
	/* A send's sequence number (seq is 0 for sends) is read here, except for an HTTP/1 server's
	 * response: only its record uses it, and http1_judge reads it when it sends one. */
	bool seq_unread = dir == DIR_SEND && st->cls == CLASS_HTTP1 && st->info.role == ROLE_SERVER;
	if (dir == DIR_SEND && !seq_unread)
		seq = BPF_CORE_READ((struct tcp_sock *)sk, write_seq);
	__u64 now = bpf_ktime_get_ns();
	if (now - st->last_rtt_ns >= cfg_rtt_interval_ns) {
		/* RTT, sampled here where the socket is in hand (not from tcp:tcp_probe, which runs on
		 * every segment), at most once per socket per cfg_rtt_interval_ns. */
		st->last_rtt_ns = now;
		emit_conn(CONN_RTT, sk, &st->info, NULL, 0);
	}

	__u8 cls = st->cls;
	if (cls == CLASS_HTTP1) {
		/* Bodies cost a state check, nothing more: no bytes are read. */
		__u8 req_dir = st->info.role == ROLE_CLIENT ? DIR_SEND : DIR_RECV;
		if (dir == req_dir) {
			if (st->h1 == H1_WAIT_RESPONSE && (st->req_seq == seq || dir == DIR_RECV))
				return 0; /* the request's body, or a write retried after EAGAIN */
		} else if (st->h1 != H1_WAIT_RESPONSE) {
			return 0; /* the response's body */
		}
	}

	struct buf_ref r;
	if (pre)
		r = *pre;
	else if (!locate(kind, buf, total, 0, &r))
		return 0;
	struct data_meta m;
	tcp_meta(&m, st, dir, total, seq);

	/* A new request's bytes go to the stash in one read (http1_next_request); other HTTP/1 bytes
	 * and a socket's first are peeked at. */
	bool next_request = cls == CLASS_HTTP1 && http1_expects_request(st, dir);
	__u8 p[PEEK] = {};
	__u32 n = r.avail < PEEK ? r.avail : PEEK;
	if (cls == CLASS_UNKNOWN || (cls == CLASS_HTTP1 && !next_request)) {
		if (n == 0)
			return 0;
		if (bpf_probe_read_user(p, n & (PEEK - 1) ? n & (PEEK - 1) : PEEK, (void *)r.src) != 0) {
			count(COUNTER_READ_FAILED);
			return 0;
		}
	}
	if (cls == CLASS_UNKNOWN) {
		classify(st, sk, p, n, dir);
		cls = st->cls;
		next_request = cls == CLASS_HTTP1 && http1_expects_request(st, dir);
	}
	tcp_identity(st, sk);
	m.client_isn = st->client_isn;
	m.server_isn = st->server_isn;
	m.role = st->info.role;
	if (next_request) {
		if (http1_next_request(st, &r, total, seq, settings(), now))
			return 0;
		cls = CLASS_RAW; /* no request: user space gets the bytes */
	}

	switch (cls) {
	case CLASS_HTTP1: {
		struct settings *s = settings();
		__u8 req_dir = st->info.role == ROLE_CLIENT ? DIR_SEND : DIR_RECV;
		__u32 mlen = 0;
		__u8 version = 0;
		if (dir == req_dir) {
			if (st->h1 == H1_REQUEST_START)
				return http1_request_rest(st, &m, &r, total, s);
			/* A request in flight (a new one went to http1_next_request). */
			if (!http1_method(p, n, &mlen))
				return 0; /* more of the request's body */
			/* A second request before the first one's response (pipelining): user space
			 * pairs them in order; it gets the stashed request, then the bytes. */
			st->cls = CLASS_RAW;
			count(COUNTER_HTTP1_RAW);
			if (st->pair == PAIR_PENDING && server_paired(st, false))
				m.flags |= DATA_PAIRED;
			emit_stash(&m);
			return emit_raw(&m, &r);
		}
		__u16 status = 0;
		if (st->resp_start_len > 0)
			status = http1_status_rest(st, p, n, &version);
		else
			status = http1_status(p, n, &version);
		if (!status) {
			if (n < 12 && http1_status_prefix(p, n)) {
				/* "HTTP/1.1 2": a status line cut short; the next read completes it. */
				http1_status_start(st, p, n);
				return 0;
			}
			count(COUNTER_HTTP1_UNMATCHED);
			return 0;
		}
		if (status < 200 && status != 101)
			return 0; /* 100 Continue, 103 Early Hints: the final response follows */
		st->io_tgid = tgid;
		http1_judge(st, r.src, r.avail,
			    status | ((__u64)version << 16) | (seq_unread ? JUDGE_SEQ_UNREAD : 0) | ((__u64)seq << 32), now);
		if (st->info.role == ROLE_CLIENT && status != 101)
			client_quiet(st, sk, tgid, fd);
		if (status == 101) {
			/* Switching protocols (WebSocket, h2c): no more HTTP/1 on this connection. */
			st->cls = CLASS_STOPPED;
			return stop(tgid, fd);
		}
		return 0;
	}
	case CLASS_H2:
		return h2_walk(st, r.src, r.avail, ((__u64)total << 32) | seq, dir == DIR_SEND ? 0 : 1);
	case CLASS_RAW:
		if (st->pair == PAIR_PENDING && server_paired(st, false))
			m.flags |= DATA_PAIRED;
		return emit_raw(&m, &r);
	case CLASS_FIRST_EXCHANGE: {
		__u8 bit = dir == DIR_SEND ? 1 : 2;
		if (st->dirs_seen & bit) {
			st->cls = CLASS_STOPPED;
			return stop(tgid, fd);
		}
		st->dirs_seen |= bit;
		return emit_raw(&m, &r);
	}
	}
	return 0;
}

/* udp_data handles one datagram of a UDP socket: DNS is sent; other UDP stops before any copy
 * (a socket off the DNS ports whose first datagram is no DNS leaves the fd table). */
__noinline int udp_datagram(struct fd_entry *fe, __u64 buf, __u64 total, __u64 addr, __u64 fd_dir_kind)
{
	/* A global function, so its locals do not add to every program's main stack (6.1 counts the
	 * main stack plus a called function's against 512 bytes). */
	if (!fe)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	int fd = (int)(__u32)fd_dir_kind;
	__u8 dir = (fd_dir_kind >> 32) & 0xff;
	__u8 kind = (fd_dir_kind >> 40) & 0xff;
	if (!cfg_dns)
		return stop(tgid, fd);
	struct sock *sk = (struct sock *)fe->sk;
	struct buf_ref r;
	if (!locate(kind, buf, total, addr, &r))
		return 0;
	__u16 sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (dport == 0 && r.uaddr) {
		struct sockaddr_in sa = {};
		if (bpf_probe_read_user(&sa, sizeof(sa), (void *)r.uaddr) == 0)
			dport = bpf_ntohs(sa.sin_port); /* sin6_port sits at the same offset */
	}
	if (!port_in(cfg_dns_ports, sport, dport) && fe->cls != CLASS_RAW) {
		/* Off the DNS ports: the socket's first datagram decides, once — DNS-shaped keeps it
		 * (a resolver on another port), anything else stops it before any further copy. */
		__u8 p[DNS_HEADER_LEN] = {};
		if (fe->cls != CLASS_UNKNOWN || r.avail < DNS_HEADER_LEN ||
		    bpf_probe_read_user(p, sizeof(p), (void *)r.src) != 0 || !is_dns(p, sizeof(p)))
			return stop(tgid, fd);
		fe->cls = CLASS_RAW;
	}
	struct data_meta m = {.sk = sk, .dir = dir, .size = total, .transport = TRANSPORT_UDP};
	return emit_raw(&m, &r);
}

static __always_inline int udp_data(struct fd_entry *fe, __u32 tgid, int fd, __u8 dir, __u8 kind, __u64 buf,
				    __u64 total, __u64 addr)
{
	return udp_datagram(fe, buf, total, addr, (__u32)fd | ((__u64)dir << 32) | ((__u64)kind << 40));
}

/* lookup_fd returns the tracked socket behind fd of the current process, NULL for any other fd
 * (and for a quiet one, which it enters in fd_cache as such). */
static __always_inline struct fd_entry *lookup_fd(__u32 tgid, int fd)
{
	if (excluded_tgid(tgid))
		return NULL;
	struct fd_key k = {.tgid = tgid, .fd = fd};
	struct fd_entry *fe = bpf_map_lookup_elem(&fds, &k);
	if (!fe)
		return NULL;
	if (fe->quiet) {
		fd_hot_fill(tgid, fd, fe->sk, 0, 1);
		return NULL;
	}
	if (!resolve(fe, tgid, fd))
		return NULL;
	return fe;
}

/* socket_of finds the socket behind fd of process tgid: a TCP socket's state, from fd_cache when
 * it holds the fd (no hash lookup), else through fds (then cached). NULL for a UDP socket, whose
 * fd entry is then in *udp, and for any fd not followed (a quiet one too). */
static __always_inline struct sock_state *socket_of(__u32 tgid, int fd, struct fd_entry **udp)
{
	__u64 key = fd_hot_key(tgid, fd);
	struct fd_hot *h = fd_hot_slot(key);
	if (h && h->key == key) {
		/* Copied once, checked, then used: a slot filled meanwhile fails the check. */
		__u64 sk = h->sk;
		__u32 slot1 = h->slot1, quiet = h->quiet;
		if (h->check == fd_hot_check(key, sk, slot1, quiet)) {
			if (quiet)
				return NULL;
			struct sock_state *st = slot_state(slot1, sk);
			if (st)
				return st;
			/* Its socket's state is gone (closed, its slot reused): fds decides. */
		}
	}
	struct fd_entry *fe = lookup_fd(tgid, fd);
	if (!fe)
		return NULL;
	if (fe->transport != TRANSPORT_TCP) {
		*udp = fe;
		return NULL;
	}
	struct sock_state *st = tcp_state(fe);
	if (st)
		fd_hot_fill(tgid, fd, fe->sk, st->slot1, 0);
	return st;
}

/* copied_seq: the sequence number of a TCP socket's next byte read (a send's is read in
 * tcp_data). */
static __always_inline __u32 copied_seq(__u64 sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	return BPF_CORE_READ(tp, copied_seq);
}

/* write-type syscalls: the bytes are judged at sys_enter. size is what the caller asks to send
 * (a short write sends the rest again later, which the sequence number tells apart). */
static __always_inline int enter_send(int fd, __u64 buf, __u64 size, __u64 addr, __u8 kind)
{
	if (size == 0)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fd_entry *udp = NULL;
	struct sock_state *st = socket_of(tgid, fd, &udp);
	if (st)
		return tcp_data(st, tgid, fd, DIR_SEND, kind, buf, size, 0, NULL);
	if (udp)
		return udp_data(udp, tgid, fd, DIR_SEND, kind, buf, size, addr);
	return 0;
}

/* Messages of one sendmmsg/recvmmsg call reported, from the first; further ones are counted. */
#define MAX_MMSG 4

#define NI_MSG_PEEK 2

/* read-type syscalls are followed at sys_exit alone, where the bytes are: no program runs at
 * their sys_enter. The arguments are read back from the task's syscall registers (syscalls.h),
 * which the call leaves as they entered; st is the fd's TCP state, or fe its UDP entry (socket_of). */
static __always_inline int exit_recv(struct sock_state *st, struct fd_entry *fe, __u32 tgid, int fd, __u64 buf,
				     long ret, __u64 flags, __u64 addr, __u8 kind)
{
	if (flags & NI_MSG_PEEK)
		return 0; /* a peek: the same bytes are read again, and followed then */
	if (st) {
		if (kind == BUF_MMSG) {
			count_n(COUNTER_MMSG_TRUNCATED, ret); /* TCP byte streams are not followed through mmsg */
			return 0;
		}
		/* The sequence number of the first byte read: the socket's next byte to read, less
		 * what this call read. */
		__u32 seq = copied_seq(st->sk) - (__u32)ret;
		/* One call site: tcp_data is inlined once per program. */
		return tcp_data(st, tgid, fd, DIR_RECV, kind, buf, (__u64)ret, seq, NULL);
	}
	if (!fe)
		return 0;
	if (kind != BUF_MMSG)
		return udp_data(fe, tgid, fd, DIR_RECV, kind, buf, (__u64)ret, addr);
	/* recvmmsg: datagrams (DNS resolvers batch their queries); ret counts messages, each
	 * message's msg_len says what it moved. */
	for (int i = 0; i < MAX_MMSG; i++) {
		if (i >= ret)
			break;
		struct mmsghdr mm = {};
		__u64 at = buf + (__u64)i * sizeof(mm);
		if (bpf_probe_read_user(&mm, sizeof(mm), (void *)at) != 0) {
			count(COUNTER_READ_FAILED);
			break;
		}
		if (mm.msg_len > 0)
			udp_data(fe, tgid, fd, DIR_RECV, BUF_MMSG, at, mm.msg_len, 0);
	}
	if (ret > MAX_MMSG)
		count_n(COUNTER_MMSG_TRUNCATED, ret - MAX_MMSG);
	return 0;
}

/* sendmmsg at sys_enter: each message's size is the sum of its iovecs; the first one is used. */
static __always_inline int enter_sendmmsg(int fd, __u64 vec, __u64 vlen)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fd_entry *fe = lookup_fd(tgid, fd);
	if (!fe || vlen == 0)
		return 0;
	/* sendmmsg: datagrams (glibc sends a name's A and AAAA queries in one call). */
	if (fe->transport != TRANSPORT_UDP) {
		count_n(COUNTER_MMSG_TRUNCATED, vlen); /* TCP byte streams are not followed through mmsg */
		return 0;
	}
	for (int i = 0; i < MAX_MMSG; i++) {
		if (i >= vlen)
			break;
		struct mmsghdr mm = {};
		__u64 at = vec + (__u64)i * sizeof(mm);
		if (bpf_probe_read_user(&mm, sizeof(mm), (void *)at) != 0) {
			count(COUNTER_READ_FAILED);
			break;
		}
		struct iovec iov = {};
		if (bpf_probe_read_user(&iov, sizeof(iov), mm.msg_hdr.msg_iov) != 0) {
			count(COUNTER_READ_FAILED);
			break;
		}
		if (iov.iov_len > 0)
			udp_data(fe, tgid, fd, DIR_SEND, BUF_MMSG, at, iov.iov_len, 0);
	}
	if (vlen > MAX_MMSG)
		count_n(COUNTER_MMSG_TRUNCATED, vlen - MAX_MMSG);
	return 0;
}

/* iovec_total sums the lengths of the first iovecs of a vectored write (what it asks to send),
 * from the from-th. */
static __always_inline __u64 iovec_total(__u64 iovp, __u64 iovcnt, int from)
{
	__u64 total = 0;
	for (int i = from; i < 8; i++) {
		if (i >= iovcnt)
			break;
		struct iovec iov = {};
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(iovp + (__u64)i * sizeof(iov))) != 0)
			break;
		total += iov.iov_len;
	}
	return total;
}

/* enter_sendv: a vectored send, writev (buf: its iovecs, n of them) or sendmsg (buf: its msghdr).
 * The fd is looked up first; a TCP socket's first two iovecs are read in one call (headers and
 * body: most vectored writes have two), which both locates the bytes and sums what is sent.
 * UDP datagrams go the general way. */
static __always_inline int enter_sendv(int fd, __u64 buf, __u64 n, __u8 kind)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fd_entry *udp = NULL;
	struct sock_state *st = socket_of(tgid, fd, &udp);
	if (!st) {
		no_merge(); /* two pointers' tests are not merged into an OR, which the verifier refuses */
		if (!udp)
			return 0;
	}
	__u64 iovp = buf, iovcnt = n, uaddr = 0;
	if (kind == BUF_MSG) {
		struct user_msghdr msg = {};
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)buf) != 0) {
			count(COUNTER_READ_FAILED);
			return 0;
		}
		iovp = (__u64)msg.msg_iov;
		iovcnt = msg.msg_iovlen;
		uaddr = (__u64)msg.msg_name;
	}
	if (iovcnt == 0)
		return 0;
	if (!st) {
		__u64 total = iovec_total(iovp, iovcnt, 0);
		if (total == 0)
			return 0;
		return udp_data(udp, tgid, fd, DIR_SEND, kind, buf, total, uaddr);
	}
	struct iovec iov[2] = {};
	if (bpf_probe_read_user(iov, iovcnt >= 2 ? sizeof(iov) : sizeof(iov[0]), (void *)iovp) != 0) {
		count(COUNTER_READ_FAILED);
		return 0;
	}
	__u64 total = iov[0].iov_len;
	if (iovcnt >= 2)
		total += iov[1].iov_len;
	if (iovcnt > 2)
		total += iovec_total(iovp, iovcnt, 2);
	if (total == 0)
		return 0;
	struct buf_ref r = {.src = (__u64)iov[0].iov_base, .avail = iov[0].iov_len, .uaddr = uaddr};
	return tcp_data(st, tgid, fd, DIR_SEND, kind, buf, total, 0, &r);
}

static __always_inline int on_enter_close(const __u64 *args)
{
	/* The socket's state lives on while another fd (a fork, a dup) holds it; a request still
	 * waiting is sent as unanswered when the connection closes (ni_set_state). */
	struct fd_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .fd = (int)args[0]};
	fd_forget(&key);
	return 0;
}

static __always_inline int on_enter_write(const __u64 *args)
{
	return enter_send((int)args[0], args[1], args[2], 0, BUF_PLAIN);
}

static __always_inline int on_enter_sendto(const __u64 *args)
{
	return enter_send((int)args[0], args[1], args[2], args[4], BUF_PLAIN);
}

static __always_inline int on_enter_writev(const __u64 *args)
{
	return enter_sendv((int)args[0], args[1], args[2], BUF_IOV);
}

static __always_inline int on_enter_sendmsg(const __u64 *args)
{
	return enter_sendv((int)args[0], args[1], 0, BUF_MSG);
}

static __always_inline int on_enter_sendmmsg(const __u64 *args)
{
	return enter_sendmmsg((int)args[0], args[1], args[2]);
}

#endif
