package capture

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netintel/netintelreceiver/bpf"
)

// TestKernelFdCacheFollowsTheFd checks the fd table's hot copy (fd_cache) against what an fd
// names now, not what it named: a client socket's fd is used (its slot filled), duplicated, and
// closed; the same fd number then names a file, written and read with HTTP bytes while the socket
// lives on through the duplicate. The file's bytes must never be taken for the socket's (a
// stale slot would hand them to the live socket's state), and the socket's next exchange, on the
// duplicate, is judged as its own.
func TestKernelFdCacheFollowsTheFd(t *testing.T) {
	_, c := sharedKernel(t)
	c = c.view()
	ln, err := net.Listen("tcp4", "127.0.0.47:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
			_ = req.Body.Close()
		}
	}()

	// A blocking socket driven by plain syscalls, so the test knows its fd numbers.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := ln.Addr().(*net.TCPAddr)
	sa := &unix.SockaddrInet4{Port: srv.Port}
	copy(sa.Addr[:], srv.IP.To4())
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	exchange := func(fd int, route string) {
		t.Helper()
		req := "GET " + route + " HTTP/1.1\r\nHost: fdcache\r\n\r\n"
		if _, err := unix.Write(fd, []byte(req)); err != nil {
			t.Fatal(err)
		}
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
		var got []byte
		buf := make([]byte, 256)
		for !bytes.Contains(got, []byte("\r\n\r\n")) {
			n, err := unix.Read(fd, buf)
			if err != nil || n == 0 {
				t.Fatalf("%s: read %q: %v", route, got, err)
			}
			got = append(got, buf[:n]...)
		}
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	l4 := local.(*unix.SockaddrInet4)
	client := netip.AddrPortFrom(netip.AddrFrom4(l4.Addr), uint16(l4.Port))
	exchange(fd, "/fdcache/before") // the fd's slot is filled by its reads and writes
	c.waitHTTP1(t, "exchange before the close", func(e *HTTP1Event) bool {
		return e.Socket.Local == client && bytes.HasPrefix(e.Request, []byte("GET /fdcache/before "))
	})

	dup, err := unix.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dup)
	if err := unix.Close(fd); err != nil {
		t.Fatal(err)
	}
	// The lowest free fd is most likely the one just closed; if not, the file is moved onto it
	// (dup2 replaces an fd too, and must empty its slot the same way).
	path := filepath.Join(t.TempDir(), "not-a-socket")
	file, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if file != fd {
		t.Logf("open gave fd %d, not %d: moved onto it with dup3", file, fd)
		if err := unix.Dup3(file, fd, 0); err != nil {
			t.Fatal(err)
		}
		unix.Close(file)
	}
	defer unix.Close(fd)
	fileReq := []byte("GET /fdcache/file HTTP/1.1\r\nHost: fdcache\r\n\r\n")
	fileResp := []byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
	for i := 0; i < 3; i++ {
		if _, err := unix.Write(fd, fileReq); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(fd, fileResp); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	if n, err := unix.Read(fd, buf); err != nil || n == 0 {
		t.Fatalf("read the file back: %d, %v", n, err)
	}

	// The socket, alive through its duplicate, has its next exchange judged as its own.
	exchange(dup, "/fdcache/after")
	after := c.waitHTTP1(t, "client exchange after the close", func(e *HTTP1Event) bool {
		return e.Socket.Local == client && !bytes.HasPrefix(e.Request, []byte("GET /fdcache/before "))
	})
	if !bytes.HasPrefix(after.Request, []byte("GET /fdcache/after ")) || after.Status != 200 {
		t.Errorf("the socket's exchange after the close: request %q status %d, want GET /fdcache/after and 200 (the file's bytes taken for the socket's?)", after.Request, after.Status)
	}
	time.Sleep(200 * time.Millisecond) // anything the file's bytes set off would be here by now
	for _, ev := range c.snapshot() {
		switch {
		case ev.HTTP1 != nil && (bytes.Contains(ev.HTTP1.Request, []byte("/fdcache/file")) || ev.HTTP1.Status == 500):
			t.Errorf("the file's bytes were taken for the socket's: exchange %q status %d on %v", ev.HTTP1.Request, ev.HTTP1.Status, ev.HTTP1.Socket)
		case ev.Data != nil && strings.Contains(string(ev.Data.Payload), "/fdcache/file"):
			t.Errorf("the file's bytes crossed as the socket's data: %q on %v", ev.Data.Payload, ev.Data.Socket)
		}
	}
}

// TestKernelNoStateForClosedSocket: a server that writes to a connection its client already
// reset (the reset's CLOSE freed the socket's state) must not make the socket a new state. No
// CLOSE comes to free it (closing a reset socket changes no state), and the next socket the
// kernel allocates at the same address finds it, with the dead connection's class: one judged
// as bytes of no protocol is then not judged as HTTP/1 at all (the flake of
// TestKernelReceiveAtExitWithPeek's marker). 40 connections one after another (the kernel reuses
// the address): each has an exchange, then the client resets it and the server writes bytes of no
// protocol to it; every connection's exchange must be judged on the server's side. The first
// connection is the healthy twin: no dead state precedes it.
func TestKernelNoStateForClosedSocket(t *testing.T) {
	_, c := sharedKernel(t) // judging off: every exchange is sent
	c = c.view()
	ln, err := net.Listen("tcp4", "127.0.0.48:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := addrPort(ln.Addr())
	const conns = 40
	for i := 0; i < conns; i++ {
		accepted := make(chan net.Conn, 1)
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				accepted <- nil
				return
			}
			accepted <- conn
		}()
		client, err := net.Dial("tcp4", srv.String())
		if err != nil {
			t.Fatal(err)
		}
		server := <-accepted
		if server == nil {
			t.Fatal("accept failed")
		}
		_ = server.SetDeadline(time.Now().Add(5 * time.Second))
		_ = client.SetDeadline(time.Now().Add(5 * time.Second))
		req := fmt.Sprintf("GET /closed/%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		resp := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
		if _, err := io.WriteString(client, req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(server, make([]byte, len(req))); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(server, resp); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, make([]byte, len(resp))); err != nil {
			t.Fatal(err)
		}
		if err := client.(*net.TCPConn).SetLinger(0); err != nil {
			t.Fatal(err)
		}
		client.Close() // a reset: the server's socket goes to CLOSE
		if _, err := server.Read(make([]byte, 16)); err == nil {
			t.Fatal("the server read data from a reset connection")
		}
		// The late write, traced at sys_enter, on a socket already closed: bytes of no protocol.
		_, _ = server.Write([]byte{0x00, 0x01, 'l', 'a', 't', 'e', 0x00, 0x02})
		server.Close()
	}
	// Each side's judged exchanges, by target: the kernel may give the dead socket's address to
	// the next connection's client socket or to its server socket.
	judged := func() map[string]int {
		got := map[string]int{}
		for _, ev := range c.snapshot() {
			if ev.HTTP1 == nil || (ev.HTTP1.Socket.Local != srv && ev.HTTP1.Socket.Remote != srv) {
				continue
			}
			if f := strings.Fields(string(ev.HTTP1.Request)); len(f) > 1 {
				got[f[1]]++
			}
		}
		return got
	}
	complete := func(got map[string]int) bool {
		for i := 0; i < conns; i++ {
			if got[fmt.Sprintf("/closed/%d", i)] < 2 {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(waitBudget)
	for !complete(judged()) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	got := judged()
	var missing []string
	for i := 0; i < conns; i++ {
		if p := fmt.Sprintf("/closed/%d", i); got[p] < 2 {
			missing = append(missing, fmt.Sprintf("%s (%d sides)", p, got[p]))
		}
	}
	if got["/closed/0"] < 2 {
		t.Errorf("the first connection's exchange was not judged on both sides: %d", got["/closed/0"])
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d connections, each after one reset and written to late, not judged on both sides (a socket found the dead socket's state at its address): %v", len(missing), conns, missing)
	}
}

// TestKernelFdCacheFillRacingClose: a write on a socket's fd (its first: fd_cache misses and the
// data path fills the slot) while another thread closes the fd. The close empties the slot and
// takes the fd out of fds; a fill that looked the fd up before the close and wrote the slot after
// it must not outlive it (the slot would name the closed socket for whatever the fd number names
// next). Each round makes a connected socket and lets the two threads go at once; after both,
// and before any other socket can take the fd's number, the fd's slot must not name it.
var raceSpin atomic.Int64

func TestKernelFdCacheFillRacingClose(t *testing.T) {
	src, _ := sharedKernel(t)
	ln, err := net.Listen("tcp4", "127.0.0.50:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := ln.Addr().(*net.TCPAddr)
	sa := &unix.SockaddrInet4{Port: srv.Port}
	copy(sa.Addr[:], srv.IP.To4())
	cache, fds := src.k.maps.Maps[bpf.NetintelMapFdCache], src.k.maps.Maps[bpf.NetintelMapFds]
	mask := fdCacheSlots(src.opts.MaxSockets) - 1
	tgid := uint32(unix.Getpid())
	req := []byte("GET /race HTTP/1.1\r\nHost: race\r\n\r\n")

	// The writer: a locked thread that writes to the fd it is handed once go is set.
	var fdNow, goFlag, done atomic.Int32
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		runtime.LockOSThread()
		for {
			for goFlag.Load() == 0 {
				select {
				case <-stop:
					return
				default:
				}
			}
			_, _ = unix.Write(int(fdNow.Load()), req)
			goFlag.Store(0)
			done.Add(1)
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const rounds = 3000
	stale := 0
	var hot bpf.NetintelFdHot
	for i := 0; i < rounds; i++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Connect(fd, sa); err != nil {
			unix.Close(fd)
			t.Fatal(err)
		}
		// Accepted now, so the server's fd is not the number the close frees.
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		fdNow.Store(int32(fd))
		want := done.Load() + 1
		goFlag.Store(1)
		for spin := (i * 7) % 1024; spin > 0; spin-- { // vary which of the two goes first, by ns
			raceSpin.Add(1)
		}
		unix.Close(fd)
		for done.Load() < want {
		}
		hk := uint64(tgid)<<32 | uint64(uint32(fd))
		var fe bpf.NetintelFdEntry
		k := bpf.NetintelFdKey{Tgid: tgid, Fd: int32(fd)}
		if cache.Lookup(fdCacheSlot(tgid, int32(fd), mask), &hot) == nil && hot.Key == hk &&
			(fds.Lookup(&k, &fe) != nil || fe.Sk != hot.Sk) {
			stale++
		}
		server.Close()
	}
	t.Logf("%d rounds: %d slots naming a closed fd", rounds, stale)
	if stale > 0 {
		t.Fatalf("%d of %d closes raced by a write left the fd's fd_cache slot naming the closed socket", stale, rounds)
	}
}
