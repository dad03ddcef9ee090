//go:build linux && (amd64 || arm64)

package capture

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestKernelReceiveAtExitWithPeek: receives are followed at their sys_exit alone, the
// arguments read back from the registers. A server that peeks at each request
// (recvfrom(MSG_PEEK) of its first 16 bytes, as protocol-sniffing servers do) before reading it
// sees each exchange once, whole (the peek is not taken for the request), with the request's
// sequence number the client's socket gave it.
func TestKernelReceiveAtExitWithPeek(t *testing.T) {
	_, c := sharedKernel(t) // judging off: every exchange is sent
	ln, err := net.Listen("tcp4", "127.0.0.93:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	paths := []string{"/peek/first", "/peek/second"}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(waitBudget))
		raw, err := conn.(*net.TCPConn).SyscallConn()
		if err != nil {
			return
		}
		for range paths {
			peek := make([]byte, 16)
			var n int
			var perr error
			if err := raw.Read(func(fd uintptr) bool {
				n, _, perr = unix.Recvfrom(int(fd), peek, unix.MSG_PEEK)
				return perr != unix.EAGAIN
			}); err != nil || perr != nil || !bytes.HasPrefix(peek[:n], []byte("GET ")) {
				return
			}
			if answerHead(conn) != nil {
				return
			}
		}
	}()
	conn, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitBudget))
	for _, path := range paths {
		if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: s\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		expect200(t, conn)
	}
	httpMarker(t, c, "127.0.0.94:0")
	var server, client []*HTTP1Event
	for _, ev := range c.snapshot() {
		if d := ev.Data; d != nil && (d.Socket.Local.String() == addr || d.Socket.Remote.String() == addr) {
			t.Errorf("raw bytes crossed: %q", d.Payload)
		}
		if x := ev.HTTP1; x != nil {
			if x.Socket.Local.String() == addr {
				server = append(server, x)
			} else if x.Socket.Remote.String() == addr {
				client = append(client, x)
			}
		}
	}
	if len(server) != 2 || len(client) != 2 {
		c.dump(t)
		t.Fatalf("%d server and %d client exchanges, want 2 each", len(server), len(client))
	}
	for i, path := range paths {
		s, cl := server[i], client[i]
		if !strings.HasPrefix(string(s.Request), "GET "+path+" ") || s.Status != 200 {
			t.Errorf("server exchange %d: %q %d, want GET %s 200", i, s.Request, s.Status, path)
		}
		if s.RequestSeq != cl.RequestSeq {
			t.Errorf("%s: the server read the request at sequence %d, the client sent it at %d", path, s.RequestSeq, cl.RequestSeq)
		}
	}
}
