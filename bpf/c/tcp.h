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
		info = known_info((struct sock *)key);
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
	struct sock_info *info = known_info((struct sock *)key);
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
	struct sock_info *info = known_info((struct sock *)key);
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

#endif
