/* HTTP/2 and gRPC: HPACK stays in Go, but the kernel walks the frames of each read and write and
 * sends only what the parser needs — every frame header, and the payloads of frames other than
 * DATA (HEADERS, CONTINUATION, SETTINGS, RST_STREAM, GOAWAY, ...). DATA payloads never cross, so
 * a gRPC call's trailers are seen wherever they sit in a write, and a download costs a walk, not
 * a copy. A frame running into the next call is followed across calls (h2_left, h2_hdr). */
#ifndef NETINTEL_HTTP2_H
#define NETINTEL_HTTP2_H

#include "common.h"
#include "records.h"

#define H2_FRAME_HEADER 9
/* Set by the walk on a frame it cut (its length then says what was copied); l7 reads it. */
#define H2_FLAG_CUT 0x80
#define H2_PREFACE_LEN 24 /* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" */
#define H2_DATA 0
#define H2_MAX_TYPE 9
/* Frames walked per call (a bpf_loop bound); a call with more is cut there (counted, and the
 * record flagged) and the stream resyncs. 128 holds grpc-go's route_guide ListFeatures stream
 * (66 frames in one write); the record's 4 KiB hold 455 frame headers. */
#define H2_MAX_FRAMES 128
/* Bytes of one non-DATA payload copied (longer HEADERS are cut: the parser marks them partial). */
#define H2_MAX_COPY 2048
#define SCRATCH_MASK (MAX_PAYLOAD - 1)

/* is_h2_start says whether bytes begin an HTTP/2 connection or a frame: the client preface, or a
 * plausible frame header (mid-stream joins: a connection that predates the capture). */
static __always_inline bool is_h2_start(const __u8 *p, __u32 n)
{
	if (n >= 8 && p[0] == 'P' && p[1] == 'R' && p[2] == 'I' && p[3] == ' ' && p[4] == '*' && p[5] == ' ' &&
	    p[6] == 'H' && p[7] == 'T')
		return true;
	if (n < H2_FRAME_HEADER)
		return false;
	__u32 len = ((__u32)p[0] << 16) | ((__u32)p[1] << 8) | p[2];
	__u8 type = p[3];
	__u8 flags = p[4];
	__u32 stream = ((__u32)(p[5] & 0x7f) << 24) | ((__u32)p[6] << 16) | ((__u32)p[7] << 8) | p[8];
	if (p[5] & 0x80)
		return false; /* the reserved bit is never set */
	switch (type) {
	case 4: /* SETTINGS: stream 0, a multiple of 6, ACK empty */
		return stream == 0 && len % 6 == 0 && len <= 16384 && (flags & ~1) == 0 && (!(flags & 1) || len == 0);
	case 1: /* HEADERS on a stream */
		return stream != 0 && len > 0 && len <= 16384 && (flags & ~0x2d) == 0;
	case 0: /* DATA on a stream */
		return stream != 0 && len <= 16384 && (flags & ~0x09) == 0;
	case 6: /* PING */
		return stream == 0 && len == 8 && (flags & ~1) == 0;
	case 8: /* WINDOW_UPDATE */
		return len == 4 && flags == 0;
	case 7: /* GOAWAY */
		return stream == 0 && len >= 8 && len <= 16384;
	case 3: /* RST_STREAM */
		return stream != 0 && len == 4 && flags == 0;
	}
	return false;
}

/* out_append_user copies n bytes of user memory at src into the scratch record at *out. */
static __always_inline void out_append_user(struct scratch_event *e, __u64 *out, __u64 src, __u64 n)
{
	__u64 o = *out;
	if (o >= MAX_PAYLOAD)
		return;
	__u64 room = MAX_PAYLOAD - o;
	if (n > room)
		n = room;
	if (n > H2_MAX_COPY)
		n = H2_MAX_COPY;
	/* The masks bound both for the verifier; the scratch is twice MAX_PAYLOAD. In asm, so the
	 * compiler cannot drop them as implied by the clamps above: 6.1's verifier does not carry a
	 * bound learned on a register back to the stack slot it was spilled to and reloaded from. */
	asm volatile("%[v] &= 0xfff" : [v] "+r"(o)); /* MAX_PAYLOAD - 1 */
	asm volatile("%[v] &= 0xfff" : [v] "+r"(n)); /* 2 * H2_MAX_COPY - 1 */
	if (n == 0)
		return;
	if (bpf_probe_read_user(&e->payload[o], n, (void *)src) != 0) {
		count(COUNTER_READ_FAILED);
		return;
	}
	*out = o + n;
}

/* What one step of the frame walk needs: bpf_loop's context, on h2_walk's stack; the call's
 * bytes (src, avail, d) are in the scratch record. The program's stack, h2_walk's and the step's
 * add up, and 6.1's verifier allows 512 bytes for the three. */
struct h2_walk_ctx {
	struct sock_state *st;
	struct scratch_event *e;
};

/* h2_frame_step walks one frame at e->off: its header out, its payload out unless it is DATA, a
 * frame running into the next call noted in the socket's state. A bpf_loop callback, verified
 * once, so the bound is what a call can hold, not what the verifier can follow. Returns 1 to
 * stop: the call's end, a frame that goes on in the next call, or what the walk cannot follow
 * (left at e->off, so the record says it stopped short). */
static long h2_frame_step(__u32 index, void *ctx)
{
	struct h2_walk_ctx *wc = ctx;
	struct sock_state *st = wc->st;
	struct scratch_event *e = wc->e;
	__u64 src = e->src, avail = e->avail, d = e->d & 1;
	__u64 off = e->off;
	if (off >= avail || st->h2_left[d] > 0)
		return 1;
	__u64 rem = avail - off;
	if (rem < H2_FRAME_HEADER) {
		/* A header split across calls: keep its first bytes for the next one. */
		asm volatile("%[v] &= 0xf" : [v] "+r"(rem));
		if (rem > 0 && rem <= 8 && bpf_probe_read_user(st->h2_hdr[d], rem, (void *)(src + off)) == 0)
			st->h2_hdr_len[d] = rem;
		e->off = avail;
		return 1;
	}
	__u64 o = e->out;
	if (o + H2_FRAME_HEADER > MAX_PAYLOAD)
		return 1; /* the record is full: the rest of the call goes unwalked */
	asm volatile("%[v] &= 0xfff" : [v] "+r"(o)); /* MAX_PAYLOAD - 1 */
	/* The header is read where it goes out, not through the stack (see h2_walk_ctx). */
	__u8 *fh = &e->payload[o];
	if (bpf_probe_read_user(fh, H2_FRAME_HEADER, (void *)(src + off)) != 0) {
		count(COUNTER_READ_FAILED);
		return 1;
	}
	__u64 len = ((__u32)fh[0] << 16) | ((__u32)fh[1] << 8) | fh[2];
	__u8 type = fh[3], flags = fh[4];
	if (type > H2_MAX_TYPE)
		return 1; /* not a frame boundary: the stream is lost here (not sent: e->out stays) */
	e->out = o + H2_FRAME_HEADER;
	off += H2_FRAME_HEADER;
	rem = avail - off;
	__u64 here = rem < len ? rem : len;
	bool cut = false;
	if (type != H2_DATA) {
		__u64 before = e->out;
		out_append_user(e, &e->out, src + off, here);
		__u64 copied = e->out - before;
		if (copied < here) {
			/* Cut by what one record holds: the header says what was copied, and the frame's
			 * rest is skipped, here and in the next call. */
			cut = true;
			e->payload[o & (MAX_PAYLOAD - 1)] = copied >> 16;
			e->payload[(o + 1) & (MAX_PAYLOAD - 1)] = copied >> 8;
			e->payload[(o + 2) & (MAX_PAYLOAD - 1)] = copied;
			e->payload[(o + 4) & (MAX_PAYLOAD - 1)] = flags | H2_FLAG_CUT;
		}
	}
	e->off = off + here;
	if (here < len) {
		st->h2_left[d] = len - here;
		st->h2_copy[d] = type != H2_DATA && !cut;
		return 1;
	}
	return 0;
}

/* h2_walk_begin starts the walk of the call in e (src, avail, d): a frame header the previous
 * call split, the client's preface, the rest of a frame an earlier call began. Returns 0 when
 * nothing is to be sent. Its own function (as h2_walk_send), so its stack is not h2_walk's: the
 * frame steps below h2_walk add to it (see h2_walk_ctx). */
static __noinline int h2_walk_begin(struct sock_state *st, struct scratch_event *e)
{
	__u64 src = e->src, avail = e->avail, d = e->d & 1;
	/* A frame header split by the previous call: complete it from this one. */
	__u64 have = st->h2_hdr_len[d];
	if (have > 0 && have < H2_FRAME_HEADER) {
		__u64 need = H2_FRAME_HEADER - have;
		if (need > avail)
			return 0; /* still not whole: keep waiting */
		asm volatile("%[v] &= 0xf" : [v] "+r"(need));
		asm volatile("%[v] &= 0x7" : [v] "+r"(have));
		if (need == 0 || need > 8 ||
		    bpf_probe_read_user(&st->h2_hdr[d][have], need, (void *)src) != 0) {
			count(COUNTER_READ_FAILED);
			st->h2_hdr_len[d] = 0;
			return 0;
		}
		/* The header goes out whole; the payload below as for any frame. */
		__u8 *hdr = e->payload;
		__builtin_memcpy(hdr, st->h2_hdr[d], H2_FRAME_HEADER);
		st->h2_hdr_len[d] = 0;
		e->off = need;
		e->out = H2_FRAME_HEADER;
		st->h2_left[d] = ((__u32)hdr[0] << 16) | ((__u32)hdr[1] << 8) | hdr[2];
		st->h2_copy[d] = hdr[3] != H2_DATA;
	}

	/* The client's connection preface is no frame: it goes out as it is. */
	if (have == 0 && st->h2_left[d] == 0 && avail >= H2_PREFACE_LEN) {
		/* Read in place: what is not the preface is overwritten by the frames after it. */
		__u8 *p = e->payload;
		if (bpf_probe_read_user(p, H2_PREFACE_LEN, (void *)src) == 0 && p[0] == 'P' && p[1] == 'R' && p[2] == 'I' &&
		    p[3] == ' ' && p[4] == '*' && p[22] == '\r' && p[23] == '\n') {
			e->off = H2_PREFACE_LEN;
			e->out = H2_PREFACE_LEN;
		}
	}

	/* The rest of a frame that began in an earlier call. */
	__u64 left = st->h2_left[d];
	__u64 off = e->off;
	if (left > 0 && off < avail) {
		__u64 take = left < avail - off ? left : avail - off;
		if (st->h2_copy[d]) {
			__u64 before = e->out;
			out_append_user(e, &e->out, src + off, take);
			if (e->out - before < take)
				count(COUNTER_H2_FRAMES_CUT); /* the parser reads past this frame's end */
		}
		e->off = off + take;
		st->h2_left[d] = left - take;
	}
	return 1;
}

/* h2_walk_send sends the walked record. A walk that stopped before the call's end (the frame
 * bound, a lost boundary, a full record, bytes past the first iovec) says so: the frames it did
 * not walk may hold a call's trailers or reset. */
static __noinline int h2_walk_send(struct sock_state *st, struct scratch_event *e, __u64 size_seq)
{
	__u8 flags = DATA_H2_COMPACT;
	if (e->off < e->avail)
		count(COUNTER_H2_FRAMES_CUT);
	if (e->off < (size_seq >> 32))
		flags |= DATA_TRUNCATED;
	__u64 out = e->out;
	if (out == 0 || out > MAX_PAYLOAD)
		return 0;

	/* The header is filled here, field by field, not from a data_meta: this function's stack
	 * adds to its callers', and 6.1's verifier counts the sum against 512 bytes. */
	struct data_header *h = &e->h;
	h->type = EVENT_DATA;
	h->dir = e->d == 0 ? DIR_SEND : DIR_RECV;
	h->flags = flags;
	h->pad = 0;
	h->size = size_seq >> 32;
	h->ts_ns = bpf_ktime_get_ns();
	h->cookie = st->info.cookie;
	current_task_id(&h->task);
	fill_tuple((struct sock *)st->sk, &h->tuple);
	h->tuple.transport = TRANSPORT_TCP;
	h->tuple.role = st->info.role;
	h->seq = (__u32)size_seq;
	h->client_isn = st->client_isn;
	h->server_isn = st->server_isn;
	h->payload_len = out;
	__u64 size = sizeof(e->h) + out;
	if (bpf_ringbuf_output(&events, &e->h, size, wakeup_flags()) != 0) {
		count(COUNTER_RINGBUF_FULL);
		return 0;
	}
	count_ringbuf(size);
	return 0;
}

/* h2_walk walks the frames in one call's bytes (src, avail: the first iovec) and sends the
 * compacted record. d is 0 for send, 1 for receive; size_seq is the call's size << 32 | seq.
 * A global function: the verifier checks it once, not once per path that calls it. */
__noinline int h2_walk(struct sock_state *st, __u64 src, __u64 avail, __u64 size_seq, __u64 d)
{
	__u32 zero = 0;
	struct scratch_event *e = bpf_map_lookup_elem(&data_scratch, &zero);
	if (!st || !e)
		return 0;
	e->off = 0;
	e->out = 0;
	e->src = src;
	e->avail = avail;
	e->d = d & 1;
	if (!h2_walk_begin(st, e))
		return 0;
	struct h2_walk_ctx wc = {.st = st, .e = e};
	bpf_loop(H2_MAX_FRAMES, h2_frame_step, &wc, 0);
	return h2_walk_send(st, e, size_seq);
}

#endif
