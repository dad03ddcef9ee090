//go:build linux && (amd64 || arm64)

package capture

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netintel/netintelreceiver/bpf"
)

// holdSocketEnv makes the test binary a child that connects to the address it names, makes one
// HTTP exchange, prints the socket's fd and waits on stdin: killed, it exits with the socket open.
const holdSocketEnv = "NETINTEL_TEST_HOLD_SOCKET"

func holdSocketChild(addr string) int {
	ap, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	sa := &unix.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	if err := unix.Connect(fd, sa); err != nil {
		fmt.Println("error", err)
		return 1
	}
	if _, err := unix.Write(fd, []byte("GET /exited HTTP/1.1\r\nHost: exited\r\n\r\n")); err != nil {
		fmt.Println("error", err)
		return 1
	}
	buf := make([]byte, 256)
	if _, err := unix.Read(fd, buf); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("fd", fd)
	_, _ = io.Copy(io.Discard, os.Stdin) // until killed
	return 0
}

// heldSocket is a child (holdSocketChild) connected to a listener of this process: the child, its
// socket's fd, and the fd of this process's accepted end. Test cleanup kills the child.
type heldSocket struct {
	child    *exec.Cmd
	fd       int
	serverFD int
}

func holdSocket(t *testing.T, listen string) heldSocket {
	t.Helper()
	ln, err := net.Listen("tcp4", listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		accepted <- conn
		if req, err := http.ReadRequest(bufio.NewReader(conn)); err == nil {
			_ = req.Body.Close()
			_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		}
	}()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(exe)
	child.Env = append(os.Environ(), holdSocketEnv+"="+ln.Addr().String())
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = child.Process.Kill(); _ = child.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "fd ") {
		t.Fatalf("child: %q %v", line, err)
	}
	fd, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "fd ")))
	if err != nil {
		t.Fatal(err)
	}
	conn := <-accepted
	t.Cleanup(func() { conn.Close() })
	h := heldSocket{child: child, fd: fd, serverFD: -1}
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.Control(func(f uintptr) { h.serverFD = int(f) })
	return h
}

// TestKernelSweepsExitedProcesses: a process killed with a socket open (the kernel closes it at
// exit, with no close() the fd table sees) leaves its fd entry behind; the sweep removes it, its
// owner and its fd_cache slot, and counts it. Its healthy twin: while the process lives, and for
// this test process's own sockets, the sweep removes nothing.
func TestKernelSweepsExitedProcesses(t *testing.T) {
	src, _ := sharedKernel(t)
	h := holdSocket(t, "127.0.0.49:0")
	fd, serverFD := h.fd, h.serverFD
	pid := uint32(h.child.Process.Pid)
	child := h.child

	maps := src.k.maps.Maps
	fds, owners, cache := maps[bpf.NetintelMapFds], maps[bpf.NetintelMapFdOwners], maps[bpf.NetintelMapFdCache]
	childKey := bpf.NetintelFdKey{Tgid: pid, Fd: int32(fd)}
	ownKey := bpf.NetintelFdKey{Tgid: uint32(os.Getpid()), Fd: int32(serverFD)}
	var fe bpf.NetintelFdEntry
	tracked := func(k bpf.NetintelFdKey) bool { return fds.Lookup(&k, &fe) == nil }
	var n uint32
	if !tracked(childKey) || owners.Lookup(pid, &n) != nil {
		t.Fatalf("the child's socket (pid %d, fd %d) is not in the fd table", pid, fd)
	}
	if !tracked(ownKey) {
		t.Fatalf("this process's accepted socket (fd %d) is not in the fd table", serverFD)
	}

	// Alive: the sweep keeps everything.
	before := src.Counters().ExitedFDs
	src.sweepExited()
	if !tracked(childKey) || !tracked(ownKey) {
		t.Fatal("a sweep removed the entry of a live process")
	}

	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if !tracked(childKey) {
		t.Log("the child's entry went at its exit without a sweep") // what the sweep is for is then gone
	}
	sw := src.sweepExited()
	t.Logf("sweep: %+v", sw)
	if tracked(childKey) {
		t.Fatalf("the killed child's fd entry (pid %d, fd %d) is still in the fd table", pid, fd)
	}
	if owners.Lookup(pid, &n) == nil {
		t.Fatalf("the killed child is still an fd owner (%d fds)", n)
	}
	hk := uint64(pid)<<32 | uint64(uint32(fd))
	var hot bpf.NetintelFdHot
	if cache.Lookup(fdCacheSlot(pid, int32(fd), fdCacheSlots(src.opts.MaxSockets)-1), &hot) == nil && hot.Key == hk {
		t.Fatal("the killed child's fd_cache slot still names it")
	}
	if got := src.Counters().ExitedFDs - before; got < 1 {
		t.Fatalf("ExitedFDs grew by %d, want at least 1", got)
	}
	if !tracked(ownKey) {
		t.Fatal("the sweep removed this live process's socket")
	}
}

// The sweep reads the node's processes only through a procfs of the initial PID namespace: the
// host's /proc is one; the procfs of a PID namespace of its own (a container without hostPID),
// made here by unshare, is not, and would have every owner look gone.
func TestProcShowsKernelPIDs(t *testing.T) {
	requireKernel(t)
	if ok, err := procShowsKernelPIDs("/proc"); !ok || err != nil {
		t.Fatalf("/proc: %v %v, want the kernel's pids", ok, err)
	}
	ns := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", "echo mounted; exec sleep 30")
	out, err := ns.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ns.Process.Kill(); _ = ns.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "mounted\n" {
		t.Fatalf("unshare: %q %v", line, err)
	}
	own := fmt.Sprintf("/proc/%d/root/proc", ns.Process.Pid)
	if _, err := os.Stat(own + "/1"); err != nil {
		t.Fatalf("the namespace's procfs: %v", err)
	}
	if ok, err := procShowsKernelPIDs(own); ok {
		t.Fatalf("%s (a PID namespace of its own) taken for the kernel's pids (%v)", own, err)
	}
}

// TestKernelStartsWithFullFdTable: more sockets open at start than the fd table holds (a busy
// node, a small capture.max_sockets) must not stop the capture: it starts, follows what fits and
// counts the rest. Here 12 connections of this process are open before a capture sized for 4.
// The twin: the shared capture, sized by default, dropped none at its start.
func TestKernelStartsWithFullFdTable(t *testing.T) {
	shared, _ := sharedKernel(t)
	if n := shared.Counters().SeedFDTableFull; n != 0 {
		t.Fatalf("the default-sized capture dropped %d sockets at its start", n)
	}
	ln, err := net.Listen("tcp4", "127.0.0.51:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for i := 0; i < 12; i++ {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	opts := DefaultOptions()
	opts.MaxSockets = 4
	src, _ := startKernel(t, opts) // fails the test if Start fails
	if n := src.Counters().SeedFDTableFull; n == 0 {
		t.Fatal("sockets open at start beyond the fd table's 4 entries were not counted")
	} else {
		t.Logf("not followed at start: %d", n)
	}
}

// TestKernelForgetsFdsOfReusedPid: a process killed with a socket open leaves its fd entry; when
// a new task takes its pid (forced here through ns_last_pid), the kernel removes the entry before
// that task runs, so the new process does not inherit the dead one's sockets, even before user
// space's sweep. The twin: this process's own socket stays.
func TestKernelForgetsFdsOfReusedPid(t *testing.T) {
	src, _ := sharedKernel(t)
	h := holdSocket(t, "127.0.0.52:0")
	fd, serverFD, pid := h.fd, h.serverFD, h.child.Process.Pid
	child := h.child

	fds := src.k.maps.Maps[bpf.NetintelMapFds]
	var fe bpf.NetintelFdEntry
	tracked := func(k bpf.NetintelFdKey) bool { return fds.Lookup(&k, &fe) == nil }
	childKey := bpf.NetintelFdKey{Tgid: uint32(pid), Fd: int32(fd)}
	ownKey := bpf.NetintelFdKey{Tgid: uint32(os.Getpid()), Fd: int32(serverFD)}
	_ = child.Process.Kill()
	_ = child.Wait()
	if !tracked(childKey) {
		t.Fatalf("the killed child's entry (pid %d, fd %d) is already gone", pid, fd)
	}
	stale := func() uint64 { return src.Counters().Kernel[kcStaleFDs] }
	before := stale()

	// The next pid the kernel gives is ns_last_pid + 1; another task may take it first, so retry.
	reused := false
	for try := 0; try < 50 && !reused; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Fatalf("force the pid's reuse: %v", err)
		}
		next := exec.Command("sleep", "5")
		if err := next.Start(); err != nil {
			t.Fatal(err)
		}
		reused = next.Process.Pid == pid
		_ = next.Process.Kill()
		_ = next.Wait()
	}
	if !reused {
		t.Fatalf("pid %d was not given again in 50 tries", pid)
	}
	if tracked(childKey) {
		t.Fatalf("a new process took pid %d, and the dead one's fd %d is still in the fd table", pid, fd)
	}
	if got := stale() - before; got < 1 {
		t.Fatalf("stale_fds_of_reused_pid grew by %d, want at least 1 (removed by the kernel, not the sweep)", got)
	}
	if !tracked(ownKey) {
		t.Fatal("this process's own socket left the fd table")
	}
}
