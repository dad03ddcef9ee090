package capture

import (
	"sort"
	"strings"
)

// Capability is one thing the kernel side observes. The data path is required everywhere;
// the rest depends on what the running kernel offers, and a capability the kernel lacks
// switches off the findings that need it, never the receiver.
type Capability string

const (
	// CapTCPConnections: connects, accepts and TCP state changes (required).
	CapTCPConnections Capability = "tcp_connections"
	// CapSocketData: the bytes of socket reads and writes, and the RTT sampled beside them (required).
	CapSocketData Capability = "socket_data"
	// CapResetsSent: RSTs this node sends (tcp:tcp_send_reset).
	CapResetsSent Capability = "tcp_resets_sent"
	// CapResetsReceived: RSTs this node receives (tcp:tcp_receive_reset).
	CapResetsReceived Capability = "tcp_resets_received"
	// CapRetransmits: retransmitted segments and unanswered SYNs (tcp:tcp_retransmit_skb).
	CapRetransmits Capability = "tcp_retransmits"
	// CapSynAckRetransmits: SYN-ACKs sent again by a listener whose accept queue is full
	// (tcp:tcp_retransmit_synack).
	CapSynAckRetransmits Capability = "tcp_synack_retransmits"
	// CapConnectErrors: the errno of connects that fail asynchronously
	// (sock:inet_sk_error_report), so refused and timed-out connects are told apart.
	CapConnectErrors Capability = "connect_error_reports"
	// CapForkInheritance: a forked child serves the sockets its parent accepted (busybox httpd,
	// inetd, PostgreSQL backends), also through dup2 onto stdin/stdout: sched:sched_process_fork
	// with the clone/fork entries, and the dup and fcntl(F_DUPFD) programs, copy fd entries.
	CapForkInheritance Capability = "fork_inheritance"
)

// CapabilityState says whether a capability is on for this kernel and, when off, why.
type CapabilityState struct {
	Name     Capability
	Required bool
	On       bool
	Programs []string // the kernel programs behind it
	Reason   string   // why it is off (the first program that failed, and the kernel's words)
}

// DescribeCapabilities is the one-line report of which capabilities are on and off, sorted by
// name: "on: a, b; off: c (why)".
func DescribeCapabilities(states []CapabilityState) string {
	var on, off []string
	for _, s := range states {
		if s.On {
			on = append(on, string(s.Name))
		} else {
			off = append(off, string(s.Name)+" ("+s.Reason+")")
		}
	}
	sort.Strings(on)
	sort.Strings(off)
	out := "on: " + strings.Join(on, ", ")
	if len(off) > 0 {
		out += "; off: " + strings.Join(off, ", ")
	}
	return out
}

// Degraded lists the capabilities that are off.
func Degraded(states []CapabilityState) []CapabilityState {
	var out []CapabilityState
	for _, s := range states {
		if !s.On {
			out = append(out, s)
		}
	}
	return out
}

// AttachMode is how the syscall and sock/tcp programs are attached (see bpf/c/syscalls.h).
type AttachMode uint8

const (
	// AttachAuto tries classic tracepoints, and falls back to raw ones when the kernel refuses
	// perf_event_open() (perf_event_paranoid above 2 without CAP_SYS_ADMIN, Debian's default).
	AttachAuto AttachMode = iota
	// AttachTracepoint: classic tracepoints, one program per syscall (the cheaper).
	AttachTracepoint
	// AttachRaw: raw tracepoints on sys_enter/sys_exit with a tail call per syscall, and on the
	// sock/tcp tracepoints; needs only CAP_BPF and CAP_PERFMON.
	AttachRaw
)

func (m AttachMode) String() string {
	switch m {
	case AttachTracepoint:
		return "tracepoint"
	case AttachRaw:
		return "raw_tracepoint"
	}
	return "auto"
}
