/* TCP events the data path does not see: resets sent and received, retransmitted segments and
 * handshakes. All optional: a kernel without one of these tracepoints (or with a layout CO-RE
 * cannot place) switches off that capability only. */
#ifndef NETINTEL_TCP_H
#define NETINTEL_TCP_H

#include "common.h"
#include "sockets.h"

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


/* --- handlers, the same for both ways of attaching ---------------------------------------- */

static __always_inline int on_send_reset(struct sock *sk, struct sock_tuple *t)
{
	if (!cfg_tcp || !family_wanted(t->family))
		return 0;
	struct sock_info *info = sk ? known_info(sk) : NULL;
	emit_conn(CONN_RESET_SENT, NULL, info, t, 0);
	return 0;
}

static __always_inline int on_receive_reset(struct sock *sk, struct sock_tuple *t)
{
	if (!cfg_tcp || !family_wanted(t->family))
		return 0;
	/* A RST answering our SYN is a refused connect: the CLOSE that follows reports it as such. */
	if (BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_SYN_SENT)
		return 0;
	emit_conn(CONN_RESET_RECEIVED, NULL, known_info(sk), t, 0);
	return 0;
}

static __always_inline int on_retransmit(struct sock *sk, int state, struct sock_tuple *t)
{
	if (!cfg_tcp || !family_wanted(t->family))
		return 0;
	struct sock_info *info = known_info(sk);
	if (state == TCP_SYN_SENT) {
		/* Nobody answered our SYN: a server that stopped accepting, a filter, a lost packet. */
		t->role = ROLE_CLIENT;
		emit_conn(CONN_HANDSHAKE_RETRANSMIT, NULL, info, t, 0);
		return 0;
	}
	emit_conn(CONN_RETRANSMIT, sk, info, t, 0);
	return 0;
}

/* Our SYN-ACK went unacknowledged: typically the listener's accept queue is full, so the client's
 * ACK was dropped. The listener has no process known here. */
static __always_inline int on_retransmit_synack(struct sock_tuple *t)
{
	if (!cfg_tcp || !family_wanted(t->family))
		return 0;
	t->role = ROLE_SERVER;
	emit_conn(CONN_HANDSHAKE_RETRANSMIT, NULL, NULL, t, 0);
	return 0;
}

/* --- classic tracepoints -------------------------------------------------------------------- */

SEC("tracepoint/tcp/tcp_send_reset")
int ni_send_reset(void *ctx)
{
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
	return on_send_reset(sk, &t);
}

SEC("tracepoint/tcp/tcp_receive_reset")
int ni_receive_reset(struct trace_event_raw_tcp_event_sk *ctx)
{
	struct sock_tuple t = {};
	tuple_from_tp(&t, ctx->family, ctx->sport, ctx->dport, ctx->saddr, ctx->daddr, ctx->saddr_v6,
		      ctx->daddr_v6);
	return on_receive_reset((struct sock *)ctx->skaddr, &t);
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int ni_retransmit(void *ctx)
{
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
	return on_retransmit(sk, state, &t);
}

SEC("tracepoint/tcp/tcp_retransmit_synack")
int ni_retransmit_synack(struct trace_event_raw_tcp_retransmit_synack *ctx)
{
	struct sock_tuple t = {};
	tuple_from_tp(&t, ctx->family, ctx->sport, ctx->dport, ctx->saddr, ctx->daddr, ctx->saddr_v6,
		      ctx->daddr_v6);
	return on_retransmit_synack(&t);
}

/* --- raw tracepoints: the tracepoints' own arguments, the tuple read from the socket --------- */

/* tuple_from_skb reads the addresses of the packet a RST answers when no socket does (a SYN to a
 * closed port): local is the packet's destination. */
static __always_inline void tuple_from_skb(struct sock_tuple *t, struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header), th = BPF_CORE_READ(skb, transport_header);
	__u8 vhl = 0;
	bpf_probe_read_kernel(&vhl, 1, head + nh);
	struct tcphdr tcp = {};
	bpf_probe_read_kernel(&tcp, sizeof(tcp), head + th);
	t->sport = bpf_ntohs(tcp.dest);
	t->dport = bpf_ntohs(tcp.source);
	if ((vhl >> 4) == 4) {
		struct iphdr ip = {};
		bpf_probe_read_kernel(&ip, sizeof(ip), head + nh);
		t->family = AF_INET;
		__builtin_memcpy(t->saddr, &ip.daddr, 4);
		__builtin_memcpy(t->daddr, &ip.saddr, 4);
	} else {
		struct ipv6hdr ip6 = {};
		bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh);
		t->family = AF_INET6;
		__builtin_memcpy(t->saddr, &ip6.daddr, 16);
		__builtin_memcpy(t->daddr, &ip6.saddr, 16);
	}
}

SEC("raw_tp/tcp_send_reset")
int ni_raw_send_reset(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	struct sock_tuple t = {};
	if (sk)
		tuple_of(sk, &t);
	else
		tuple_from_skb(&t, (struct sk_buff *)ctx->args[1]);
	return on_send_reset(sk, &t);
}

SEC("raw_tp/tcp_receive_reset")
int ni_raw_receive_reset(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	struct sock_tuple t = {};
	tuple_of(sk, &t);
	return on_receive_reset(sk, &t);
}

SEC("raw_tp/tcp_retransmit_skb")
int ni_raw_retransmit(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	struct sock_tuple t = {};
	tuple_of(sk, &t);
	return on_retransmit(sk, BPF_CORE_READ(sk, __sk_common.skc_state), &t);
}

SEC("raw_tp/tcp_retransmit_synack")
int ni_raw_retransmit_synack(struct bpf_raw_tracepoint_args *ctx)
{
	/* A request sock starts with the sock_common of the connection being set up. */
	struct sock_tuple t = {};
	fill_tuple((struct sock *)ctx->args[1], &t);
	return on_retransmit_synack(&t);
}

#endif
