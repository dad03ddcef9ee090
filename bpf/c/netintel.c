// SPDX-License-Identifier: GPL-2.0
/*
 * netintel kernel side, one object of tracepoint programs (no kprobes, no fentry):
 *   syscalls.h the syscalls followed, attached as classic or raw tracepoints (chosen per kernel)
 *   sockets.h  which fds are sockets, TCP connection lifecycle events
 *   data.h     the bytes of reads and writes, classified once per socket
 *   http1.h    HTTP/1 judged here: healthy exchanges become aggregates, not records
 *   http2.h    HTTP/2 frame walk: headers cross, DATA payloads do not
 *   tcp.h      resets and retransmits (optional)
 *   records.h  ring-buffer records reserved and filled in place
 * common.h holds the configuration, the maps and the counters; netintel.h the records and keys
 * shared with Go.
 */
#include "common.h"
#include "sockets.h"
#include "data.h"
#include "syscalls.h"
#include "tcp.h"

char LICENSE[] SEC("license") = "GPL";
