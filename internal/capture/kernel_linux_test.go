//go:build linux && (amd64 || arm64)

package capture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/net/dns/dnsmessage"
)

var recordPath = flag.String("record", "", "append the events of the test's own traffic to this recording (JSON lines), e.g. testdata/loopback.events")

// waitBudget bounds every wait for kernel events; it is a deadline, not a timed assertion.
const waitBudget = 10 * time.Second

// requireKernel skips without privileges, except in CI (CI=true runs as root), where a
// machine that cannot run the capture fails the test.
func requireKernel(t *testing.T) {
	t.Helper()
	err := Check()
	if err == nil {
		if caps, cerr := effectiveCaps(); cerr == nil && len(missingCaps(caps)) > 0 {
			err = fmt.Errorf("missing %v", missingCaps(caps))
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kernel capture unavailable in CI: %v", err)
		}
		t.Skipf("kernel capture unavailable: %v", err)
	}
}

// eventLog is what a source delivered, in order.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	done   chan struct{}
}

// collector drains a source into memory; a test sees the events from its view's start on. A
// shared source's log holds every earlier test's events too, and a loopback client's address
// (127.0.0.1 and an ephemeral port) comes round again: an earlier test's event must not match.
type collector struct {
	*eventLog
	from int
}

func collect(src Source) *collector {
	c := &collector{eventLog: &eventLog{done: make(chan struct{})}}
	go func() {
		defer close(c.done)
		for ev := range src.Events() {
			c.mu.Lock()
			c.events = append(c.events, ev)
			c.mu.Unlock()
		}
	}()
	return c
}

// view is the log from now on.
func (c *collector) view() *collector {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &collector{eventLog: c.eventLog, from: len(c.events)}
}

func (c *collector) snapshot() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events[c.from:]...)
}

// waitConn waits for a connection event matching pred.
func (c *collector) waitConn(t *testing.T, what string, pred func(*ConnEvent) bool) *ConnEvent {
	t.Helper()
	deadline := time.Now().Add(waitBudget)
	for time.Now().Before(deadline) {
		for _, ev := range c.snapshot() {
			if ev.Conn != nil && pred(ev.Conn) {
				return ev.Conn
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.dump(t)
	t.Fatalf("no %s event within %v", what, waitBudget)
	return nil
}

// waitData waits for a data event matching pred.
func (c *collector) waitData(t *testing.T, what string, pred func(*DataEvent) bool) *DataEvent {
	t.Helper()
	deadline := time.Now().Add(waitBudget)
	for time.Now().Before(deadline) {
		for _, ev := range c.snapshot() {
			if ev.Data != nil && pred(ev.Data) {
				return ev.Data
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.dump(t)
	t.Fatalf("no %s data event within %v", what, waitBudget)
	return nil
}

// waitHTTP1 waits for a kernel-judged HTTP/1 exchange matching pred.
func (c *collector) waitHTTP1(t *testing.T, what string, pred func(*HTTP1Event) bool) *HTTP1Event {
	t.Helper()
	deadline := time.Now().Add(waitBudget)
	for time.Now().Before(deadline) {
		for _, ev := range c.snapshot() {
			if ev.HTTP1 != nil && pred(ev.HTTP1) {
				return ev.HTTP1
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.dump(t)
	t.Fatalf("no %s HTTP/1 exchange within %v", what, waitBudget)
	return nil
}

// dump logs what was collected, for a failing wait.
func (c *collector) dump(t *testing.T) {
	t.Helper()
	evs := c.snapshot()
	t.Logf("%d events collected; the last ones:", len(evs))
	for _, ev := range evs[max(0, len(evs)-40):] {
		if ev.HTTP1 != nil {
			x := ev.HTTP1
			t.Logf("http1 %v->%v pid %d role %v status %d reasons %b req %q", x.Socket.Local, x.Socket.Remote, x.Process.PID, x.Socket.Role, x.Status, x.Reasons, x.Request[:min(len(x.Request), 30)])
			continue
		}
		if ev.Conn != nil {
			t.Logf("conn %v %v %v->%v pid %d %s role %v errno %d", ev.Conn.Kind, ev.Conn.Socket.Transport, ev.Conn.Socket.Local, ev.Conn.Socket.Remote, ev.Conn.Process.PID, ev.Conn.Process.Comm, ev.Conn.Socket.Role, ev.Conn.Errno)
		} else {
			t.Logf("data %v %v %v->%v pid %d %s role %v seq %d %q", ev.Data.Direction, ev.Data.Socket.Transport, ev.Data.Socket.Local, ev.Data.Socket.Remote, ev.Data.Process.PID, ev.Data.Process.Comm, ev.Data.Socket.Role, ev.Data.Seq, ev.Data.Payload[:min(len(ev.Data.Payload), 20)])
		}
	}
}

// record appends this test's events (those touching one of ports) to -record.
func (c *collector) record(t *testing.T, ports ...uint16) {
	t.Helper()
	if *recordPath == "" {
		return
	}
	f, err := os.OpenFile(*recordPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec := NewRecorder(f)
	mine := func(s Socket) bool {
		for _, p := range ports {
			if s.Local.Port() == p || s.Remote.Port() == p {
				return true
			}
		}
		return false
	}
	for _, ev := range c.snapshot() {
		if (ev.Conn != nil && mine(ev.Conn.Socket)) || (ev.Data != nil && mine(ev.Data.Socket)) {
			if err := rec.Record(ev); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// shared is one source on DefaultOptions for every test that needs nothing else: loading the
// programs takes seconds (tens of seconds under QEMU's TCG), so the kernel matrix would spend
// its time verifying. Tests tell their traffic apart by address.
// sharedSource is one loaded and started source that many tests read from: loading costs tens
// of seconds under QEMU's TCG, so tests that need no options of their own share one.
type sharedSource struct {
	once sync.Once
	src  *ebpfSource
	c    *collector
	err  error
}

var shared, sharedJ sharedSource

func (s *sharedSource) get(t *testing.T, opts Options) (*ebpfSource, *collector) {
	t.Helper()
	requireKernel(t)
	s.once.Do(func() {
		src, err := NewEBPF(opts, zap.NewNop())
		if err == nil {
			err = src.Start(context.Background())
		}
		if err != nil {
			s.err = err
			return
		}
		s.src = src.(*ebpfSource)
		s.c = collect(src)
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.src, s.c.view()
}

func sharedKernel(t *testing.T) (*ebpfSource, *collector) {
	t.Helper()
	return shared.get(t, DefaultOptions())
}

// closeShared releases the shared sources after the tests (TestMain).
func closeShared() {
	for _, s := range []*sharedSource{&shared, &sharedJ} {
		if s.src != nil {
			_ = s.src.Close()
		}
	}
}

func startKernel(t *testing.T, opts Options) (*ebpfSource, *collector) {
	t.Helper()
	requireKernel(t)
	src, err := NewEBPF(opts, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src.(*ebpfSource), collect(src)
}

func addrPort(a net.Addr) netip.AddrPort {
	return a.(interface{ AddrPort() netip.AddrPort }).AddrPort()
}

func TestKernelHTTPExchange(t *testing.T) {
	_, c := sharedKernel(t)
	httpExchange(t, c, "tcp4", "127.0.0.31:0")
}

func TestKernelHTTPExchangeIPv6(t *testing.T) {
	_, c := sharedKernel(t)
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	httpExchange(t, c, "tcp6", "[::1]:0")
}

// httpExchange runs one HTTP/1.1 request/response over a fresh connection and asserts the
// events of both ends.
func httpExchange(t *testing.T, c *collector, network, listen string) {
	t.Helper()
	pid := uint32(os.Getpid())
	ln, err := net.Listen(network, listen)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello from netintel")
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	serverAddr := addrPort(ln.Addr())

	conn, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	clientAddr := addrPort(conn.LocalAddr())
	const request = "GET /hello?x=1 HTTP/1.1\r\nHost: netintel.test\r\nUser-Agent: netintel-test\r\n\r\n"
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	resp.Body.Close()
	if string(body) != "hello from netintel" {
		t.Fatalf("body %q", body)
	}
	conn.Close()

	isClient := func(s Socket) bool { return s.Local == clientAddr && s.Remote == serverAddr }
	isServer := func(s Socket) bool { return s.Local == serverAddr && s.Remote == clientAddr }

	open := c.waitConn(t, "client open", func(e *ConnEvent) bool { return e.Kind == ConnOpened && isClient(e.Socket) })
	if open.Process.PID != pid || open.Socket.Role != RoleClient || open.Socket.Transport != TransportTCP {
		t.Errorf("client open: %+v", open)
	}
	sopen := c.waitConn(t, "server open", func(e *ConnEvent) bool { return e.Kind == ConnOpened && isServer(e.Socket) })
	if sopen.Process.PID != pid || sopen.Socket.Role != RoleServer {
		t.Errorf("server open: %+v", sopen)
	}

	// Judging is off in DefaultOptions: every exchange comes as the kernel's record, request
	// and response heads together, from each end.
	cx := c.waitHTTP1(t, "client exchange", func(e *HTTP1Event) bool { return isClient(e.Socket) })
	sx := c.waitHTTP1(t, "server exchange", func(e *HTTP1Event) bool { return isServer(e.Socket) })
	if string(cx.Request) != request || cx.RequestSize != len(request) {
		t.Errorf("client request %q size %d", cx.Request, cx.RequestSize)
	}
	if !bytes.Equal(sx.Request, cx.Request) {
		t.Errorf("server read %q, client wrote %q", sx.Request, cx.Request)
	}
	for _, x := range []*HTTP1Event{cx, sx} {
		if x.Status != 200 || !bytes.HasPrefix(x.Response, []byte("HTTP/1.1 200 OK\r\n")) {
			t.Errorf("response %d %q", x.Status, x.Response)
		}
		if x.RouteKey != RouteKey("/hello") {
			t.Errorf("route key %x, want the key of /hello", x.RouteKey)
		}
		if x.ResponseTime.Before(x.RequestTime) {
			t.Errorf("response at %v before request at %v", x.ResponseTime, x.RequestTime)
		}
		if x.Process.PID != pid || x.Socket.Transport != TransportTCP || x.Socket.Cookie == 0 {
			t.Errorf("exchange process/socket: %+v", x)
		}
	}
	// DESIGN §4: the request's first byte has one absolute sequence number on both ends, and
	// both ends agree on both ISNs.
	if cx.RequestSeq != sx.RequestSeq || cx.RequestSeq == 0 {
		t.Errorf("request seq: client %d server %d", cx.RequestSeq, sx.RequestSeq)
	}
	if cx.ResponseSeq != sx.ResponseSeq || cx.ResponseSeq == 0 {
		t.Errorf("response seq: client %d server %d", cx.ResponseSeq, sx.ResponseSeq)
	}
	if sx.ClientISN != cx.ClientISN || sx.ServerISN != cx.ServerISN {
		t.Errorf("ISNs differ: server %d/%d, client %d/%d", sx.ClientISN, sx.ServerISN, cx.ClientISN, cx.ServerISN)
	}
	// The first request byte follows the client's SYN; the first response byte the server's SYN.
	if cx.RequestSeq != cx.ClientISN+1 {
		t.Errorf("request seq %d, client ISN %d: want ISN+1", cx.RequestSeq, cx.ClientISN)
	}
	if sx.ResponseSeq != sx.ServerISN+1 {
		t.Errorf("response seq %d, server ISN %d: want ISN+1", sx.ResponseSeq, sx.ServerISN)
	}
	if cx.Socket.Role != RoleClient || sx.Socket.Role != RoleServer {
		t.Errorf("roles: client %v server %v", cx.Socket.Role, sx.Socket.Role)
	}

	cclose := c.waitConn(t, "client close", func(e *ConnEvent) bool { return e.Kind == ConnClosed && isClient(e.Socket) })
	if cclose.Process.PID != pid || cclose.BytesSent < uint64(len(request)) || cclose.BytesReceived == 0 {
		t.Errorf("client close: %+v", cclose)
	}
	srv.Close()
	c.waitConn(t, "server close", func(e *ConnEvent) bool { return e.Kind == ConnClosed && isServer(e.Socket) })
	c.record(t, serverAddr.Port())
}

func TestKernelRefusedConnect(t *testing.T) {
	_, c := sharedKernel(t)
	refusedConnect(t, c, "127.0.0.32")
}

func refusedConnect(t *testing.T, c *collector, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp4", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	target := addrPort(ln.Addr())
	ln.Close()
	if _, err := net.DialTimeout("tcp4", target.String(), 2*time.Second); err == nil {
		t.Fatal("connect to a closed port succeeded")
	}
	ev := c.waitConn(t, "refused", func(e *ConnEvent) bool { return e.Kind == ConnFailed && e.Socket.Remote == target })
	if ev.Reason != FailureRefused || ev.Errno != int32(syscall.ECONNREFUSED) {
		t.Errorf("reason %v errno %d, want refused", ev.Reason, ev.Errno)
	}
	if ev.Process.PID != uint32(os.Getpid()) || ev.Socket.Role != RoleClient {
		t.Errorf("failed connect: %+v", ev)
	}
	// A refusal is reported once, as a failure, not also as a reset of a connection.
	for _, e := range c.snapshot() {
		if e.Conn != nil && e.Conn.Kind == ConnResetReceived && e.Conn.Socket.Remote == target {
			t.Errorf("refused connect also reported as reset received: %+v", e.Conn)
		}
	}
	c.record(t, target.Port())
}

func TestKernelReset(t *testing.T) {
	_, c := sharedKernel(t)
	resetExchange(t, c, "127.0.0.33")
}

func resetExchange(t *testing.T, c *collector, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp4", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			accepted <- conn
		}
		close(accepted)
	}()
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	serverAddr, clientAddr := addrPort(ln.Addr()), addrPort(client.LocalAddr())
	// SO_LINGER 0: close sends RST instead of FIN.
	if err := server.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	server.Close()

	sent := c.waitConn(t, "reset sent", func(e *ConnEvent) bool {
		return e.Kind == ConnResetSent && e.Socket.Local == serverAddr && e.Socket.Remote == clientAddr
	})
	if sent.Process.PID != uint32(os.Getpid()) {
		t.Errorf("reset sent: %+v", sent)
	}
	c.waitConn(t, "reset received", func(e *ConnEvent) bool {
		return e.Kind == ConnResetReceived && e.Socket.Local == clientAddr && e.Socket.Remote == serverAddr
	})
	c.record(t, serverAddr.Port())
}

func TestKernelDNSOverUDP(t *testing.T) {
	_, c := sharedKernel(t)
	dnsOverUDP(t, c, "127.0.0.34")
}

func dnsOverUDP(t *testing.T, c *collector, addr string) {
	t.Helper()
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(addr)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	serverAddr := addrPort(server.LocalAddr())

	name := dnsmessage.MustNewName("api.netintel.test.")
	query := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 0x4e49, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	qb, err := query.Pack()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1500)
		n, from, err := server.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) != nil {
			return
		}
		m.Header.Response = true
		m.Answers = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
			Body:   &dnsmessage.AResource{A: [4]byte{127, 0, 0, 80}},
		}}
		rb, _ := m.Pack()
		_, _ = server.WriteToUDP(rb, from)
	}()
	client, err := net.Dial("udp4", serverAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	clientAddr := addrPort(client.LocalAddr())
	if _, err := client.Write(qb); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	rbuf := make([]byte, 1500)
	if _, err := client.Read(rbuf); err != nil {
		t.Fatal(err)
	}

	dnsID := func(p []byte) (dnsmessage.Header, bool) {
		var parser dnsmessage.Parser
		h, err := parser.Start(p)
		return h, err == nil
	}
	check := func(what string, local, remote netip.AddrPort, dir Direction, response bool) {
		e := c.waitData(t, what, func(e *DataEvent) bool {
			return e.Socket.Local == local && e.Socket.Remote == remote && e.Direction == dir
		})
		h, ok := dnsID(e.Payload)
		if !ok || h.ID != 0x4e49 || h.Response != response {
			t.Errorf("%s: payload is not the DNS message (header %+v ok %v)", what, h, ok)
		}
		if e.Socket.Transport != TransportUDP || e.Process.PID != uint32(os.Getpid()) || e.Seq != 0 {
			t.Errorf("%s: %+v", what, e)
		}
	}
	check("client query", clientAddr, serverAddr, DirectionSend, false)
	check("server query", serverAddr, clientAddr, DirectionRecv, false)
	check("server response", serverAddr, clientAddr, DirectionSend, true)
	check("client response", clientAddr, serverAddr, DirectionRecv, true)
	c.record(t, serverAddr.Port())
}

// TestKernelCloseReleasesPrograms asserts nothing of ours stays in the kernel after Close.
func TestKernelCloseReleasesPrograms(t *testing.T) {
	requireKernel(t)
	src, err := NewEBPF(DefaultOptions(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := src.(*ebpfSource).loadedProgramIDs()
	if len(ids) == 0 {
		t.Fatal("no program ids recorded")
	}
	if live := bpftoolPrograms(t); !containsAll(live, ids) {
		t.Fatalf("bpftool does not list our programs while attached: ours %v", ids)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, ok := <-src.Events(); ok {
		t.Fatal("Events() still open after Close")
	}
	// Program release is asynchronous (RCU): poll briefly.
	deadline := time.Now().Add(waitBudget)
	for {
		live := bpftoolPrograms(t)
		var left []uint32
		for _, id := range ids {
			if name, ok := live[uint32(id)]; ok {
				left = append(left, uint32(id))
				t.Logf("still loaded: %d %s", id, name)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("programs %v still loaded after Close", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func containsAll[T ~uint32](live map[uint32]string, ids []T) bool {
	for _, id := range ids {
		if _, ok := live[uint32(id)]; !ok {
			return false
		}
	}
	return true
}

// bpftoolPrograms lists loaded programs by id.
func bpftoolPrograms(t *testing.T) map[uint32]string {
	t.Helper()
	if _, err := exec.LookPath("bpftool"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bpftool not installed (apt-get install bpftool)")
		}
		t.Skip("bpftool not installed")
	}
	out, err := exec.Command("bpftool", "prog", "show", "--json").Output()
	if err != nil {
		t.Fatalf("bpftool prog show: %v", err)
	}
	var progs []struct {
		ID   uint32 `json:"id"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(out, &progs); err != nil {
		t.Fatalf("bpftool output: %v", err)
	}
	m := make(map[uint32]string, len(progs))
	for _, p := range progs {
		m[p.ID] = p.Name
	}
	return m
}

// TestKernelFlood drives many short connections at a source whose consumer never reads:
// the queue and ring buffer overflow, the drops are counted, nothing hangs and memory stays
// bounded.
func TestKernelFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test in -short mode")
	}
	requireKernel(t)
	opts := DefaultOptions()
	opts.QueueSize = 64
	opts.RingBufferSize = 64 << 10
	src, err := NewEBPF(opts, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	ln, err := net.Listen("tcp4", "127.0.0.35:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Read(buf)
			_, _ = conn.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
			conn.Close()
		}
	}()

	// 20k connections take seconds here; under QEMU's TCG the budget bounds them (a few thousand
	// still overflow a 64 KiB ring many times over).
	const maxConns = 20000
	budget := time.Now().Add(20 * time.Second)
	done := 0
	var mem runtime.MemStats
	var peakHeap uint64
	for done < maxConns && time.Now().Before(budget) {
		conn, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatalf("dial %d: %v", done, err)
		}
		_, _ = conn.Write([]byte("GET /flood HTTP/1.1\r\nHost: f\r\n\r\n"))
		buf := make([]byte, 64)
		_, _ = conn.Read(buf)
		_ = conn.(*net.TCPConn).SetLinger(0) // no TIME_WAIT: 20k connections must not exhaust ports
		conn.Close()
		done++
		if done%2000 == 0 {
			runtime.ReadMemStats(&mem)
			peakHeap = max(peakHeap, mem.HeapAlloc)
		}
	}
	if done < 1000 {
		t.Fatalf("only %d connections in the time budget", done)
	}
	// Counters move instead of anything blocking: the consumer never read a single event.
	deadline := time.Now().Add(waitBudget)
	var cs Counters
	for time.Now().Before(deadline) {
		cs = src.Counters()
		if cs.QueueDropped > 0 && cs.EventsRead > uint64(opts.QueueSize) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d connections; counters %+v; peak heap %d MiB", done, cs, peakHeap>>20)
	if cs.QueueDropped == 0 {
		t.Errorf("queue drops not counted: %+v", cs)
	}
	if cs.EventsRead < uint64(opts.QueueSize) {
		t.Errorf("too few events read: %+v", cs)
	}
	const heapCap = 256 << 20
	if peakHeap > heapCap {
		t.Errorf("heap peaked at %d MiB, cap %d MiB", peakHeap>>20, heapCap>>20)
	}
	if got := len(src.Events()); got > opts.QueueSize {
		t.Errorf("queue holds %d events, bound %d", got, opts.QueueSize)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

// httpMarker makes one HTTP request from this process on a new connection and waits for its
// request to come out of the ring buffer. Events of syscalls that returned before the marker's
// are read before it, so afterwards their absence is final.
func httpMarker(t *testing.T, c *collector, listen string) {
	t.Helper()
	ln, err := net.Listen("tcp4", listen)
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
		buf := make([]byte, 256)
		_, _ = conn.Read(buf)
		_, _ = conn.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
	}()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("GET /marker HTTP/1.1\r\nHost: m\r\n\r\n"))
	_, _ = conn.Read(make([]byte, 64))
	// Both ends: with one source shared by many tests, an ephemeral port comes round again.
	local, remote := addrPort(conn.LocalAddr()), addrPort(ln.Addr())
	c.waitHTTP1(t, "marker", func(e *HTTP1Event) bool { return e.Socket.Local == local && e.Socket.Remote == remote })
}

// dnsMarker sends one DNS query over UDP and waits for its event: once it arrives, every
// event of earlier traffic has been read (one ring buffer, read in order). For sources with
// HTTP switched off.
func dnsMarker(t *testing.T, c *collector, addr [4]byte) {
	t.Helper()
	server, serverAddr := udpSocket(t, addr)
	_ = server
	conn, err := net.Dial("udp4", serverAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := dnsQuery(t, 0x4d4b, "marker.netintel.test.")
	if _, err := conn.Write(q); err != nil {
		t.Fatal(err)
	}
	local := addrPort(conn.LocalAddr())
	c.waitData(t, "dns marker", func(e *DataEvent) bool {
		return e.Socket.Local == local && e.Socket.Remote == serverAddr && bytes.Equal(e.Payload, q)
	})
}

func TestKernelUnclassifiedStopsAfterFirstExchange(t *testing.T) {
	src, c := sharedKernel(t)
	before := src.Counters().Unclassified
	ln, err := net.Listen("tcp4", "127.0.0.36:0")
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
		buf := make([]byte, 64)
		for range 2 {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			_, _ = conn.Write(buf[:n])
		}
	}()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 64)
	for _, line := range []string{"hello-1\n", "hello-2\n"} {
		if _, err := conn.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conn, buf[:len(line)]); err != nil {
			t.Fatal(err)
		}
	}
	httpMarker(t, c, "127.0.0.37:0")

	server := addrPort(ln.Addr())
	first, second := 0, 0
	for _, ev := range c.snapshot() {
		if ev.Data == nil || (ev.Data.Socket.Local != server && ev.Data.Socket.Remote != server) {
			continue
		}
		switch string(ev.Data.Payload) {
		case "hello-1\n":
			first++
		case "hello-2\n":
			second++
		}
	}
	// The first exchange crosses (write + read on each end), the second does not.
	if first != 4 || second != 0 {
		t.Errorf("first exchange events %d (want 4), second exchange events %d (want 0)", first, second)
	}
	if got := src.Counters().Unclassified - before; got < 2 {
		t.Errorf("Unclassified moved by %d, want ≥ 2 (client and server socket)", got)
	}
}

func TestKernelUDPSwitchedOff(t *testing.T) {
	opts := DefaultOptions()
	opts.UDP = false
	_, c := startKernel(t, opts)
	a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 38)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Dial("udp4", a.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: 7}, Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("x.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	qb, _ := q.Pack()
	if _, err := b.Write(qb); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.ReadFromUDP(make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	httpMarker(t, c, "127.0.0.39:0")
	for _, ev := range c.snapshot() {
		if ev.Data != nil && ev.Data.Socket.Transport == TransportUDP {
			t.Fatalf("UDP event with udp switched off: %+v", ev.Data)
		}
	}
}

func TestKernelExcludesOwnPID(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	opts := DefaultOptions()
	opts.ExcludePID = uint32(os.Getpid())
	_, c := startKernel(t, opts)
	ln, err := net.Listen("tcp4", "127.0.0.41:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/own"
	resp, err := http.Get(url) // our own traffic: both ends are this process
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// curl is another process: its side is captured, and it is the marker.
	ctx, cancel := context.WithTimeout(context.Background(), waitBudget)
	defer cancel()
	if out, err := exec.CommandContext(ctx, curl, "-sS", "-o", "/dev/null", url).CombinedOutput(); err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	c.waitHTTP1(t, "curl exchange", func(e *HTTP1Event) bool {
		return e.Process.Comm == "curl" && bytes.HasPrefix(e.Request, []byte("GET /own"))
	})
	for _, ev := range c.snapshot() {
		if ev.HTTP1 != nil && ev.HTTP1.Process.PID == opts.ExcludePID {
			t.Errorf("HTTP/1 exchange of the excluded pid: %+v", ev.HTTP1)
		}
		if ev.Data != nil && ev.Data.Process.PID == opts.ExcludePID {
			t.Errorf("data event of the excluded pid: %+v", ev.Data)
		}
		if ev.Conn != nil && ev.Conn.Process.PID == opts.ExcludePID {
			t.Errorf("conn event of the excluded pid: %+v", ev.Conn)
		}
	}
}

// TestKernelRawTracepoints runs the capture attached through raw tracepoints (what kernels with
// perf_event_paranoid above 2 get with CAP_BPF and CAP_PERFMON only): the same events as the
// classic tracepoints give, for HTTP, a refused connect, resets and DNS.
func TestKernelRawTracepoints(t *testing.T) {
	opts := DefaultOptions()
	opts.Attach = AttachRaw
	src, c := startKernel(t, opts)
	if src.Attach() != AttachRaw {
		t.Fatalf("attached %v", src.Attach())
	}
	for _, s := range src.Capabilities() {
		if !s.On {
			t.Errorf("capability %s off in raw mode: %s", s.Name, s.Reason)
		}
	}
	httpExchange(t, c, "tcp4", "127.0.0.91:0")
	refusedConnect(t, c, "127.0.0.92")
	resetExchange(t, c, "127.0.0.93")
	dnsOverUDP(t, c, "127.0.0.94")
}
