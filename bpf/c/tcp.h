/* TCP events the data path does not see: resets sent and received, retransmitted segments and
 * handshakes. All optional: a kernel without one of these tracepoints (or with a layout CO-RE
 * cannot place) switches off that capability only. Raw tracepoints in every mode (sockets.h says
 * why). */
#ifndef NETINTEL_TCP_H
#define NETINTEL_TCP_H

#include "common.h"
#include "sockets.h"

/* --- handlers ----------------------------------------------------------------------------- */

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
