//go:build linux && (amd64 || arm64)

package capture

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// dnsQuery packs a one-question A query.
func dnsQuery(t *testing.T, id uint16, name string) []byte {
	t.Helper()
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// udpSocket is a blocking IPv4 UDP socket bound to ip:0 with a receive timeout, so every
// receive in these tests is bounded in time.
func udpSocket(t *testing.T, ip [4]byte) (int, netip.AddrPort) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: ip}); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval((5 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	in := sa.(*unix.SockaddrInet4)
	return fd, netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port))
}

// rawSockaddr4 is the kernel image of a sockaddr_in.
func rawSockaddr4(ap netip.AddrPort) *unix.RawSockaddrInet4 {
	sa := &unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ap.Addr().As4()}
	// sin_port is in network byte order.
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
	return sa
}

// mmsgVector builds a struct mmsghdr array: one single-iovec message per buffer, each with
// its own sockaddr_in for msg_name (the destination for sendmmsg, filled in by recvmmsg).
type mmsgVector struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4
}

func newMmsgVector(bufs [][]byte, to netip.AddrPort) *mmsgVector {
	v := &mmsgVector{
		hdrs:  make([]unix.Mmsghdr, len(bufs)),
		iovs:  make([]unix.Iovec, len(bufs)),
		names: make([]unix.RawSockaddrInet4, len(bufs)),
	}
	for i, b := range bufs {
		if to.IsValid() {
			v.names[i] = *rawSockaddr4(to)
		}
		v.iovs[i].Base = &b[0]
		v.iovs[i].SetLen(len(b))
		h := &v.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&v.names[i]))
		h.Namelen = unix.SizeofSockaddrInet4
		h.Iov = &v.iovs[i]
		h.SetIovlen(1)
	}
	return v
}

// call runs sendmmsg or recvmmsg (trap) on fd with the whole vector and returns the number of
// messages the kernel reports.
func (v *mmsgVector) call(t *testing.T, trap uintptr, fd int) int {
	t.Helper()
	n, _, errno := unix.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&v.hdrs[0])), uintptr(len(v.hdrs)), 0, 0, 0)
	runtime.KeepAlive(v)
	if errno != 0 {
		t.Fatalf("syscall %d: %v", trap, errno)
	}
	return int(n)
}

// TestKernelSendmmsgRecvmmsg sends a vector of DNS queries with sendmmsg from an unconnected
// socket and receives them with recvmmsg: each of the first four messages of a call is a data
// event whose remote address comes from its msg_name and whose Size is its msg_len.
func TestKernelSendmmsgRecvmmsg(t *testing.T) {
	_, c := sharedKernel(t)
	server, serverAddr := udpSocket(t, [4]byte{127, 0, 0, 51})
	client, clientAddr := udpSocket(t, [4]byte{127, 0, 0, 52})

	// Five messages of different sizes; the programs report the first four (MAX_MMSG).
	names := []string{"first.mmsg.test.", "second-message.mmsg.test.", "3.mmsg.test.", "fourth.message.mmsg.test.", "fifth.mmsg.test."}
	queries := make([][]byte, len(names))
	for i, name := range names {
		queries[i] = dnsQuery(t, uint16(0x6d31+i), name)
	}
	const reported = 4
	send := newMmsgVector(queries, serverAddr)
	if n := send.call(t, unix.SYS_SENDMMSG, client); n != len(queries) {
		t.Fatalf("sendmmsg sent %d messages, want %d", n, len(queries))
	}
	// Loopback delivers within sendmmsg: every datagram is queued on the server socket
	// before recvmmsg runs, so one call returns them all.
	bufs := make([][]byte, len(queries))
	for i := range bufs {
		bufs[i] = make([]byte, 512)
	}
	recv := newMmsgVector(bufs, netip.AddrPort{})
	if n := recv.call(t, unix.SYS_RECVMMSG, server); n != len(queries) {
		t.Fatalf("recvmmsg received %d messages, want %d", n, len(queries))
	}

	pid := uint32(os.Getpid())
	for i, q := range queries[:reported] {
		sent := c.waitData(t, "sendmmsg message", func(e *DataEvent) bool {
			return e.Socket.Local == clientAddr && e.Direction == DirectionSend && bytes.Equal(e.Payload, q)
		})
		if sent.Socket.Remote != serverAddr || sent.Size != len(q) || sent.Truncated || sent.Socket.Transport != TransportUDP || sent.Process.PID != pid {
			t.Errorf("sendmmsg message %d event: remote %v (want %v) size %d (want %d) truncated %v transport %v pid %d",
				i, sent.Socket.Remote, serverAddr, sent.Size, len(q), sent.Truncated, sent.Socket.Transport, sent.Process.PID)
		}
		got := c.waitData(t, "recvmmsg message", func(e *DataEvent) bool {
			return e.Socket.Local == serverAddr && e.Direction == DirectionRecv && bytes.Equal(e.Payload, q)
		})
		if got.Socket.Remote != clientAddr || got.Size != len(q) || got.Process.PID != pid {
			t.Errorf("recvmmsg message %d event: remote %v (want %v) size %d (want %d) pid %d", i, got.Socket.Remote, clientAddr, got.Size, len(q), got.Process.PID)
		}
	}

	// A connected socket (what dig does): no msg_name, the remote comes from the socket.
	if err := unix.Connect(client, &unix.SockaddrInet4{Addr: serverAddr.Addr().As4(), Port: int(serverAddr.Port())}); err != nil {
		t.Fatal(err)
	}
	q3 := dnsQuery(t, 0x6d40, "connected.mmsg.test.")
	conn := newMmsgVector([][]byte{q3}, netip.AddrPort{})
	conn.hdrs[0].Hdr.Name, conn.hdrs[0].Hdr.Namelen = nil, 0
	if n := conn.call(t, unix.SYS_SENDMMSG, client); n != 1 {
		t.Fatalf("connected sendmmsg sent %d messages, want 1", n)
	}
	connected := c.waitData(t, "connected sendmmsg", func(e *DataEvent) bool {
		return e.Socket.Local == clientAddr && e.Direction == DirectionSend && bytes.Equal(e.Payload, q3)
	})
	if connected.Socket.Remote != serverAddr || connected.Size != len(q3) {
		t.Errorf("connected sendmmsg event: remote %v (want %v) size %d (want %d)", connected.Socket.Remote, serverAddr, connected.Size, len(q3))
	}
	c.record(t, serverAddr.Port())
}

// TestKernelDigQuery runs dig (bind9, which sends its queries with sendmmsg) against a tiny
// responder and asserts that dig's query and the answer it read were captured, with dig's pid.
func TestKernelDigQuery(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig not installed (Debian: bind9-dnsutils)")
	}
	_, c := sharedKernel(t)
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 53)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	serverAddr := addrPort(server.LocalAddr())
	name := dnsmessage.MustNewName("dig.netintel.test.")
	go func() {
		buf := make([]byte, 1500)
		for range 3 { // dig retries at most twice with +tries=3
			n, from, err := server.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil {
				continue
			}
			m.Header.Response = true
			m.Additionals = nil // no EDNS in the answer
			m.Answers = []dnsmessage.Resource{{
				Header: dnsmessage.ResourceHeader{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
				Body:   &dnsmessage.AResource{A: [4]byte{127, 0, 0, 54}},
			}}
			rb, err := m.Pack()
			if err != nil {
				return
			}
			_, _ = server.WriteToUDP(rb, from)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), waitBudget)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, dig, "@"+serverAddr.Addr().String(), "-p", strconv.Itoa(int(serverAddr.Port())),
		"+tries=3", "+time=2", "+short", "+nocookie", name.String(), "A")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	digPID := uint32(cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("dig: %v\n%s", err, out.Bytes())
	}
	if !bytes.Contains(out.Bytes(), []byte("127.0.0.54")) {
		t.Fatalf("dig did not get the answer: %s", out.Bytes())
	}

	question := func(p []byte) (dnsmessage.Header, dnsmessage.Question, bool) {
		var parser dnsmessage.Parser
		h, err := parser.Start(p)
		if err != nil {
			return h, dnsmessage.Question{}, false
		}
		q, err := parser.Question()
		return h, q, err == nil
	}
	// Comm is the thread's name: bind9 sends and receives on its "isc-net-NNNN" threads.
	query := c.waitData(t, "dig query", func(e *DataEvent) bool {
		return e.Process.PID == digPID && e.Direction == DirectionSend && e.Socket.Remote == serverAddr
	})
	if h, q, ok := question(query.Payload); !ok || h.Response || q.Name != name || query.Size < len(query.Payload) || query.Socket.Transport != TransportUDP {
		t.Errorf("dig query event: header %+v question %v ok %v size %d payload %d", h, q.Name, ok, query.Size, len(query.Payload))
	}
	answer := c.waitData(t, "dig answer", func(e *DataEvent) bool {
		return e.Process.PID == digPID && e.Direction == DirectionRecv && e.Socket.Remote == serverAddr
	})
	if h, q, ok := question(answer.Payload); !ok || !h.Response || q.Name != name {
		t.Errorf("dig answer event: header %+v question %v ok %v", h, q.Name, ok)
	}
	c.record(t, serverAddr.Port())
}

// TestKernelSendmmsgTCP: sendmmsg on a TCP connection (which no HTTP client does) is not
// followed — a byte stream judged in the kernel is read through write/send/sendmsg — and its
// messages are counted as not reported, never silently dropped.
func TestKernelSendmmsgTCP(t *testing.T) {
	src, c := sharedKernel(t)
	ln, err := net.Listen("tcp4", "127.0.0.60:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m1, m2 := []byte("\x00\x01first"), []byte("\x00\x02second")
	served := make(chan []byte, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			served <- nil
			return
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(waitBudget))
		buf := make([]byte, len(m1)+len(m2))
		n, _ := io.ReadFull(conn, buf)
		served <- buf[:n]
	}()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	before := src.Counters().Kernel[kcMmsgTruncated]
	v := newMmsgVector([][]byte{m1, m2}, netip.AddrPort{})
	for i := range v.hdrs {
		v.hdrs[i].Hdr.Name, v.hdrs[i].Hdr.Namelen = nil, 0
	}
	var sent int
	if err := raw.Control(func(fd uintptr) { sent = v.call(t, unix.SYS_SENDMMSG, int(fd)) }); err != nil {
		t.Fatal(err)
	}
	if sent != 2 {
		t.Fatalf("sendmmsg sent %d messages, want 2", sent)
	}
	if got := <-served; !bytes.Equal(got, append(append([]byte(nil), m1...), m2...)) {
		t.Fatalf("server read %q", got)
	}
	if got := src.Counters().Kernel[kcMmsgTruncated] - before; got != 2 {
		t.Errorf("mmsg_truncated moved by %d, want 2", got)
	}
	httpMarker(t, c, "127.0.0.61:0")
	client, server := addrPort(conn.LocalAddr()), addrPort(ln.Addr())
	for _, ev := range c.snapshot() {
		if ev.Data != nil && ev.Data.Socket.Local == client && ev.Data.Socket.Remote == server && ev.Data.Direction == DirectionSend {
			t.Errorf("TCP sendmmsg reported: %q", ev.Data.Payload)
		}
	}
}
