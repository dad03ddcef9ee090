//go:build linux && (amd64 || arm64)

package capture

import (
	"context"
	"io"
	"net"
	"testing"
)

// BenchmarkLoopbackRoundTrip measures one HTTP-sized request/response round trip on a
// keep-alive loopback connection without and with the capture attached (its events drained),
// so the ratio of the two is the per-syscall cost of the kernel programs.
func BenchmarkLoopbackRoundTrip(b *testing.B) {
	for _, capture := range []bool{false, true} {
		name := "capture=off"
		if capture {
			name = "capture=on"
		}
		b.Run(name, func(b *testing.B) {
			if capture {
				if err := Check(); err != nil {
					b.Skipf("kernel capture unavailable: %v", err)
				}
				src, err := NewEBPF(DefaultOptions(), nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := src.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				defer src.Close()
				go func() {
					for range src.Events() {
					}
				}()
			}
			ln, err := net.Listen("tcp4", "127.0.0.46:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			req := []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nUser-Agent: netintel-bench\r\n\r\n")
			resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				buf := make([]byte, len(req))
				for {
					if _, err := io.ReadFull(conn, buf); err != nil {
						return
					}
					if _, err := conn.Write(resp); err != nil {
						return
					}
				}
			}()
			conn, err := net.Dial("tcp4", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			buf := make([]byte, len(resp))
			b.ResetTimer()
			for b.Loop() {
				if _, err := conn.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(conn, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
