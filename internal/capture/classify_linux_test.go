//go:build linux && (amd64 || arm64)

package capture

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// echoExchanges opens a connection to an echo server and runs one exchange per payload.
func echoExchanges(t *testing.T, ln net.Listener, payloads ...[]byte) {
	t.Helper()
	exchanges(t, ln, payloads, payloads)
}

// exchanges opens a connection to a server that answers the i-th request with replies[i].
func exchanges(t *testing.T, ln net.Listener, requests, replies [][]byte) {
	t.Helper()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		for i := range requests {
			if _, err := io.ReadFull(conn, buf[:len(requests[i])]); err != nil {
				return
			}
			_, _ = conn.Write(replies[i])
		}
	}()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	for i, p := range requests {
		if _, err := conn.Write(p); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conn, buf[:len(replies[i])]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKernelClassification drives connections whose first bytes are (or are not) a protocol
// the config asks for, and checks what crosses after the first exchange: HTTP/1 is judged in
// the kernel (its exchanges come whole), HTTP/2 frames cross, TLS stops after its hellos, and
// bytes of no protocol stop after their first exchange.
func TestKernelClassification(t *testing.T) {
	tlsClientHello := []byte{0x16, 0x03, 0x01, 0x00, 0x31, 0x01, 0x00, 0x00, 0x2d, 0x03, 0x03}
	h2Preface := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
	h2Ping := []byte("\x00\x00\x08\x06\x00\x00\x00\x00\x00pingpong")
	http1 := []byte("POST /api HTTP/1.1\r\nHost: c\r\nContent-Length: 0\r\n\r\n")
	junk := []byte("\x00\x01binary-protocol")
	second := []byte("second-exchange-bytes")
	// Loading takes seconds (a quarter of a minute under QEMU's TCG): cases share one source per
	// set of options. The port hint is a fixed port, so its source can be loaded before it.
	const hintPort = 18091
	httpOff := func(o *Options) { o.HTTP, o.HTTPS = false, false }
	hinted := func(o *Options) { o.HTTPPorts = []uint16{hintPort} }
	cases := []struct {
		name     string
		first    []byte
		second   []byte
		variant  string // "" default options, or a key of variants
		port     int
		wantKept bool
	}{
		{"http2 preface", h2Preface, h2Ping, "", 0, true},
		{"http2 preface with only grpc on", h2Preface, h2Ping, "http_off", 0, true},
		{"tls client hello: nothing after the hellos", tlsClientHello, second, "", 0, false},
		{"unknown bytes", junk, second, "", 0, false},
		{"http switched off", http1, second, "http_off", 0, false},
		{"https switched off", tlsClientHello, second, "http_off", 0, false},
		{"unknown bytes on an http port hint", junk, second, "hinted", hintPort, true},
	}
	_, shared := sharedKernel(t)
	sources := map[string]*collector{"": shared}
	for name, set := range map[string]func(o *Options){"http_off": httpOff, "hinted": hinted} {
		opts := DefaultOptions()
		set(&opts)
		_, sources[name] = startKernel(t, opts)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp4", netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 1, byte(10 + i)}), uint16(tc.port)).String())
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			c := sources[tc.variant]
			echoExchanges(t, ln, tc.first, tc.second)
			dnsMarker(t, c, [4]byte{127, 0, 1, byte(60 + i)})
			server := addrPort(ln.Addr())
			firstSeen, secondSeen := 0, 0
			for _, ev := range c.snapshot() {
				if ev.Data == nil || (ev.Data.Socket.Local != server && ev.Data.Socket.Remote != server) {
					continue
				}
				switch {
				case bytes.Equal(ev.Data.Payload, tc.first):
					firstSeen++
				case bytes.Equal(ev.Data.Payload, tc.second):
					secondSeen++
				}
			}
			if firstSeen != 4 {
				t.Errorf("first exchange: %d events, want 4 (it always crosses)", firstSeen)
			}
			if tc.wantKept && secondSeen != 4 {
				t.Errorf("second exchange: %d events, want 4 (connection classified)", secondSeen)
			}
			if !tc.wantKept && secondSeen != 0 {
				t.Errorf("second exchange: %d events, want 0 (connection not followed)", secondSeen)
			}
		})
	}
	t.Run("http1 judged in the kernel", func(t *testing.T) {
		ln, err := net.Listen("tcp4", "127.0.1.30:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		reply := []byte("HTTP/1.1 204 No Content\r\n\r\n")
		exchanges(t, ln, [][]byte{http1, http1}, [][]byte{reply, reply})
		httpMarker(t, shared, "127.0.1.99:0")
		server := addrPort(ln.Addr())
		exchangesSeen := 0
		for _, ev := range shared.snapshot() {
			if ev.Data != nil && (ev.Data.Socket.Local == server || ev.Data.Socket.Remote == server) {
				t.Errorf("raw data event on a judged HTTP/1 connection: %q", ev.Data.Payload)
			}
			if x := ev.HTTP1; x != nil && (x.Socket.Local == server || x.Socket.Remote == server) {
				if x.Status != 204 || !bytes.Equal(x.Request, http1) {
					t.Errorf("exchange status %d request %q", x.Status, x.Request)
				}
				exchangesSeen++
			}
		}
		// Judging is off in DefaultOptions: both exchanges, from both ends.
		if exchangesSeen != 4 {
			t.Errorf("%d HTTP/1 exchanges, want 4", exchangesSeen)
		}
	})
}

func TestKernelPayloadTruncated(t *testing.T) {
	opts := DefaultOptions()
	opts.MaxPayloadBytes = 64
	ln, err := net.Listen("tcp4", "127.0.0.42:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	opts.HTTPPorts = []uint16{addrPort(ln.Addr()).Port()} // a hinted port: its bytes cross raw
	src, c := startKernel(t, opts)
	before := src.Counters().PayloadTruncated
	req := append([]byte("\x00\x01raw-protocol "), bytes.Repeat([]byte("p"), 900)...)
	echoExchanges(t, ln, req)
	local := addrPort(ln.Addr())
	e := c.waitData(t, "truncated request", func(e *DataEvent) bool { return e.Socket.Remote == local && e.Direction == DirectionSend })
	if len(e.Payload) != 64 || e.Size != len(req) || !e.Truncated || !bytes.Equal(e.Payload, req[:64]) {
		t.Errorf("payload %d bytes, size %d, truncated %v", len(e.Payload), e.Size, e.Truncated)
	}
	if src.Counters().PayloadTruncated == before {
		t.Error("PayloadTruncated did not move")
	}
}

// TestKernelVectoredAndMsgSyscalls covers writev/readv and sendmsg on TCP (more iovecs than the
// two the kernel reads in one call) and sendmsg/recvmsg on UDP.
func TestKernelVectoredAndMsgSyscalls(t *testing.T) {
	_, c := sharedKernel(t)
	ln, err := net.Listen("tcp4", "127.0.0.43:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	status, headers, end := []byte("HTTP/1.1 204 No Content\r\n"), []byte("Server: vec\r\n"), []byte("\r\n")
	serverDone := make(chan []byte, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			serverDone <- nil
			return
		}
		defer conn.Close()
		raw, _ := conn.(*net.TCPConn).SyscallConn()
		buf := make([]byte, 256)
		var n int
		var rerr error
		_ = raw.Read(func(fd uintptr) bool {
			n, rerr = unix.Readv(int(fd), [][]byte{buf})
			return rerr != unix.EAGAIN
		})
		bufs := net.Buffers{status, headers, end}
		_, _ = bufs.WriteTo(conn) // writev of three iovecs
		serverDone <- buf[:max(n, 0)]
	}()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head, mid, tail := []byte("GET /vec HTTP/1.1\r\n"), []byte("Host: v\r\n"), []byte("\r\n")
	raw, _ := conn.(*net.TCPConn).SyscallConn()
	var serr error
	if err := raw.Write(func(fd uintptr) bool {
		_, serr = unix.SendmsgBuffers(int(fd), [][]byte{head, mid, tail}, nil, nil, 0) // sendmsg, three iovecs
		return serr != unix.EAGAIN
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	got := <-serverDone
	if !bytes.HasPrefix(got, head) {
		t.Fatalf("server read %q", got)
	}
	reply := make([]byte, 256)
	_ = raw.Read(func(fd uintptr) bool {
		_, rerr := unix.Readv(int(fd), [][]byte{reply})
		return rerr != unix.EAGAIN
	})
	client := addrPort(conn.LocalAddr())
	cx := c.waitHTTP1(t, "client exchange", func(e *HTTP1Event) bool { return e.Socket.Local == client })
	// Of a vectored write, the first iovec is what the kernel reads; the size is the whole call.
	if !bytes.Equal(cx.Request, head) || cx.RequestSize != len(head)+len(mid)+len(tail) || cx.Status != 204 {
		t.Errorf("client exchange: request %q size %d status %d", cx.Request, cx.RequestSize, cx.Status)
	}
	sx := c.waitHTTP1(t, "server exchange", func(e *HTTP1Event) bool { return e.Socket.Remote == client })
	if !bytes.Equal(sx.Request, bytes.Join([][]byte{head, mid, tail}, nil)) || !bytes.Equal(sx.Response, status) || sx.RequestSeq != cx.RequestSeq {
		t.Errorf("server exchange: request %q response %q seq %d (client %d)", sx.Request, sx.Response, sx.RequestSeq, cx.RequestSeq)
	}

	// UDP: sendmsg from an unconnected socket, recvmsg on the other; the remote address comes
	// from msg_name.
	a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 44)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 45)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: 0x1234}, Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("msg.test."), Type: dnsmessage.TypeAAAA, Class: dnsmessage.ClassINET}}}
	qb, _ := q.Pack()
	if _, _, err := b.WriteMsgUDP(qb, nil, a.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := a.ReadMsgUDP(make([]byte, 512), nil); err != nil {
		t.Fatal(err)
	}
	aAddr, bAddr := addrPort(a.LocalAddr()), addrPort(b.LocalAddr())
	sent := c.waitData(t, "sendmsg", func(e *DataEvent) bool { return e.Socket.Local == bAddr && e.Direction == DirectionSend })
	recv := c.waitData(t, "recvmsg", func(e *DataEvent) bool { return e.Socket.Local == aAddr && e.Direction == DirectionRecv })
	if sent.Socket.Remote != aAddr || recv.Socket.Remote != bAddr {
		t.Errorf("remote from msg_name: sendmsg %v (want %v), recvmsg %v (want %v)", sent.Socket.Remote, aAddr, recv.Socket.Remote, bAddr)
	}
	if !bytes.Equal(sent.Payload, qb) || !bytes.Equal(recv.Payload, qb) || recv.Process.PID != uint32(os.Getpid()) {
		t.Errorf("payloads: sent %x recv %x", sent.Payload, recv.Payload)
	}
}

// TestKernelStopSocket: after user space asks to stop a socket whose bytes cross (HTTP/2 frames
// here), its next reads and writes send nothing, and the kernel counts it; a connection beside it
// that was not stopped keeps crossing.
func TestKernelStopSocket(t *testing.T) {
	src, c := sharedKernel(t)
	h2Preface := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
	ping := []byte("\x00\x00\x08\x06\x00\x00\x00\x00\x00pingpong")
	type pair struct {
		ln     net.Listener
		client net.Conn
	}
	open := func(addr string) pair {
		ln, err := net.Listen("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = io.Copy(conn, conn) // echo
		}()
		conn, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return pair{ln, conn}
	}
	roundTrip := func(p pair, b []byte) {
		if _, err := p.client.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(p.client, make([]byte, len(b))); err != nil {
			t.Fatal(err)
		}
	}
	stopped, kept := open("127.0.1.40:0"), open("127.0.1.41:0")
	for _, p := range []pair{stopped, kept} {
		roundTrip(p, h2Preface)
		roundTrip(p, ping)
	}
	dnsMarker(t, c, [4]byte{127, 0, 1, 42})
	seen := func(p pair) (n int, cookie uint64) {
		server := addrPort(p.ln.Addr())
		for _, ev := range c.snapshot() {
			// The client's side: the echo server splices (io.Copy), so its side has no reads.
			if ev.Data != nil && ev.Data.Socket.Remote == server && ev.Data.Direction == DirectionSend && bytes.Equal(ev.Data.Payload, ping) {
				n++
				cookie = ev.Data.Socket.Cookie
			}
		}
		return n, cookie
	}
	before, cookie := seen(stopped)
	if before == 0 || cookie == 0 {
		t.Fatalf("the client's HTTP/2 frames did not cross before the stop (%d events)", before)
	}
	keptBefore, _ := seen(kept)
	counted := src.Counters().Kernel[kcStoppedByUser]
	if err := src.StopSocket(cookie); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		roundTrip(stopped, ping)
		roundTrip(kept, ping)
	}
	dnsMarker(t, c, [4]byte{127, 0, 1, 43})
	if after, _ := seen(stopped); after != before {
		t.Errorf("stopped socket: %d frame events after the stop, want none", after-before)
	}
	if after, _ := seen(kept); after != keptBefore+3 {
		t.Errorf("socket not stopped: %d frame events after, want 3 (it keeps crossing)", after-keptBefore)
	}
	if got := src.Counters().Kernel[kcStoppedByUser] - counted; got != 1 {
		t.Errorf("stopped_by_user_space moved by %d, want 1", got)
	}
}
