/* Records reserved in the ring buffer and filled in place: one copy from user memory, sized by
 * class so a DNS query does not take a 4 KiB slot. */
#ifndef NETINTEL_RECORDS_H
#define NETINTEL_RECORDS_H

#include "common.h"

/* The bytes of one syscall: where they start in user memory, how many there are there (the first
 * iovec for vectored calls), and the peer's sockaddr when the caller gave one. */
struct buf_ref {
	__u64 src;
	__u64 avail;
	__u64 uaddr;
};

/* locate finds the bytes of a syscall of kind at buf; total is what the call moved. */
static __always_inline bool locate(__u8 kind, __u64 buf, __u64 total, __u64 addr, struct buf_ref *r)
{
	r->src = buf;
	r->avail = total;
	r->uaddr = addr;
	__u64 iovp = buf;
	if (kind == BUF_MSG || kind == BUF_MMSG) {
		/* msg_hdr leads struct mmsghdr. */
		struct user_msghdr msg = {};
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)buf) != 0) {
			count(COUNTER_READ_FAILED);
			return false;
		}
		iovp = (__u64)msg.msg_iov;
		r->uaddr = (__u64)msg.msg_name;
	}
	if (kind != BUF_PLAIN) {
		struct iovec iov = {};
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)iovp) != 0) {
			count(COUNTER_READ_FAILED);
			return false;
		}
		r->src = (__u64)iov.iov_base;
		if (iov.iov_len < r->avail)
			r->avail = iov.iov_len;
	}
	return true;
}

/* The identity of a data record: which socket, which process, which bytes. st is the TCP
 * socket's state (NULL for UDP). */
struct data_meta {
	struct sock_state *st;
	struct sock *sk;
	__u64 cookie;
	__u32 size; /* bytes the call moved (or was asked to move) */
	__u32 seq;
	__u32 client_isn;
	__u32 server_isn;
	__u8 dir;
	__u8 flags;
	__u8 role;
	__u8 transport;
};

/* tcp_meta describes a call on a TCP socket. */
static __always_inline void tcp_meta(struct data_meta *m, struct sock_state *st, __u8 dir, __u32 size, __u32 seq)
{
	m->st = st;
	m->sk = (struct sock *)st->sk;
	m->cookie = st->info.cookie;
	m->size = size;
	m->seq = seq;
	m->client_isn = st->client_isn;
	m->server_isn = st->server_isn;
	m->dir = dir;
	m->flags = st->pair == PAIR_SERVER ? DATA_PAIRED : 0;
	m->role = st->info.role;
	m->transport = TRANSPORT_TCP;
}

static __always_inline void fill_data_header(struct data_header *h, const struct data_meta *m, __u64 n,
					     const struct buf_ref *r)
{
	h->type = EVENT_DATA;
	h->dir = m->dir;
	h->flags = m->flags;
	h->pad = 0;
	h->size = m->size;
	h->ts_ns = bpf_ktime_get_ns();
	h->cookie = m->cookie;
	current_task_id(&h->task);
	fill_tuple(m->sk, &h->tuple);
	h->tuple.transport = m->transport;
	h->tuple.role = m->role;
	if (m->transport == TRANSPORT_UDP && r && h->tuple.dport == 0)
		remote_from_user(&h->tuple, r->uaddr);
	h->seq = m->seq;
	h->client_isn = m->client_isn;
	h->server_isn = m->server_isn;
	h->payload_len = n;
	if (m->size > n)
		h->flags |= DATA_TRUNCATED;
}

/* One size class of raw data records: reserve, read the payload from user memory into it,
 * submit. Inlined per class, so CAP is a constant the verifier knows. */
#define EMIT_RAW_CLASS(CAP)                                                                        \
	static __always_inline int emit_raw_##CAP(const struct data_meta *m, const struct buf_ref *r, __u64 n) \
	{                                                                                          \
		struct {                                                                           \
			struct data_header h;                                                      \
			__u8 payload[CAP];                                                         \
		} *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);                                \
		if (!e) {                                                                          \
			count(COUNTER_RINGBUF_FULL);                                               \
			return 0;                                                                  \
		}                                                                                  \
		clamp_len(n, CAP); /* callers chose the class for n: it holds it */                 \
		if (bpf_probe_read_user(e->payload, n, (void *)r->src) != 0) {                     \
			count(COUNTER_READ_FAILED);                                                \
			bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);                                  \
			return 0;                                                                  \
		}                                                                                  \
		fill_data_header(&e->h, m, n, r);                                                  \
		if (e->h.flags & DATA_TRUNCATED)                                                   \
			count(COUNTER_PAYLOAD_TRUNCATED);                                          \
		count_ringbuf(sizeof(*e));                                                         \
		bpf_ringbuf_submit(e, wakeup_flags());                                             \
		return 0;                                                                          \
	}

EMIT_RAW_CLASS(128)
EMIT_RAW_CLASS(512)
EMIT_RAW_CLASS(4096)

/* emit_stash sends an HTTP/1 socket's stashed request as the raw data record it came in, when the
 * socket is handed to user space with that request still unanswered. */
static __always_inline int emit_stash(const struct data_meta *m)
{
	struct {
		struct data_header h;
		__u8 payload[HTTP1_STASH];
	} *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_RINGBUF_FULL);
		return 0;
	}
	__u64 n = m->st->stash_len;
	clamp_len(n, HTTP1_STASH);
	if (bpf_probe_read_kernel(e->payload, n, m->st->stash) != 0)
		n = 0;
	struct data_meta sm = *m;
	sm.size = m->st->req_size;
	sm.seq = m->st->req_seq;
	fill_data_header(&e->h, &sm, n, NULL);
	e->h.ts_ns = m->st->req_ns;
	count_ringbuf(sizeof(*e));
	bpf_ringbuf_submit(e, wakeup_flags());
	return 0;
}

/* emit_raw sends the first bytes of one syscall (up to cfg_max_payload) as a data record. */
static __always_inline int emit_raw(const struct data_meta *m, const struct buf_ref *r)
{
	__u64 n = r->avail;
	if (n > cfg_max_payload)
		n = cfg_max_payload;
	if (n == 0)
		return 0;
	if (n <= 128)
		return emit_raw_128(m, r, n);
	if (n <= 512)
		return emit_raw_512(m, r, n);
	return emit_raw_4096(m, r, n);
}

#endif
