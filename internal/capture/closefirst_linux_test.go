//go:build linux && (amd64 || arm64)

package capture

import (
	"io"
	"net"
	"testing"
	"time"
)

// closePair opens a TCP connection on listen, lets closer() end it and returns the client's
// and the server's ConnClosed events.
func closePair(t *testing.T, c *collector, listen string, closer func(client, server *net.TCPConn)) (client, server *ConnEvent) {
	t.Helper()
	ln, err := net.Listen("tcp4", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *net.TCPConn, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- conn.(*net.TCPConn)
	}()
	cc, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	if sc == nil {
		t.Fatal("accept failed")
	}
	clientAddr, serverAddr := addrPort(cc.LocalAddr()), addrPort(ln.Addr())
	closer(cc.(*net.TCPConn), sc)
	client = c.waitConn(t, "client closed", func(e *ConnEvent) bool {
		return e.Kind == ConnClosed && e.Socket.Local == clientAddr && e.Socket.Remote == serverAddr
	})
	server = c.waitConn(t, "server closed", func(e *ConnEvent) bool {
		return e.Kind == ConnClosed && e.Socket.Local == serverAddr && e.Socket.Remote == clientAddr
	})
	return client, server
}

// closeAfterEOF closes first, then waits (bounded) for the other end's EOF before closing it.
func closeAfterEOF(t *testing.T, first, second *net.TCPConn) {
	t.Helper()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	_ = second.SetReadDeadline(time.Now().Add(waitBudget))
	if _, err := io.Copy(io.Discard, second); err != nil {
		t.Fatalf("waiting for the FIN: %v", err)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestKernelLocalClosedFirst asserts which socket of a connection reports having closed first:
// the one whose state went ESTABLISHED -> FIN_WAIT1, never the one that went to CLOSE_WAIT,
// and neither when the connection was reset.
func TestKernelLocalClosedFirst(t *testing.T) {
	_, c := sharedKernel(t)

	client, server := closePair(t, c, "127.0.0.57:0", func(cc, sc *net.TCPConn) { closeAfterEOF(t, cc, sc) })
	if !client.LocalClosedFirst || server.LocalClosedFirst {
		t.Errorf("client closed first: client LocalClosedFirst=%v (want true), server %v (want false)", client.LocalClosedFirst, server.LocalClosedFirst)
	}

	client, server = closePair(t, c, "127.0.0.58:0", func(cc, sc *net.TCPConn) { closeAfterEOF(t, sc, cc) })
	if client.LocalClosedFirst || !server.LocalClosedFirst {
		t.Errorf("server closed first: client LocalClosedFirst=%v (want false), server %v (want true)", client.LocalClosedFirst, server.LocalClosedFirst)
	}

	// SO_LINGER 0: the client's close sends a RST; neither side sent a FIN.
	client, server = closePair(t, c, "127.0.0.59:0", func(cc, sc *net.TCPConn) {
		if err := cc.SetLinger(0); err != nil {
			t.Fatal(err)
		}
		_ = cc.Close()
		_ = sc.SetReadDeadline(time.Now().Add(waitBudget))
		_, _ = io.Copy(io.Discard, sc) // ends with ECONNRESET
		_ = sc.Close()
	})
	if client.LocalClosedFirst || server.LocalClosedFirst {
		t.Errorf("reset: client LocalClosedFirst=%v, server %v (want false, false)", client.LocalClosedFirst, server.LocalClosedFirst)
	}
}
