// Command netintel-hooks is the benchmark's floor: no-op classic tracepoint programs on the
// syscalls netintel's data path runs on per HTTP request (write and writev at their enter, read
// and recvfrom at their exit), attached until SIGTERM. A session with it and without the
// collector says what the hooks alone cost, apart from what netintel's programs and collector do.
package main

import (
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// hooks are the tracepoints the collector's programs run on per request under nginx + wrk (the
// per-program table of bench/results.md).
var hooks = []string{"sys_exit_read", "sys_enter_write", "sys_enter_writev", "sys_exit_recvfrom"}

func main() {
	var links []link.Link
	for _, tp := range hooks {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bench_noop", Type: ebpf.TracePoint, License: "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
		if err != nil {
			log.Fatalf("netintel-hooks: load: %v", err)
		}
		l, err := link.Tracepoint("syscalls", tp, prog, nil)
		if err != nil {
			log.Fatalf("netintel-hooks: attach %s: %v", tp, err)
		}
		links = append(links, l)
	}
	fmt.Printf("attached %d no-op programs\n", len(links))
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
	for _, l := range links {
		_ = l.Close()
	}
}
