package capture

import (
	"errors"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// A connect that the kernel cannot route is reported as unreachable. The connect runs on one
// thread moved into a fresh network namespace whose loopback is down: no packet leaves.
func TestKernelUnreachableConnect(t *testing.T) {
	_, c := sharedKernel(t)
	target := netip.MustParseAddrPort("127.0.0.36:9")
	errc := make(chan error, 1)
	go func() {
		// The thread never returns to the scheduler's pool: the goroutine exits locked.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		errc <- unix.Connect(fd, &unix.SockaddrInet4{Port: int(target.Port()), Addr: target.Addr().As4()})
	}()
	err := <-errc
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("connect in an empty network namespace: %v, want ENETUNREACH", err)
	}
	ev := c.waitConn(t, "unreachable", func(e *ConnEvent) bool { return e.Kind == ConnFailed && e.Socket.Remote == target })
	if ev.Reason != FailureUnreachable || ev.Errno != int32(syscall.ENETUNREACH) {
		t.Errorf("reason %v errno %d, want unreachable", ev.Reason, ev.Errno)
	}
	if ev.Process.PID != uint32(os.Getpid()) || ev.Socket.Role != RoleClient {
		t.Errorf("failed connect: %+v", ev)
	}
}
