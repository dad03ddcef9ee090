//go:build linux && (amd64 || arm64)

// Command netintel-record records live kernel capture events into a recording
// (internal/capture/testdata/*.events, JSON lines) that capture.NewReplay plays back, so the
// stages above capture can be tested on real traffic without privileges.
//
//	sudo go run ./internal/capture/cmd/netintel-record -o internal/capture/testdata/nginx.events \
//	    -port 8080 -duration 10s
//
// Run the traffic (curl, nginx, dig, ...) while it records; it stops after -duration, -max
// events or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/netintel/netintelreceiver/internal/capture"
)

func main() {
	out := flag.String("o", "", "recording file to write (required)")
	duration := flag.Duration("duration", 10*time.Second, "how long to record")
	maxEvents := flag.Int("max", 100000, "stop after this many recorded events")
	ports := flag.String("port", "", "comma-separated ports: keep only events with one of them as local or remote port")
	comm := flag.String("comm", "", "keep only events of processes with this comm (data events; conn events of their sockets by port)")
	payload := flag.Int("payload", capture.DefaultMaxPayloadBytes, "max payload bytes per read/write")
	flag.Parse()
	if *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, *duration, *maxEvents, *ports, *comm, *payload); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(out string, duration time.Duration, maxEvents int, portList, comm string, payload int) error {
	var keepPorts []uint16
	for _, p := range strings.Split(portList, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return fmt.Errorf("bad port %q: %w", p, err)
		}
		keepPorts = append(keepPorts, uint16(n))
	}
	opts := capture.DefaultOptions()
	opts.MaxPayloadBytes = payload
	opts.ExcludePID = uint32(os.Getpid())
	src, err := capture.NewEBPF(opts, zap.NewNop())
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	if err := src.Start(ctx); err != nil {
		return err
	}
	defer src.Close()
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	rec := capture.NewRecorder(f)
	keep := func(s capture.Socket, c string) bool {
		if comm != "" && c != comm {
			return false
		}
		return len(keepPorts) == 0 || slices.Contains(keepPorts, s.Local.Port()) || slices.Contains(keepPorts, s.Remote.Port())
	}
	n := 0
	fmt.Fprintf(os.Stderr, "recording to %s for %v ...\n", out, duration)
	for n < maxEvents {
		select {
		case <-ctx.Done():
			fmt.Fprintf(os.Stderr, "%d events recorded; counters %+v\n", n, src.Counters())
			return nil
		case ev, ok := <-src.Events():
			if !ok {
				return nil
			}
			var s capture.Socket
			var c string
			if ev.Conn != nil {
				s, c = ev.Conn.Socket, ""
				if comm != "" && ev.Conn.Process.Comm == comm {
					c = comm
				} else if comm != "" {
					continue
				}
			} else {
				s, c = ev.Data.Socket, ev.Data.Process.Comm
			}
			if !keep(s, c) {
				continue
			}
			if err := rec.Record(ev); err != nil {
				return err
			}
			n++
		}
	}
	fmt.Fprintf(os.Stderr, "%d events recorded (max); counters %+v\n", n, src.Counters())
	return nil
}
