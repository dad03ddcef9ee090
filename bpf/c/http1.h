/* HTTP/1 judged in the kernel (DESIGN §2): the request line is parsed and stashed, the status
 * line parsed, and a healthy exchange only updates its aggregate (count, latency histograms).
 * An exchange crosses to user space when its aggregate key is new, it failed, it was slow for
 * its route, the consistent sampler keeps it, or its aggregate cannot be made. */
#ifndef NETINTEL_HTTP1_H
#define NETINTEL_HTTP1_H

#include "common.h"
#include "records.h"

/* --- parsing ------------------------------------------------------------------------------- */

/* http1_method returns the method a request starts with (and the length of its token), 0 for
 * bytes that are not a request line. */
static __always_inline __u8 http1_method(const __u8 *p, __u32 n, __u32 *len)
{
	if (n < 5)
		return 0;
	__u8 m = 0;
	__u32 l = 0;
	switch (p[0]) {
	case 'G':
		if (p[1] == 'E' && p[2] == 'T' && p[3] == ' ')
			m = METHOD_GET, l = 3;
		break;
	case 'P':
		if (p[1] == 'O' && p[2] == 'S' && p[3] == 'T' && p[4] == ' ')
			m = METHOD_POST, l = 4;
		else if (p[1] == 'U' && p[2] == 'T' && p[3] == ' ')
			m = METHOD_PUT, l = 3;
		else if (n >= 6 && p[1] == 'A' && p[2] == 'T' && p[3] == 'C' && p[4] == 'H' && p[5] == ' ')
			m = METHOD_PATCH, l = 5;
		break;
	case 'H':
		if (p[1] == 'E' && p[2] == 'A' && p[3] == 'D' && p[4] == ' ')
			m = METHOD_HEAD, l = 4;
		break;
	case 'D':
		if (n >= 7 && p[1] == 'E' && p[2] == 'L' && p[3] == 'E' && p[4] == 'T' && p[5] == 'E' && p[6] == ' ')
			m = METHOD_DELETE, l = 6;
		break;
	case 'O':
		if (n >= 8 && p[1] == 'P' && p[2] == 'T' && p[3] == 'I' && p[4] == 'O' && p[5] == 'N' && p[6] == 'S' &&
		    p[7] == ' ')
			m = METHOD_OPTIONS, l = 7;
		break;
	case 'C':
		if (n >= 8 && p[1] == 'O' && p[2] == 'N' && p[3] == 'N' && p[4] == 'E' && p[5] == 'C' && p[6] == 'T' &&
		    p[7] == ' ')
			m = METHOD_CONNECT, l = 7;
		break;
	case 'T':
		if (n >= 6 && p[1] == 'R' && p[2] == 'A' && p[3] == 'C' && p[4] == 'E' && p[5] == ' ')
			m = METHOD_TRACE, l = 5;
		break;
	}
	*len = l;
	return m;
}

/* http1_status returns the status of a status line ("HTTP/1.x NNN"), 0 for other bytes. */
static __always_inline __u16 http1_status(const __u8 *p, __u32 n, __u8 *version)
{
	if (n < 12 || p[0] != 'H' || p[1] != 'T' || p[2] != 'T' || p[3] != 'P' || p[4] != '/' || p[5] != '1' ||
	    p[6] != '.' || p[8] != ' ')
		return 0;
	__u8 a = p[9] - '0', b = p[10] - '0', c = p[11] - '0';
	if (a > 9 || b > 9 || c > 9 || a == 0)
		return 0;
	*version = p[7] == '0' ? 0 : 1;
	return a * 100 + b * 10 + c;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static __always_inline __u64 fnv(__u64 h, __u8 c)
{
	return (h ^ c) * FNV_PRIME;
}

/* The placeholder an identifier segment becomes; l7 and the route package template alike. */
static __always_inline __u64 fnv_placeholder(__u64 h)
{
	h = fnv(h, '{');
	h = fnv(h, 'i');
	h = fnv(h, 'd');
	return fnv(h, '}');
}

/* What a path segment is made of, for the identifier rule (internal/route's static rule: a
 * segment with a digit that is all digits and id punctuation, a hex hash of 8+, a UUID, or an
 * opaque token of 20+). Kept a subset of user space's rule, so one kernel route never spans two
 * user-space routes. */
struct segment {
	__u32 len;
	__u32 digits;
	__u32 hex;
	__u32 letters;
	__u32 other;
	__u8 invalid;
	__u8 uuid;
};

static __always_inline void segment_reset(struct segment *s)
{
	s->len = 0;
	s->digits = 0;
	s->hex = 0;
	s->letters = 0;
	s->other = 0;
	s->invalid = 0;
	s->uuid = 1;
}

static __always_inline void segment_add(struct segment *s, __u8 c)
{
	bool is_hex = false;
	if (c >= '0' && c <= '9') {
		s->digits++;
		is_hex = true;
	} else if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
		s->hex++;
		is_hex = true;
	} else if ((c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z')) {
		s->letters++;
	} else if (c == '-' || c == '_' || c == '.' || c == ':' || c == '=' || c == '~' || c == '+' || c == '%') {
		s->other++;
	} else {
		s->invalid = 1;
	}
	__u32 pos = s->len;
	if (pos == 8 || pos == 13 || pos == 18 || pos == 23) {
		if (c != '-')
			s->uuid = 0;
	} else if (!is_hex) {
		s->uuid = 0;
	}
	s->len++;
}

static __always_inline bool segment_is_identifier(const struct segment *s)
{
	if (s->len == 0 || s->invalid || s->digits == 0)
		return false;
	if (s->letters == 0 && s->hex == 0)
		return true;
	if (s->letters == 0 && s->other == 0 && s->len >= 8)
		return true;
	if (s->len == 36 && s->uuid)
		return true;
	return s->len >= 20;
}

/* A learned rule: under this templated prefix (and server port), the next segment is an id. */
static __always_inline bool rule_says_identifier(__u16 port, __u64 prefix)
{
	struct rule_key k = {.port = port, .prefix = prefix};
	return bpf_map_lookup_elem(&route_rules, &k) != NULL;
}

#define MAX_SEGMENT_RULES 8

/* The state of a route-key walk. It lives in a per-CPU map, not on the stack: values loaded from a
 * map are unknown to the verifier, so it checks one step of the walk, not one per byte. */
struct route_walk {
	__u64 h; /* FNV-1a of the template so far */
	__u64 before; /* ... up to the current segment's start */
	struct segment seg;
	__u64 i;
	__u64 n;
	__u32 lookups;
	__u16 port;
	__u8 rules;
	__u8 in_path;
	__u8 cut;
	__u8 pad[7];
	__u64 rule_filter[4]; /* settings.rule_filter */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct route_walk);
} route_scratch SEC(".maps");

struct route_ctx {
	struct route_walk *w;
	struct sock_state *st;
};

/* end_segment finishes the segment walked so far: an identifier becomes the placeholder. */
static __always_inline void end_segment(struct route_walk *w)
{
	if (!w->in_path)
		return;
	bool id = segment_is_identifier(&w->seg);
	__u32 bit = (w->before ^ w->port) & 255;
	if (!id && w->rules && w->seg.len > 0 && w->lookups < MAX_SEGMENT_RULES &&
	    (w->rule_filter[(bit >> 6) & 3] >> (bit & 63)) & 1) {
		w->lookups++;
		id = rule_says_identifier(w->port, w->before);
	}
	if (id)
		w->h = fnv_placeholder(w->before);
}

/* Bytes of the target one bpf_loop step walks: a callback per byte cost more than the walk. */
#define ROUTE_CHUNK 8

static long route_step(__u32 index, void *ctx)
{
	struct route_ctx *rc = ctx;
	struct route_walk *w = rc->w;
	struct sock_state *st = rc->st;
	for (int k = 0; k < ROUTE_CHUNK; k++) {
		__u64 i = w->i;
		if (i >= w->n || i >= HTTP1_STASH)
			return 1;
		asm volatile("%[v] &= 0xff" : [v] "+r"(i)); /* HTTP1_STASH - 1, kept through the unrolling */
		__u8 c = st->stash[i];
		if (c == ' ' || c == '?' || c == '#' || c == '\r' || c == '\n') {
			w->cut = 0;
			return 1;
		}
		if (c == '/') {
			end_segment(w);
			w->h = fnv(w->h, '/');
			w->before = w->h;
			segment_reset(&w->seg);
			w->in_path = 1;
		} else {
			w->h = fnv(w->h, c);
			segment_add(&w->seg, c);
		}
		w->i = i + 1;
	}
	return 0;
}

/* route_key hashes the templated path of the request target in st->stash[start, n): FNV-1a-64 of
 * the template ("/items/{id}"), query string and fragment left out. Go computes the same key from
 * a template (capture.RouteKey). st->target_cut says whether the stash ended inside the target. */
static __always_inline __u64 route_key(struct sock_state *st, __u32 start, __u32 n, __u16 port,
				       const struct settings *s)
{
	bool rules = s && s->have_rules;
	__u32 zero = 0;
	struct route_walk *w = bpf_map_lookup_elem(&route_scratch, &zero);
	if (!w)
		return 0;
	w->h = FNV_OFFSET;
	w->before = FNV_OFFSET;
	segment_reset(&w->seg);
	w->i = start;
	w->n = n;
	w->lookups = 0;
	w->port = port;
	w->rules = rules;
	if (rules)
		__builtin_memcpy(w->rule_filter, s->rule_filter, sizeof(w->rule_filter));
	w->in_path = 0;
	w->cut = 1;
	struct route_ctx rc = {.w = w, .st = st};
	bpf_loop(HTTP1_STASH / ROUTE_CHUNK, route_step, &rc, 0);
	end_segment(w);
	if (w->h == FNV_OFFSET)
		w->h = fnv(w->h, '/'); /* an empty target is the root */
	st->target_cut = w->cut;
	return w->h;
}

/* --- latency buckets ----------------------------------------------------------------------- */

/* 2^63 times 2^(1/4), 2^(1/2), 2^(3/4): the quarter-octave thresholds of a mantissa. */
#define Q1 0x9837F0518DB8A96FULL
#define Q2 0xB504F333F9DE6484ULL
#define Q3 0xD744FCCAD69D6AF4ULL

static __always_inline __u32 msb64(__u64 v)
{
	__u32 r = 0;
	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

/* latency_bucket: 0 below 1 µs; bucket i >= 1 covers [2^((i-1)/4), 2^(i/4)) µs. */
static __always_inline __u32 latency_bucket(__u64 ns)
{
	__u64 us = ns / 1000;
	if (us == 0)
		return 0;
	__u32 e = msb64(us);
	__u64 m = us << (63 - e);
	__u32 q = (m >= Q1) + (m >= Q2) + (m >= Q3);
	__u32 b = e * 4 + q + 1;
	return b < LATENCY_BUCKETS ? b : LATENCY_BUCKETS - 1;
}

/* explicit_bucket: the index of the first bound >= ns (bounds ascending, 0 ends them). It stops
 * there, so an exchange faster than the first bound reads one bound, not all of them. */
static __always_inline __u32 explicit_bucket(const struct settings *s, __u64 ns)
{
	__u32 b = 0;
#pragma unroll
	for (int i = 0; i < MAX_BOUNDS; i++) {
		__u64 bound = s->bounds_ns[i];
		if (bound == 0 || ns <= bound)
			break;
		b = i + 1;
	}
	return b;
}

/* --- the exchange record ------------------------------------------------------------------- */

/* One size class of exchange records: the request's stash (CAP bytes at most) and the response's
 * first bytes (RCAP). */
#define EMIT_EXCHANGE_CLASS(CAP, RCAP)                                                            \
	static __always_inline int emit_exchange_##CAP##_##RCAP(struct sock_state *st, struct sock *sk, __u64 rsrc, \
						      __u64 rlen, __u16 status, __u8 reasons, __u32 resp_seq, \
						      __u64 now, const struct sock_tuple *tuple)    \
	{                                                                                         \
		struct {                                                                          \
			struct http1_header h;                                                    \
			__u8 req[CAP];                                                            \
			__u8 resp[RCAP];                                                           \
		} *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);                               \
		if (!e) {                                                                         \
			count(COUNTER_RINGBUF_FULL);                                              \
			return -1;                                                                \
		}                                                                                 \
		/* Clamped, then read even when 0 (the helpers take a zero size). */               \
		__u64 qlen = st->stash_len;                                                       \
		clamp_len(qlen, CAP);                                                             \
		if (bpf_probe_read_kernel(e->req, qlen, st->stash) != 0)                          \
			qlen = 0;                                                                 \
		clamp_len(rlen, RCAP);                                                             \
		if (bpf_probe_read_user(e->resp, rlen, (void *)rsrc) != 0) {                      \
			count(COUNTER_READ_FAILED);                                               \
			rlen = 0;                                                                 \
		}                                                                                 \
		struct http1_header *h = &e->h;                                                   \
		h->type = EVENT_HTTP1;                                                            \
		h->reasons = reasons | (st->req_partial ? HTTP1_PARTIAL : 0);                     \
		h->method = st->method;                                                           \
		h->paired = st->pair == PAIR_SERVER;                                              \
		h->status = status;                                                               \
		h->req_len = qlen;                                                                \
		h->resp_len = rlen;                                                               \
		h->slot = CAP;                                                                    \
		h->resp_slot = RCAP;                                                              \
		h->req_size = st->req_size;                                                       \
		h->req_ns = st->req_ns;                                                           \
		h->resp_ns = now;                                                                 \
		h->cookie = st->info.cookie;                                                      \
		h->route = st->route;                                                             \
		if (tuple)                                                                        \
			h->task = st->info.owner; /* at the connection's close, in softirq */      \
		else                                                                              \
			current_task_id(&h->task); /* the process doing the I/O (a forked child) */ \
		if (tuple)                                                                        \
			h->tuple = *tuple;                                                        \
		else                                                                              \
			fill_tuple(sk, &h->tuple);                                                \
		h->tuple.transport = TRANSPORT_TCP;                                               \
		h->tuple.role = st->info.role;                                                    \
		h->req_seq = st->req_seq;                                                         \
		h->resp_seq = resp_seq;                                                           \
		h->client_isn = st->client_isn;                                                   \
		h->server_isn = st->server_isn;                                                   \
		h->sk_err = 0;                                                                    \
		h->tcp_state = 0;                                                                 \
		h->pad3 = 0;                                                                      \
		if (reasons & HTTP1_UNANSWERED) {                                                 \
			h->sk_err = BPF_CORE_READ(sk, sk_err);                                    \
			h->tcp_state = st->info.first_fin == FIN_PEER ? TCP_CLOSE_WAIT : TCP_CLOSE; \
		}                                                                                 \
		count_ringbuf(sizeof(*e));                                                        \
		count(COUNTER_HTTP1_SENT);                                                        \
		bpf_ringbuf_submit(e, wakeup_flags());                                            \
		return 0;                                                                         \
	}

EMIT_EXCHANGE_CLASS(128, 128)
EMIT_EXCHANGE_CLASS(128, 256) /* a short request, a server's full headers (nginx's are 150-200 bytes) */
EMIT_EXCHANGE_CLASS(256, 256)

static __always_inline int emit_exchange(struct sock_state *st, struct sock *sk, __u64 rsrc, __u32 ravail,
					 __u16 status, __u8 reasons, __u32 resp_seq, __u64 now,
					 const struct sock_tuple *tuple)
{
	__u64 rlen = ravail < HTTP1_RESPONSE ? ravail : HTTP1_RESPONSE;
	if (rlen > cfg_max_payload)
		rlen = cfg_max_payload;
	if (st->stash_len <= 128 && rlen <= 128)
		return emit_exchange_128_128(st, sk, rsrc, rlen, status, reasons, resp_seq, now, tuple);
	if (st->stash_len <= 128)
		return emit_exchange_128_256(st, sk, rsrc, rlen, status, reasons, resp_seq, now, tuple);
	return emit_exchange_256_256(st, sk, rsrc, rlen, status, reasons, resp_seq, now, tuple);
}

/* --- judging ------------------------------------------------------------------------------- */

/* Errors of the last recovery_ns, by owner, peer and route (an aggregate key without status,
 * version and pairing): the healthy exchanges that follow them are sent, so that a retried call's success
 * reaches user space with its failures. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct agg_key);
	__type(value, __u64); /* the last error */
} recent_errors SEC(".maps");

/* Errors waiting in recent_errors, by a slot of their key (a hash of owner, ports, peer process
 * and route): a healthy exchange looks recent_errors up only while its slot holds an entry no
 * success has taken yet and had an error within recovery_ns. Under steady errors on a busy route,
 * only the success after each error looks. A new entry raises its slot's count, the success that
 * takes it lowers it; an entry the LRU evicts, or that no success takes, leaves the count high,
 * which costs lookups until the slot's last error is older than recovery_ns, never a record. */
struct error_slot {
	__u64 at;      /* the slot's last error */
	__s64 pending; /* its entries in recent_errors not taken by a success */
};

#define ERROR_SLOTS 256

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ERROR_SLOTS);
	__type(key, __u32);
	__type(value, struct error_slot);
} error_slots SEC(".maps");

/* error_slot_of is the slot of an error key (error_seen and recovering key alike: status,
 * version and pairing are not in it). */
static __always_inline struct error_slot *error_slot_of(const struct agg_key *k)
{
	__u64 h = k->route ^ ((__u64)k->tgid << 32) ^ k->peer_tgid ^ ((__u64)k->port << 16) ^ k->peer_port;
	__u32 i = (__u32)mix64(h) & (ERROR_SLOTS - 1);
	return bpf_map_lookup_elem(&error_slots, &i);
}

/* is_private_v4 covers the addresses of a cluster or a host: RFC 1918, loopback, CGNAT. */
static __always_inline bool is_private_v4(const __u8 *a)
{
	return a[0] == 10 || a[0] == 127 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
	       (a[0] == 100 && (a[1] & 0xc0) == 64);
}

/* server_side_peer keys a server's exchanges by the address it was reached at and by who called:
 * a client on this host (loopback, or the server's own address: the node's IP) by its process
 * (local_clients, looked up once per socket, with its key template) — by address and port when its process is unknown
 * (a connection older than the capture user space did not seed); another private address (a
 * pod, a peer in the cluster) by address; the Internet by network (/24, /64), so an ingress
 * does not make one key per client. */
static __always_inline void local_peer(struct agg_key *k, struct sock_state *st, struct sock *sk, const __u8 *local,
				       const __u8 *peer, __u16 family)
{
	__u16 port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	struct local_client_key lk;
	/* The client's key: its local address is our peer, its peer our local address. */
	if (local_client_key_of(&lk, peer, local, port, family)) {
		struct local_client *c = bpf_map_lookup_elem(&local_clients, &lk);
		if (c && c->tgid) {
			k->peer_tgid = c->tgid;
			struct settings *s = settings();
			if (s && s->pair_local && st->pair == PAIR_NONE) {
				/* Both ends here: offer to judge for the client, which goes quiet after
				 * its first response (client_quiet, server_paired). */
				c->server_sk = st->sk;
				st->pair = PAIR_PENDING;
				st->pair_peer = c->client_sk;
				st->pair_judged = 0;
			}
			return;
		}
	}
	k->peer_port = port;
}

static __always_inline void server_side_peer(struct agg_key *k, struct sock_state *st, struct sock *sk, __u16 family)
{
	if (family == AF_INET) {
		__u8 local[4] = {}, peer[4] = {};
		bpf_core_read(local, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(peer, 4, &sk->__sk_common.skc_daddr);
		__builtin_memcpy(k->peer, peer, 4);
		__builtin_memcpy(k->local, local, 4);
		if (peer[0] == 127 || (local[0] == peer[0] && local[1] == peer[1] && local[2] == peer[2] && local[3] == peer[3]))
			local_peer(k, st, sk, local, peer, family);
		else if (!is_private_v4(peer))
			k->peer[3] = 0;
		return;
	}
	__u8 local[16] = {}, peer[16] = {};
	bpf_core_read(local, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	bpf_core_read(peer, 16, &sk->__sk_common.skc_v6_daddr);
	__builtin_memcpy(k->peer, peer, 16);
	__builtin_memcpy(k->local, local, 16);
	__u64 l[2], p[2];
	__builtin_memcpy(l, local, 16);
	__builtin_memcpy(p, peer, 16);
	/* Network byte order in memory: p[0] holds bytes 0-7, p[1] bytes 8-15. */
	__u64 hi = bpf_be64_to_cpu(p[0]), lo = bpf_be64_to_cpu(p[1]);
	bool same = l[0] == p[0] && l[1] == p[1];
	bool v6loopback = hi == 0 && lo == 1;
	bool mapped = hi == 0 && (lo >> 32) == 0xffff;
	if (same || v6loopback || (mapped && ((lo >> 24) & 0xff) == 127)) {
		local_peer(k, st, sk, local, peer, family);
		return;
	}
	if (mapped) {
		__u8 v4[4] = {(lo >> 24) & 0xff, (lo >> 16) & 0xff, (lo >> 8) & 0xff, lo & 0xff};
		if (!is_private_v4(v4))
			k->peer[15] = 0;
		return;
	}
	bool ula = (hi >> 57) == (0xfc >> 1);
	if (!ula)
		__builtin_memset(&k->peer[8], 0, 8);
}

/* server_paired says whether a server socket judges for its local client (enum pair): once its
 * offer is taken (the client's socket went quiet after its first response, naming this one), it
 * stays so. judging: an exchange is being judged; an offer not taken by the exchange after the
 * first is withdrawn (a client that pipelines, or whose responses the kernel does not judge). */
static __always_inline bool server_paired(struct sock_state *st, bool judging)
{
	if (st->pair != PAIR_PENDING)
		return st->pair == PAIR_SERVER;
	struct sock_state *client = sock_find(st->pair_peer);
	if (client && client->pair == PAIR_QUIET && client->pair_peer == st->sk) {
		st->pair = PAIR_SERVER;
		return true;
	}
	if (!judging)
		return false;
	if (!st->pair_judged) {
		st->pair_judged = 1;
		st->pair_seq = st->req_seq;
	} else if (st->req_seq != st->pair_seq) {
		st->pair = PAIR_NONE;
	}
	return false;
}

/* key_template returns the socket's part of its exchanges' aggregate keys (role, family, the
 * server's port, the peer), read from the socket once and kept in its state: the socket's
 * fields do not change, and every exchange would read them again. */
static __always_inline struct agg_key *key_template(struct sock_state *st, struct sock *sk)
{
	struct agg_key *k = &st->key;
	if (st->key_made && k->role == st->info.role)
		return k;
	__builtin_memset(k, 0, sizeof(*k));
	k->role = st->info.role;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	k->family = family;
	if (st->info.role == ROLE_SERVER) {
		k->port = BPF_CORE_READ(sk, __sk_common.skc_num);
		server_side_peer(k, st, sk, family);
	} else {
		k->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		if (family == AF_INET)
			bpf_core_read(k->peer, 4, &sk->__sk_common.skc_daddr);
		else
			bpf_core_read(k->peer, 16, &sk->__sk_common.skc_v6_daddr);
	}
	st->key_made = 1;
	return k;
}

/* http1_port is the server port of the socket's exchanges (the port route rules are kept by). */
static __always_inline __u16 http1_port(struct sock_state *st)
{
	return key_template(st, (struct sock *)st->sk)->port;
}

/* exchange_key is the aggregate key of the socket's exchange in flight, with status: its template
 * completed in place, in the socket's state (st: the map value, which the verifier takes as a map
 * key; http1_judge looks it up so). Not copied, not on the stack (see h2_walk on stack sizes). */
static __always_inline struct agg_key *exchange_key(struct sock_state *st, struct sock *sk, __u16 status)
{
	struct agg_key *k = key_template(st, sk);
	k->tgid = st->io_tgid;
	k->method = st->method;
	k->status = status;
	k->version = st->version;
	k->route = st->route;
	k->paired = st->pair == PAIR_SERVER;
	return k;
}

/* aggregate_of returns the aggregate of key k, created (with its creation time, *created set)
 * when it is new; NULL when the table is full (counted) or no blank is at hand. */
static __always_inline struct agg_value *aggregate_of(struct agg_key *k, bool *created)
{
	struct agg_value *v = bpf_map_lookup_elem(&aggregates, k);
	if (v)
		return v;
	struct blanks *b = blanks();
	if (!b)
		return NULL;
	*created = bpf_map_update_elem(&aggregates, k, &b->agg, BPF_NOEXIST) == 0;
	v = bpf_map_lookup_elem(&aggregates, k);
	if (!v) {
		count(COUNTER_AGGS_FULL);
		return NULL;
	}
	if (*created)
		v->first_ns = bpf_ktime_get_ns();
	return v;
}

/* aggregate_add counts one exchange of latency in v, and in the counter idx. This CPU's copy,
 * and still atomic adds, so that no count depends on what the kernel lets run on this CPU
 * within a program: on a line no other CPU writes they cost little more than plain ones (8
 * adjacent pairs under wrk with plain adds: within this VM's drift). */
static __always_inline void aggregate_add(struct agg_value *v, const struct settings *s, __u64 latency, __u32 idx)
{
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->sum_ns, latency);
	__u32 b = latency_bucket(latency);
	if (b < LATENCY_BUCKETS)
		__sync_fetch_and_add(&v->latency[b], 1);
	__u32 x = explicit_bucket(s, latency);
	if (x < EXPLICIT_BUCKETS)
		__sync_fetch_and_add(&v->explicit[x], 1);
	count_syscall(idx); /* http1_judge's */
}

/* aggregate counts one healthy exchange; it returns the reasons to send it instead (a new key,
 * or a table that is full). lost: the exchange's record was lost (the ring buffer was full), so
 * it is counted even in a key it creates. */
static __always_inline __u8 aggregate(struct agg_key *k, const struct settings *s, __u64 latency, bool lost)
{
	bool created = false;
	struct agg_value *v = aggregate_of(k, &created);
	if (!v)
		return HTTP1_NO_AGGREGATE;
	if (created && !lost)
		return HTTP1_FIRST;
	aggregate_add(v, s, latency, lost ? COUNTER_HTTP1_LOST_COUNTED : COUNTER_HTTP1_AGGREGATED);
	return 0;
}

/* error_counted decides an error that has no other reason to be sent (not slow, not sampled,
 * parsed whole): its key's first error_records of the drain on this CPU are sent whole (they
 * carry what counts alone can't: the path and query a retry repeats, the example span, the
 * first moment of a cascade), the rest are counted in the key's aggregate like healthy ones,
 * so that an outage's errors do not cross one by one. It says whether the error was counted. */
static __always_inline bool error_counted(struct agg_key *k, const struct settings *s, __u64 latency)
{
	bool created = false;
	struct agg_value *v = aggregate_of(k, &created);
	if (!v)
		return false;
	if (v->sent < s->error_records) {
		v->sent++; /* this CPU's copy, written only by programs on it: a bound, not a count */
		return false;
	}
	aggregate_add(v, s, latency, COUNTER_HTTP1_ERRORS_COUNTED);
	return true;
}

/* route_limit_ns is the latency from which an exchange of this owner and route is sent. */
static __always_inline __u64 route_limit_ns(const struct settings *s, struct sock_state *st, __u64 latency)
{
	__u64 limit = s->slow_ns;
	if (s->have_limits && latency >= s->min_limit_ns) {
		struct limit_key k = {.tgid = st->io_tgid, .route = st->route};
		struct route_limit *l = bpf_map_lookup_elem(&route_limits, &k);
		if (l && l->latency_ns && l->latency_ns < limit)
			limit = l->latency_ns;
	}
	return limit;
}

/* --- the state machine --------------------------------------------------------------------- */

/* http1_parse_stash parses the request in the stash: what judging needs. */
static __always_inline void http1_parse_stash(struct sock_state *st, __u16 port, const struct settings *s)
{
	__u32 mlen = 0;
	__u32 n = st->stash_len;
	st->method = http1_method(st->stash, n, &mlen);
	/* A target cut by the stash has no route the kernel can key: route_key says so in
	 * st->target_cut, and the exchange is sent. */
	st->route = route_key(st, mlen + 1, n, port, s);
	st->h1 = H1_WAIT_RESPONSE;
}

/* http1_method_prefix says whether p[0, n) could begin a request line ("G", "PO", "DELE"):
 * a method's initial, then capitals. A start that turns out to be none hands the connection to
 * user space, so the check may be loose. */
static __always_inline bool http1_method_prefix(const __u8 *p, __u32 n)
{
	if (n == 0 || n >= 8)
		return false;
	__u8 c0 = p[0];
	if (c0 != 'G' && c0 != 'P' && c0 != 'D' && c0 != 'H' && c0 != 'O' && c0 != 'C' && c0 != 'T')
		return false;
	bool ok = true;
#pragma unroll
	for (int i = 1; i < 8; i++) {
		__u8 c = p[i];
		if (i < n && !(c >= 'A' && c <= 'Z'))
			ok = false;
	}
	return ok;
}

/* http1_expects_request says whether bytes in direction dir start a request: they go the
 * request's way and none is in flight. */
static __always_inline bool http1_expects_request(const struct sock_state *st, __u8 dir)
{
	__u8 req_dir = st->info.role == ROLE_CLIENT ? DIR_SEND : DIR_RECV;
	return dir == req_dir && (st->h1 == H1_IDLE || st->h1 == H1_IN_RESPONSE);
}

/* http1_next_request takes bytes in the request direction while no request is in flight: they
 * are read once, straight into the stash. A request line is parsed; the start of one read alone
 * ("G", "GE": a reader taking a few bytes) is kept for the rest. Anything else is no request:
 * it says false, and the kernel stops following the connection (CLASS_RAW): the caller hands
 * the bytes to user space. */
static __always_inline bool http1_next_request(struct sock_state *st, const struct buf_ref *r, __u32 size,
					       __u32 seq, const struct settings *s, __u64 now)
{
	__u64 n = r->avail;
	clamp_len(n, HTTP1_STASH);
	if (n == 0)
		return true;
	if (bpf_probe_read_user(st->stash, n, (void *)r->src) != 0) {
		count(COUNTER_READ_FAILED);
		st->h1 = H1_IDLE;
		return true;
	}
	__u32 mlen = 0;
	bool request = http1_method(st->stash, n, &mlen) != 0;
	if (!request && !(n < 8 && http1_method_prefix(st->stash, n))) {
		st->cls = CLASS_RAW;
		count(COUNTER_HTTP1_RAW);
		return false;
	}
	st->stash_len = n;
	st->req_seq = seq;
	st->req_size = size;
	st->req_ns = now;
	if (!request) {
		st->h1 = H1_REQUEST_START;
		return true;
	}
	st->req_partial = r->avail > HTTP1_STASH || size > r->avail;
	http1_parse_stash(st, http1_port(st), s);
	return true;
}

/* http1_request_rest appends the rest of a request whose start came alone, and parses it. */
static __always_inline int http1_request_rest(struct sock_state *st, const struct data_meta *m,
					      const struct buf_ref *r, __u32 size, const struct settings *s)
{
	__u64 have = st->stash_len;
	asm volatile("%[v] &= 0xf" : [v] "+r"(have));
	__u64 n = r->avail < HTTP1_STASH - PEEK ? r->avail : HTTP1_STASH - PEEK;
	asm volatile("%[v] &= 0xff" : [v] "+r"(n));
	if (n > 0 && bpf_probe_read_user(&st->stash[have], n, (void *)r->src) != 0) {
		count(COUNTER_READ_FAILED);
		st->h1 = H1_IDLE;
		return 0;
	}
	st->stash_len = have + n;
	st->req_size += size;
	__u16 port = http1_port(st);
	__u32 mlen = 0;
	if (!http1_method(st->stash, have + n, &mlen)) {
		st->cls = CLASS_RAW;
		count(COUNTER_HTTP1_RAW);
		emit_stash(m);
		return 0;
	}
	http1_parse_stash(st, port, s);
	return 0;
}

/* http1_status_prefix says whether p[0, n) could begin a status line ("HTTP/1.1 2"). */
static __always_inline bool http1_status_prefix(const __u8 *p, __u32 n)
{
	if (n == 0 || n >= 12)
		return false;
	const __u8 want[9] = {'H', 'T', 'T', 'P', '/', '1', '.', '1', ' '};
	bool ok = true;
#pragma unroll
	for (int i = 0; i < 12; i++) {
		__u8 c = p[i];
		if (i >= n)
			continue;
		if (i < 9 && i != 7 && c != want[i])
			ok = false;
		if (i >= 9 && (c < '0' || c > '9'))
			ok = false;
	}
	return ok;
}

static __always_inline void http1_status_start(struct sock_state *st, const __u8 *p, __u32 n)
{
#pragma unroll
	for (int i = 0; i < PEEK; i++)
		if (i < n)
			st->resp_start[i] = p[i];
	st->resp_start_len = n;
}

/* http1_status_rest completes a status line cut short with the next read's first bytes. */
static __always_inline __u16 http1_status_rest(struct sock_state *st, const __u8 *p, __u32 n, __u8 *version)
{
	__u64 have = st->resp_start_len;
	asm volatile("%[v] &= 0xf" : [v] "+r"(have));
#pragma unroll
	for (int i = 0; i < PEEK; i++)
		if (i < n)
			st->resp_start[(have + i) & (2 * PEEK - 1)] = p[i];
	st->resp_start_len = 0;
	return http1_status(st->resp_start, have + n, version);
}

/* error_seen notes an error of the socket's owner, peer and route. */
static __always_inline void error_seen(struct sock_state *st, struct sock *sk, __u64 now)
{
	struct agg_key *k = exchange_key(st, sk, 0);
	k->version = 0;
	k->paired = 0; /* the retry may come unpaired (a new connection) or paired (this one, next) */
	struct error_slot *slot = error_slot_of(k);
	if (!slot)
		return;
	/* A new entry is counted; an existing one is refreshed, unless a success took it meanwhile,
	 * on another CPU: then it is new again, and counted. */
	if (bpf_map_update_elem(&recent_errors, k, &now, BPF_NOEXIST) == 0 ||
	    (bpf_map_update_elem(&recent_errors, k, &now, BPF_EXIST) != 0 &&
	     bpf_map_update_elem(&recent_errors, k, &now, BPF_NOEXIST) == 0))
		__sync_fetch_and_add(&slot->pending, 1);
	slot->at = now;
}

/* recovering says whether a healthy exchange is the first to follow an error of its owner, peer
 * and route (k, built with status 0) within recovery_ns; the error is then forgotten, so each
 * error sends at most one success: a retried call's, or a busy route's next (1% random errors
 * cost 1% more records, not every exchange of the gap). */
static __always_inline bool recovering(struct agg_key *k, const struct settings *s, __u64 now)
{
	if (!s->recovery_ns)
		return false;
	struct error_slot *slot = error_slot_of(k);
	if (!slot || slot->pending <= 0)
		return false;
	__u64 last = slot->at; /* another CPU's error may be newer than now */
	if (last < now && now - last > s->recovery_ns)
		return false;
	__u8 version = k->version, paired = k->paired;
	k->version = 0;
	k->paired = 0;
	__u64 *at = bpf_map_lookup_elem(&recent_errors, k);
	bool recent = at && (*at >= now || now - *at <= s->recovery_ns);
	if (at && bpf_map_delete_elem(&recent_errors, k) == 0)
		__sync_fetch_and_add(&slot->pending, -1);
	k->version = version;
	k->paired = paired;
	return recent;
}

/* status_seq's bit saying its seq was not read (an HTTP/1 server's response): http1_judge reads the
 * socket's write sequence when it sends the exchange, and only then. */
#define JUDGE_SEQ_UNREAD (1ULL << 17)

/* http1_judge judges the response whose first bytes are at rsrc (ravail of them): a healthy one
 * updates its aggregate, any other is sent with its request. status_seq is status | version << 16
 * | JUDGE_SEQ_UNREAD | seq << 32; now: the response's time; st->io_tgid: the process doing the
 * I/O. A global function: the verifier checks it once, not once per path that calls it. */
__noinline int http1_judge(struct sock_state *st, __u64 rsrc, __u64 ravail, __u64 status_seq, __u64 now)
{
	if (!st)
		return 0;
	/* The state again, as the map value it is: a global function's pointer argument is memory of
	 * a size to the verifier, which 6.1 does not take as a map key; the value's key field is one
	 * (exchange_key). An array lookup: no helper call. */
	__u32 slot = st->slot1 - 1;
	st = bpf_map_lookup_elem(&sock_slots, &slot);
	if (!st)
		return 0;
	struct settings *s = settings();
	__u16 status = status_seq & 0xffff;
	__u32 seq = status_seq >> 32;
	struct sock *sk = (struct sock *)st->sk;
	__u64 latency = now > st->req_ns ? now - st->req_ns : 0;
	if (st->pair == PAIR_PENDING)
		server_paired(st, true);
	st->h1 = H1_IN_RESPONSE;
	st->resp_start_len = 0;
	st->version = (status_seq >> 16) & 1;
	__u8 reasons = 0;
	if (!s || !s->aggregate) {
		reasons = HTTP1_SAMPLED; /* judging is off: every exchange is sent */
	} else {
		if (status >= s->error_status)
			reasons |= HTTP1_ERROR;
		if (latency >= route_limit_ns(s, st, latency))
			reasons |= HTTP1_SLOW;
		if (request_randomness(st->client_isn, st->server_isn, st->req_seq) >= s->sample_threshold)
			reasons |= HTTP1_SAMPLED;
		if (st->method == 0 || st->target_cut)
			reasons |= HTTP1_PARTIAL;
	}
	if (reasons == HTTP1_ERROR && s->error_records && error_counted(exchange_key(st, sk, status), s, latency))
		return 0;
	if (s && s->aggregate && s->recovery_ns && (reasons & HTTP1_ERROR))
		error_seen(st, sk, now);
	if (!reasons && s) {
		struct agg_key *k = exchange_key(st, sk, 0);
		if (recovering(k, s, now))
			reasons = HTTP1_RECOVERY;
		else {
			k->status = status;
			reasons = aggregate(k, s, latency, false);
		}
		if (!reasons)
			return 0;
	}
	if (status_seq & JUDGE_SEQ_UNREAD)
		seq = BPF_CORE_READ((struct tcp_sock *)sk, write_seq); /* at sys_enter: the response's first byte */
	if (emit_exchange(st, sk, rsrc, ravail, status, reasons, seq, now, NULL) < 0 && s && s->aggregate &&
	    !(reasons & HTTP1_NO_AGGREGATE)) {
		/* Its record was lost to a full ring buffer: its span goes, its count stays. */
		aggregate(exchange_key(st, sk, status), s, latency, true);
	}
	return 0;
}

/* http1_unanswered sends a request still waiting for its response when its socket is closed:
 * user space reports it as reset, closed or abandoned (the TCP state and error tell which). */
static __always_inline void http1_unanswered(struct sock_state *st, const struct sock_tuple *tuple)
{
	if (st->cls != CLASS_HTTP1 || st->h1 != H1_WAIT_RESPONSE || !st->sk)
		return;
	st->h1 = H1_IDLE;
	emit_exchange(st, (struct sock *)st->sk, 0, 0, 0, HTTP1_UNANSWERED, 0, bpf_ktime_get_ns(), tuple);
}

#endif
