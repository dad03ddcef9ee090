/* Every syscall the kernel side follows, attached one of two ways, chosen per kernel by the loader:
 *   - classic syscall tracepoints (syscalls:sys_enter_X / sys_exit_X): one program per syscall,
 *     running only for that syscall — the cheaper way, but attached with perf_event_open(),
 *     which kernels with perf_event_paranoid above 2 (Debian's and Ubuntu's default) allow only
 *     with CAP_SYS_ADMIN;
 *   - raw tracepoints on sys_enter / sys_exit (BPF_RAW_TRACEPOINT_OPEN: CAP_BPF and CAP_PERFMON
 *     are enough), one dispatcher each that tail-calls the same handler by syscall number — it
 *     runs for every syscall of the node, so it costs more.
 * The handlers (on_enter_X, on_exit_X in data.h and sockets.h) are the same for both. */
#ifndef NETINTEL_SYSCALLS_H
#define NETINTEL_SYSCALLS_H

#include <bpf/bpf_tracing.h>

#include "common.h"
#include "data.h"
#include "sockets.h"

#if defined(__TARGET_ARCH_arm64)
/* bpf_tracing.h reads arm64 syscall arguments through the kernel's user_pt_regs, which the
 * (x86-generated) vmlinux.h lacks; CO-RE relocates it against the running kernel's. */
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
} __attribute__((preserve_access_index));
#endif

/* Raw mode: handlers by syscall number, filled by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, __u32);
} raw_enters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, __u32);
} raw_exits SEC(".maps");

SEC("raw_tp/sys_enter")
int ni_raw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	bpf_tail_call(ctx, &raw_enters, (__u32)ctx->args[1]);
	return 0;
}

/* The syscall number at sys_exit is the registers' (orig_ax on x86, syscallno on arm64). */
struct pt_regs___arm64_nr {
	int syscallno;
} __attribute__((preserve_access_index));

SEC("raw_tp/sys_exit")
int ni_raw_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__u32 nr;
#if defined(__TARGET_ARCH_x86)
	nr = (__u32)BPF_CORE_READ(regs, orig_ax);
#else
	nr = (__u32)BPF_CORE_READ((struct pt_regs___arm64_nr *)regs, syscallno);
#endif
	bpf_tail_call(ctx, &raw_exits, nr);
	return 0;
}

#if defined(__TARGET_ARCH_arm64)
struct pt_regs___arm64_args {
	__u64 regs[31];
	__u64 orig_x0;
} __attribute__((preserve_access_index));
#endif

/* syscall_arg reads syscall argument n (from 0) from the saved registers. btf: regs is a BTF
 * pointer (bpf_task_pt_regs), read in place; otherwise it is read as kernel memory. */
static __always_inline __u64 syscall_arg(struct pt_regs *regs, int n, bool btf)
{
	if (!btf) {
		switch (n) {
		case 0:
			return PT_REGS_PARM1_CORE_SYSCALL(regs);
		case 1:
			return PT_REGS_PARM2_CORE_SYSCALL(regs);
		case 2:
			return PT_REGS_PARM3_CORE_SYSCALL(regs);
		case 3:
			return PT_REGS_PARM4_CORE_SYSCALL(regs);
		default:
			return PT_REGS_PARM5_CORE_SYSCALL(regs);
		}
	}
#if defined(__TARGET_ARCH_x86)
	switch (n) {
	case 0:
		return regs->di;
	case 1:
		return regs->si;
	case 2:
		return regs->dx;
	case 3:
		return regs->r10;
	default:
		return regs->r8;
	}
#else
	struct pt_regs___arm64_args *r = (struct pt_regs___arm64_args *)regs;
	return n == 0 ? r->orig_x0 : r->regs[n & 7];
#endif
}

/* raw_args reads the first n syscall arguments from the registers (only what a handler uses: each
 * is a read of kernel memory). */
static __always_inline void raw_args(struct bpf_raw_tracepoint_args *ctx, __u64 *a, int n)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
#pragma unroll
	for (int i = 0; i < 5; i++)
		if (i < n)
			a[i] = syscall_arg(regs, i, false);
}

#define ENTER(name, nargs)                                                                 \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                         \
	int ni_enter_##name(struct trace_event_raw_sys_enter *ctx)                          \
	{                                                                                   \
		/* Copied: the verifier allows the context only at constant offsets. */     \
		__u64 a[5] = {};                                                            \
		a[0] = ctx->args[0];                                                        \
		if (nargs > 1)                                                              \
			a[1] = ctx->args[1];                                                \
		if (nargs > 2)                                                              \
			a[2] = ctx->args[2];                                                \
		if (nargs > 3)                                                              \
			a[3] = ctx->args[3];                                                \
		if (nargs > 4)                                                              \
			a[4] = ctx->args[4];                                                \
		return on_enter_##name(a);                                                  \
	}                                                                                   \
	SEC("raw_tp")                                                                       \
	int ni_raw_enter_##name(struct bpf_raw_tracepoint_args *ctx)                        \
	{                                                                                   \
		__u64 a[5] = {};                                                            \
		raw_args(ctx, a, nargs);                                                    \
		return on_enter_##name(a);                                                  \
	}

#define EXIT(name)                                                                         \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                          \
	int ni_exit_##name(struct trace_event_raw_sys_exit *ctx)                            \
	{                                                                                   \
		return on_exit_##name(ctx->ret);                                            \
	}                                                                                   \
	SEC("raw_tp")                                                                       \
	int ni_raw_exit_##name(struct bpf_raw_tracepoint_args *ctx)                         \
	{                                                                                   \
		return on_exit_##name((long)ctx->args[1]);                                  \
	}

/* recv_exit follows a read-type syscall at its exit, from its saved registers (regs): the fd
 * first, then, on a followed socket, the rest. flags_arg and addr_arg name the argument holding
 * the call's flags and source address (-1: none). */
static __always_inline int recv_exit(long ret, struct pt_regs *regs, __u32 tgid, bool btf, __u8 kind, int flags_arg,
				     int addr_arg)
{
	if (!regs)
		return 0;
	int fd = (int)syscall_arg(regs, 0, btf);
	struct fd_entry *udp = NULL;
	struct sock_state *st = socket_of(tgid, fd, &udp);
	if (!st) {
		no_merge(); /* two pointers' tests are not merged into an OR, which the verifier refuses */
		if (!udp)
			return 0;
	}
	__u64 buf = syscall_arg(regs, 1, btf), flags = 0, addr = 0;
	if (flags_arg >= 0)
		flags = syscall_arg(regs, flags_arg, btf);
	if (addr_arg >= 0)
		addr = syscall_arg(regs, addr_arg, btf);
	return exit_recv(st, udp, tgid, fd, buf, ret, flags, addr, kind);
}

/* A read-type syscall, at its exit only: the classic tracepoint finds the registers through the
 * task, the raw one has them in its arguments. A call that read nothing costs no helper call. */
#define RECV(name, kind, flags_arg, addr_arg)                                              \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                          \
	int ni_exit_##name(struct trace_event_raw_sys_exit *ctx)                            \
	{                                                                                   \
		long ret = ctx->ret;                                                        \
		if (ret <= 0)                                                               \
			return 0;                                                           \
		/* The process by the helper, not task->tgid: a typed load whose offset is    \
		 * another kernel's fails the verifier of this one (TestKernelPrograms-        \
		 * RelocateOnOtherKernels loads the programs against other kernels' BTF). */   \
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf()); \
		return recv_exit(ret, regs, bpf_get_current_pid_tgid() >> 32, true, kind, flags_arg, addr_arg); \
	}                                                                                   \
	SEC("raw_tp")                                                                       \
	int ni_raw_exit_##name(struct bpf_raw_tracepoint_args *ctx)                         \
	{                                                                                   \
		long ret = (long)ctx->args[1];                                              \
		if (ret <= 0)                                                               \
			return 0;                                                           \
		return recv_exit(ret, (struct pt_regs *)ctx->args[0], bpf_get_current_pid_tgid() >> 32, false, kind, \
				 flags_arg, addr_arg);                                      \
	}

/* The data path: sends at sys_enter, receives at sys_exit. */
ENTER(write, 3)
ENTER(writev, 3)
ENTER(sendto, 5)
ENTER(sendmsg, 2)
ENTER(sendmmsg, 3)
RECV(read, BUF_PLAIN, -1, -1)
RECV(readv, BUF_IOV, -1, -1)
RECV(recvfrom, BUF_PLAIN, 3, 4)
RECV(recvmsg, BUF_MSG, 2, -1)
RECV(recvmmsg, BUF_MMSG, 3, -1)

/* Which fds are sockets, and the TCP connections they open. */
EXIT(socket)
ENTER(close, 1)
ENTER(connect, 2)
EXIT(connect)
EXIT(accept)
EXIT(accept4)

/* Forks (with sched_process_fork) and dups share a socket's fd entries. */
ENTER(clone, 1)
ENTER(clone3, 1)
ENTER(dup, 1)
EXIT(dup)
ENTER(dup3, 2)
ENTER(fcntl, 2)
EXIT(fcntl)
#if defined(__TARGET_ARCH_x86)
/* Not syscalls on arm64. */
ENTER(fork, 1)
ENTER(vfork, 1)
ENTER(dup2, 2)
#endif

#endif
