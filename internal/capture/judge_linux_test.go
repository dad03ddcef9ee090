//go:build linux && (amd64 || arm64)

package capture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"go.uber.org/zap/zaptest"
	"golang.org/x/net/http2/hpack"
	"golang.org/x/sys/unix"
)

// judgingOptions turns in-kernel judging on, as the receiver does.
func judgingOptions() Options {
	o := DefaultOptions()
	o.Judging = Judging{
		Aggregate:   true,
		ErrorStatus: 400,
		Slow:        time.Second,
		Bounds:      []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second},
	}
	return o
}

// sharedJudging is one judging source for the tests that need nothing else.
func sharedJudging(t *testing.T) (*ebpfSource, *collector) {
	t.Helper()
	return sharedJ.get(t, judgingOptions())
}

// judgedServer serves /items/<n> (fast), /slow (150 ms), /fail (500) and /download (1 MiB).
func judgedServer(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/items/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "item") })
	mux.HandleFunc("/fast/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "fast") })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(150 * time.Millisecond)
		_, _ = io.WriteString(w, "slow")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(1<<20))
		chunk := bytes.Repeat([]byte("d"), 16<<10)
		for i := 0; i < 64; i++ {
			_, _ = w.Write(chunk)
		}
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// keepAliveClient sends every request over one connection.
func keepAliveClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}, Timeout: 5 * time.Second}
}

func get(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// drainOwn drains the kernel's aggregates and returns this process's, by role.
func drainOwn(t *testing.T, src *ebpfSource) map[Role][]*HTTP1Aggregate {
	t.Helper()
	out := map[Role][]*HTTP1Aggregate{}
	if err := src.DrainHTTP1(func(a *HTTP1Aggregate) {
		if a.PID == uint32(os.Getpid()) {
			out[a.Role] = append(out[a.Role], a)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func sum(b []uint64) uint64 {
	var s uint64
	for _, v := range b {
		s += v
	}
	return s
}

// TestKernelExplicitBucketsByLatency: the kernel files each healthy exchange in the explicit
// bucket its latency falls in (judgingOptions' bounds: 1 ms, 10 ms, 100 ms, 1 s), at both ends:
// /slow (150 ms, under the 1 s slow threshold, so still healthy) in (100 ms, 1 s], and its
// healthy twin /items/<n> (well under 100 ms) in none of the buckets above 100 ms.
func TestKernelExplicitBucketsByLatency(t *testing.T) {
	src, _ := sharedJudging(t)
	addr := judgedServer(t, "127.0.0.85:0")
	port := netip.MustParseAddrPort(addr).Port()
	client := keepAliveClient()
	const fast, slow = 20, 4
	for i := 0; i < fast; i++ {
		if code := get(t, client, fmt.Sprintf("http://%s/items/%d", addr, i)); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	for i := 0; i < slow; i++ {
		if code := get(t, client, "http://"+addr+"/slow"); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	// Both ends count an exchange before the client has its response: one drain holds them all.
	got := map[Role]map[uint64]*HTTP1Aggregate{RoleClient: {}, RoleServer: {}}
	for role, as := range drainOwn(t, src) {
		for _, a := range as {
			if a.Port == port && a.Status == 200 {
				got[role][a.RouteKey] = a
			}
		}
	}
	for _, role := range []Role{RoleClient, RoleServer} {
		items, slowAgg := got[role][RouteKey("/items/{id}")], got[role][RouteKey("/slow")]
		if items == nil || slowAgg == nil {
			t.Fatalf("%v: aggregates %+v, want /items/{id} and /slow", role, got[role])
		}
		// Every exchange of a key but its first (sent whole) is counted.
		if items.Count != fast-1 || slowAgg.Count != slow-1 {
			t.Errorf("%v: counts /items %d /slow %d, want %d and %d", role, items.Count, slowAgg.Count, fast-1, slow-1)
		}
		if slowAgg.Explicit[3] != slowAgg.Count || sum(slowAgg.Explicit[:]) != slowAgg.Count {
			t.Errorf("%v: /slow explicit buckets %v, want all %d in (100ms, 1s] (index 3)", role, slowAgg.Explicit[:5], slowAgg.Count)
		}
		if slowAgg.Sum < time.Duration(slowAgg.Count)*150*time.Millisecond {
			t.Errorf("%v: /slow latency sum %v for %d exchanges of 150 ms", role, slowAgg.Sum, slowAgg.Count)
		}
		if sum(items.Explicit[:3]) != items.Count || sum(items.Explicit[:]) != items.Count {
			t.Errorf("%v: /items explicit buckets %v, want all %d at or under 100 ms", role, items.Explicit[:5], items.Count)
		}
	}
}

// TestKernelAggregatesHealthyHTTP1: healthy exchanges are counted in the kernel, not sent —
// the drained counts and histograms equal the traffic driven — while a key's first exchange and
// every error cross whole.
func TestKernelAggregatesHealthyHTTP1(t *testing.T) {
	src, c := sharedJudging(t)
	addr := judgedServer(t, "127.0.0.70:0")
	client := keepAliveClient()
	before := src.Counters().Kernel[kcHTTP1Aggregated]
	const n = 40
	itemsThenFailures(t, client, addr, n, 3)
	route := RouteKey("/items/{id}")
	isOurs := exchangeOf(addr)
	// Errors cross, every one, from both ends.
	deadline := time.Now().Add(waitBudget)
	var firsts, errs int
	for time.Now().Before(deadline) {
		firsts, errs = 0, 0
		for _, ev := range c.snapshot() {
			if x := ev.HTTP1; x != nil && isOurs(x) {
				switch {
				case x.Reasons&HTTP1Error != 0 && x.Status == 500:
					errs++
				case x.Reasons&HTTP1First != 0 && x.RouteKey == route:
					firsts++
				}
			}
		}
		if errs == 6 && firsts == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if errs != 6 || firsts != 2 {
		c.dump(t)
		t.Fatalf("%d error exchanges (want 6: 3 from each end), %d first exchanges of /items/{id} (want 2)", errs, firsts)
	}
	for _, ev := range c.snapshot() {
		if x := ev.HTTP1; x != nil && isOurs(x) && x.RouteKey == route && x.Reasons&HTTP1First == 0 {
			t.Errorf("a healthy exchange crossed: reasons %b", x.Reasons)
		}
	}

	aggs := drainOwn(t, src)
	for _, role := range []Role{RoleClient, RoleServer} {
		var got *HTTP1Aggregate
		for _, a := range aggs[role] {
			if a.RouteKey == route && a.Status == 200 {
				if got != nil {
					t.Errorf("%v: two aggregates for one key", role)
				}
				got = a
			}
		}
		if got == nil {
			t.Fatalf("%v: no aggregate of /items/{id} 200 in %+v", role, aggs[role])
		}
		if got.Count != n-1 || got.Method != "GET" || got.Version != "1.1" {
			t.Errorf("%v: count %d (want %d: every exchange but the first), method %q version %q", role, got.Count, n-1, got.Method, got.Version)
		}
		if s := sum(got.Latency[:]); s != got.Count {
			t.Errorf("%v: latency buckets hold %d exchanges, count %d", role, s, got.Count)
		}
		if s := sum(got.Explicit[:]); s != got.Count {
			t.Errorf("%v: explicit buckets hold %d exchanges, count %d", role, s, got.Count)
		}
		if got.Sum <= 0 || got.Sum > time.Duration(got.Count)*time.Second {
			t.Errorf("%v: latency sum %v", role, got.Sum)
		}
		// Peers: the server counts a client on this host by its process (loopback is shared by
		// every local process, and ports are per connection) and keeps the address it was
		// reached at; the client counts its server exactly.
		if role == RoleServer && (got.Peer.String() != "127.0.0.1" || got.PeerPID != uint32(os.Getpid()) || got.PeerPort != 0 || netip.AddrPortFrom(got.Local, got.Port).String() != addr) {
			t.Errorf("server aggregate peer %v:%d pid %d, reached at %v:%d, want %s by pid %d", got.Peer, got.PeerPort, got.PeerPID, got.Local, got.Port, addr, os.Getpid())
		}
		if role == RoleClient && (got.Peer != netip.MustParseAddrPort(addr).Addr() || got.Port != netip.MustParseAddrPort(addr).Port()) {
			t.Errorf("client aggregate peer %v port %d, want %s", got.Peer, got.Port, addr)
		}
	}
	if got := src.Counters().Kernel[kcHTTP1Aggregated] - before; got != 2*(n-1) {
		t.Errorf("http1_aggregated moved by %d, want %d", got, 2*(n-1))
	}
	// A drain resets: nothing is counted twice.
	if again := drainOwn(t, src); len(again[RoleClient])+len(again[RoleServer]) != 0 {
		t.Errorf("a second drain returned %+v", again)
	}
}

// TestKernelRouteLimits: with a limit written for a route, an exchange slower than it crosses
// and a fast one of the same process does not. The limit (100 ms) sits well between the two:
// under QEMU's TCG a fast exchange took 20 ms once, as long as the 20 ms limit this test had.
func TestKernelRouteLimits(t *testing.T) {
	src, c := sharedJudging(t)
	t.Cleanup(func() { _ = src.SetRouteLimits(nil) })
	addr := judgedServer(t, "127.0.0.71:0")
	client := keepAliveClient()
	get(t, client, "http://"+addr+"/slow")
	get(t, client, "http://"+addr+"/fast/1")
	pid := uint32(os.Getpid())
	if err := src.SetRouteLimits([]RouteLimit{
		{PID: pid, RouteKey: RouteKey("/slow"), Latency: 100 * time.Millisecond},
		{PID: pid, RouteKey: RouteKey("/fast/{id}"), Latency: 100 * time.Millisecond},
	}); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := 0; i < n; i++ {
		get(t, client, "http://"+addr+"/slow")
		get(t, client, fmt.Sprintf("http://%s/fast/%d", addr, i+2))
	}
	httpMarker(t, c, "127.0.0.72:0")
	slow, fast := 0, 0
	for _, ev := range c.snapshot() {
		x := ev.HTTP1
		if x == nil || x.Reasons&HTTP1First != 0 || (x.Socket.Local.String() != addr && x.Socket.Remote.String() != addr) {
			continue
		}
		switch x.RouteKey {
		case RouteKey("/slow"):
			if x.Reasons&HTTP1Slow == 0 || x.ResponseTime.Sub(x.RequestTime) < 100*time.Millisecond {
				t.Errorf("slow exchange reasons %b latency %v", x.Reasons, x.ResponseTime.Sub(x.RequestTime))
			}
			slow++
		case RouteKey("/fast/{id}"):
			if x.Socket.Local.String() == addr || x.Socket.Remote.String() == addr {
				fast++
			}
		}
	}
	if slow != 2*n || fast != 0 {
		for _, ev := range c.snapshot() {
			if x := ev.HTTP1; x != nil {
				t.Logf("%v %v role %v reasons %b route %x lat %v", x.Socket.Local, x.Socket.Remote, x.Socket.Role, x.Reasons, x.RouteKey, x.ResponseTime.Sub(x.RequestTime))
			}
		}
		t.Errorf("%d slow exchanges crossed (want %d, both ends), %d fast ones (want 0)", slow, 2*n, fast)
	}
	aggs := drainOwn(t, src)
	for _, a := range aggs[RoleServer] {
		if a.RouteKey == RouteKey("/fast/{id}") && a.Count != n {
			t.Errorf("fast route counted %d, want %d", a.Count, n)
		}
	}
}

// TestKernelSamplerAgreesAcrossCollections: two collections loaded independently keep exactly
// the same requests, both ends alike, and the requests they keep are those whose trace id's
// randomness is at least the threshold.
func TestKernelSamplerAgreesAcrossCollections(t *testing.T) {
	const p = 0.25
	opts := judgingOptions()
	opts.Judging.SampleProbability = p
	_, c1 := startKernel(t, opts)
	_, c2 := startKernel(t, opts)
	addr := judgedServer(t, "127.0.0.73:0")
	const conns, per = 4, 50
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := keepAliveClient()
			for j := 0; j < per; j++ {
				resp, err := client.Get(fmt.Sprintf("http://%s/items/%d", addr, j))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	httpMarker(t, c1, "127.0.0.74:0")
	httpMarker(t, c2, "127.0.0.74:0")
	type key struct {
		cisn, sisn, seq uint32
		role            Role
	}
	sampled := func(c *collector) map[key]bool {
		out := map[key]bool{}
		for _, ev := range c.snapshot() {
			if x := ev.HTTP1; x != nil && x.Reasons&HTTP1Sampled != 0 && x.RouteKey == RouteKey("/items/{id}") {
				out[key{x.ClientISN, x.ServerISN, x.RequestSeq, x.Socket.Role}] = true
				if r := RequestRandomness(x.ClientISN, x.ServerISN, x.RequestSeq, 0); r < SampleThreshold(p) {
					t.Errorf("kept a request of randomness %x below the threshold %x", r, SampleThreshold(p))
				}
			}
		}
		return out
	}
	s1, s2 := sampled(c1), sampled(c2)
	if len(s1) != len(s2) {
		t.Errorf("collection 1 kept %d halves, collection 2 %d", len(s1), len(s2))
	}
	for k := range s1 {
		if !s2[k] {
			t.Errorf("collection 2 did not keep %+v", k)
		}
		other := k
		other.role = RoleServer
		if k.role == RoleServer {
			other.role = RoleClient
		}
		if !s1[other] {
			t.Errorf("only one end kept %+v", k)
		}
	}
	requests := len(s1) / 2
	if total := conns * per; requests < total/8 || requests > total/2 {
		t.Errorf("%d of %d requests kept at p=%v", requests, total, p)
	}
}

// TestKernelUnansweredRequest: a request whose socket closes before any response crosses from
// both ends, saying who closed first.
func TestKernelUnansweredRequest(t *testing.T) {
	_, c := sharedJudging(t)
	ln, err := net.Listen("tcp4", "127.0.0.75:0")
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
		_, _ = http.ReadRequest(r)
		_, _ = io.Copy(io.Discard, r) // until the client hangs up; never answers
	}()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(conn, "GET /never HTTP/1.1\r\nHost: u\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	client := addrPort(conn.LocalAddr())
	conn.Close()
	cx := c.waitHTTP1(t, "client unanswered", func(e *HTTP1Event) bool { return e.Socket.Local == client })
	sx := c.waitHTTP1(t, "server unanswered", func(e *HTTP1Event) bool { return e.Socket.Remote == client })
	if cx.Reasons&HTTP1Unanswered == 0 || cx.Status != 0 || cx.PeerClosed || len(cx.Response) != 0 {
		t.Errorf("client: reasons %b status %d peer closed %v", cx.Reasons, cx.Status, cx.PeerClosed)
	}
	if sx.Reasons&HTTP1Unanswered == 0 || !sx.PeerClosed {
		t.Errorf("server: reasons %b peer closed %v (the client closed first)", sx.Reasons, sx.PeerClosed)
	}
	if !strings.HasPrefix(string(sx.Request), "GET /never") || sx.RequestSeq != cx.RequestSeq {
		t.Errorf("server request %q seq %d, client seq %d", sx.Request, sx.RequestSeq, cx.RequestSeq)
	}
}

// TestKernelSocketsOpenedBeforeTheCapture: a keep-alive connection opened before the capture
// starts is found in /proc, with its roles from the listening state, and its next exchange is
// judged like any other: both ends, same identity.
func TestKernelSocketsOpenedBeforeTheCapture(t *testing.T) {
	requireKernel(t)
	addr := judgedServer(t, "127.0.0.76:0")
	client := keepAliveClient()
	get(t, client, "http://"+addr+"/items/1") // the connection now exists, uncaptured
	src, err := NewEBPF(judgingOptions(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	c := collect(src)
	get(t, client, "http://"+addr+"/items/2")
	isOurs := exchangeOf(addr)
	cx := c.waitHTTP1(t, "client", func(e *HTTP1Event) bool { return isOurs(e) && e.Socket.Role == RoleClient })
	sx := c.waitHTTP1(t, "server", func(e *HTTP1Event) bool { return isOurs(e) && e.Socket.Role == RoleServer })
	if cx.Socket.Remote.String() != addr || sx.Socket.Local.String() != addr {
		t.Errorf("roles: client socket %v->%v, server socket %v->%v", cx.Socket.Local, cx.Socket.Remote, sx.Socket.Local, sx.Socket.Remote)
	}
	if cx.ClientISN != sx.ClientISN || cx.ServerISN != sx.ServerISN || cx.RequestSeq != sx.RequestSeq {
		t.Errorf("identity differs: client %d/%d/%d server %d/%d/%d", cx.ClientISN, cx.ServerISN, cx.RequestSeq, sx.ClientISN, sx.ServerISN, sx.RequestSeq)
	}
	if !strings.HasPrefix(string(cx.Request), "GET /items/2 ") {
		t.Errorf("request %q", cx.Request)
	}
}

// TestKernelBodiesAreNotRead: a 1 MiB download is one exchange per end, and its body never
// crosses.
func TestKernelBodiesAreNotRead(t *testing.T) {
	_, c := sharedKernel(t) // judging off: every exchange is sent
	addr := judgedServer(t, "127.0.0.77:0")
	get(t, keepAliveClient(), "http://"+addr+"/download")
	httpMarker(t, c, "127.0.0.78:0")
	exchanges := 0
	for _, ev := range c.snapshot() {
		if d := ev.Data; d != nil && (d.Socket.Local.String() == addr || d.Socket.Remote.String() == addr) {
			t.Errorf("body bytes crossed: %d bytes", d.Size)
		}
		if x := ev.HTTP1; x != nil && (x.Socket.Local.String() == addr || x.Socket.Remote.String() == addr) {
			exchanges++
		}
	}
	if exchanges != 2 {
		t.Errorf("%d exchanges, want 2 (one per end)", exchanges)
	}
}

// TestKernelRequestStartReadAlone: a request's first byte written and read alone ("G", then
// the rest: a reader taking one byte ahead, as Go's server does while a handler runs). The kernel
// keeps the start and completes the request, at both ends, on a fresh connection and on a kept-
// alive one: every request is an exchange, whole, and no raw bytes cross.
func TestKernelRequestStartReadAlone(t *testing.T) {
	_, c := sharedKernel(t) // judging off: every exchange is sent
	ln, err := net.Listen("tcp4", "127.0.0.91:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	paths := []string{"/split/first", "/split/second"}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(waitBudget))
		for range paths {
			if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil { // the first byte alone
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
		if _, err := io.WriteString(conn, "G"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // its own read at the server, too
		if _, err := io.WriteString(conn, "ET "+path+" HTTP/1.1\r\nHost: s\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		expect200(t, conn)
	}
	httpMarker(t, c, "127.0.0.92:0")
	var server, client []string
	for _, ev := range c.snapshot() {
		if d := ev.Data; d != nil && (d.Socket.Local.String() == addr || d.Socket.Remote.String() == addr) {
			t.Errorf("raw bytes crossed: %q", d.Payload)
		}
		if x := ev.HTTP1; x != nil && x.Status == 200 {
			if x.Socket.Local.String() == addr {
				server = append(server, string(x.Request))
			} else if x.Socket.Remote.String() == addr {
				client = append(client, string(x.Request))
			}
		}
	}
	for side, got := range map[string][]string{"server": server, "client": client} {
		if len(got) != 2 || !strings.HasPrefix(got[0], "GET /split/first ") || !strings.HasPrefix(got[1], "GET /split/second ") {
			t.Errorf("%s exchanges %q, want GET /split/first then GET /split/second", side, got)
		}
	}
}

// answerHead reads one request head (up to its blank line) from conn and answers it 200 with
// no body.
func answerHead(conn net.Conn) error {
	head := make([]byte, 0, 128)
	buf := make([]byte, 128)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		n, err := conn.Read(buf)
		if err != nil {
			return err
		}
		head = append(head, buf[:n]...)
	}
	_, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	return err
}

// expect200 reads one reply from conn and fails the test unless it is a 200.
func expect200(t *testing.T, conn net.Conn) {
	t.Helper()
	reply := make([]byte, 64)
	if n, err := conn.Read(reply); err != nil || !bytes.HasPrefix(reply[:n], []byte("HTTP/1.1 200")) {
		t.Fatalf("reply %q, %v", reply[:n], err)
	}
}

// h2Frame encodes one HTTP/2 frame.
func h2Frame(typ, flags byte, stream uint32, payload []byte) []byte {
	b := make([]byte, 9, 9+len(payload))
	b[0], b[1], b[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	b[3], b[4] = typ, flags
	binary.BigEndian.PutUint32(b[5:], stream)
	return append(b, payload...)
}

func hpackBlock(fields ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return buf.Bytes()
}

// h2Request is a client's preface, SETTINGS and one HEADERS frame opening stream 1.
func h2Request(path string) []byte {
	request := append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), h2Frame(4, 0, 0, nil)...)
	return append(request, h2Frame(1, 5, 1, hpackBlock(":method", "POST", ":path", path, ":scheme", "http", ":authority", "h2"))...)
}

// h2Exchange serves one exchange on addr: the client writes request, the server reads it and
// answers reply in one write. It returns the server's write as the kernel recorded it.
func h2Exchange(t *testing.T, c *collector, addr string, request, reply []byte) *DataEvent {
	t.Helper()
	ln, err := net.Listen("tcp4", addr)
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
		_, _ = io.ReadFull(conn, make([]byte, len(request)))
		_, _ = conn.Write(reply)
		_, _ = io.Copy(io.Discard, conn)
	}()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(request); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, make([]byte, len(reply))); err != nil {
		t.Fatal(err)
	}
	server := addrPort(ln.Addr())
	return c.waitData(t, "server write", func(e *DataEvent) bool { return e.Socket.Local == server && e.Direction == DirectionSend })
}

// TestKernelH2FramesWithoutData: one write of SETTINGS, HEADERS, 8 KiB of DATA and the trailing
// HEADERS crosses as every frame header and every HEADERS payload, without the DATA payload —
// so trailers are seen however far into a write they sit.
func TestKernelH2FramesWithoutData(t *testing.T) {
	_, c := sharedKernel(t)
	settings := h2Frame(4, 0, 0, nil)
	headers := h2Frame(1, 4, 1, hpackBlock(":status", "200", "content-type", "application/grpc"))
	data := h2Frame(0, 0, 1, bytes.Repeat([]byte{0xd7}, 8<<10))
	trailers := h2Frame(1, 5, 1, hpackBlock("grpc-status", "0", "grpc-message", "fine"))
	reply := bytes.Join([][]byte{settings, headers, data, trailers}, nil)
	request := h2Request("/pkg.Svc/Call")
	w := h2Exchange(t, c, "127.0.0.79:0", request, reply)
	want := bytes.Join([][]byte{settings, headers, data[:9], trailers}, nil)
	if !w.H2Compact || !bytes.Equal(w.Payload, want) || w.Size != len(reply) {
		t.Errorf("server write: compact %v size %d (want %d), payload %d bytes (want %d: frame headers and HEADERS, no DATA)", w.H2Compact, w.Size, len(reply), len(w.Payload), len(want))
	}
	if w.Truncated {
		t.Errorf("server write of 4 frames flagged truncated: the walk saw all of it")
	}
	r := c.waitData(t, "client request", func(e *DataEvent) bool { return e.Socket.Remote == w.Socket.Local && e.Direction == DirectionSend })
	if !bytes.Equal(r.Payload, request) {
		t.Errorf("client request: %q, want the preface and frames as they are", r.Payload)
	}
}

// TestKernelH2StreamPastTheWalk: a server stream of small messages and its trailers in one write.
// 100 messages (route_guide's ListFeatures writes 64) are walked whole: every frame header, the
// trailers' payload last, no DATA payload, and the record is not flagged. 300 are more frames
// than the kernel walks in one call: the record says so (Truncated), so the parser knows the
// call's end may be in what it did not see, and the frames it did walk are whole.
func TestKernelH2StreamPastTheWalk(t *testing.T) {
	_, c := sharedKernel(t)
	for i, messages := range []int{100, 300} {
		settings := h2Frame(4, 0, 0, nil)
		headers := h2Frame(1, 4, 1, hpackBlock(":status", "200", "content-type", "application/grpc"))
		trailers := h2Frame(1, 5, 1, hpackBlock("grpc-status", "0"))
		reply := append(append([]byte(nil), settings...), headers...)
		walked := append([]byte(nil), reply...)
		for i := 0; i < messages; i++ {
			data := h2Frame(0, 0, 1, bytes.Repeat([]byte{byte(i)}, 20))
			reply = append(reply, data...)
			walked = append(walked, data[:9]...)
		}
		reply = append(reply, trailers...)
		walked = append(walked, trailers...)
		w := h2Exchange(t, c, fmt.Sprintf("127.0.0.%d:0", 85+i), h2Request("/pkg.Svc/List"), reply)
		if !w.H2Compact || w.Size != len(reply) {
			t.Fatalf("%d messages: server write compact %v size %d, want compact, %d", messages, w.H2Compact, w.Size, len(reply))
		}
		if messages == 100 {
			if w.Truncated || !bytes.Equal(w.Payload, walked) {
				t.Errorf("%d messages: truncated %v, %d bytes walked (want %d: every frame header, the trailers whole)", messages, w.Truncated, len(w.Payload), len(walked))
			}
			continue
		}
		if !w.Truncated || len(w.Payload) >= len(walked) || !bytes.Equal(w.Payload, walked[:len(w.Payload)]) {
			t.Errorf("%d messages: truncated %v, %d bytes walked of %d: want a flagged record of the first frames, each whole", messages, w.Truncated, len(w.Payload), len(walked))
		}
		if n := len(w.Payload) - len(settings) - len(headers); n <= 0 || n%9 != 0 {
			t.Errorf("%d messages: %d bytes walked past HEADERS, want whole DATA frame headers", messages, n)
		}
	}
}

// TestKernelForkedChildServes: busybox httpd accepts in its parent and serves each connection in
// a forked child; the child inherits the socket's entry, so its exchanges are seen from both
// ends.
// TestKernelForkedChildServes: busybox httpd accepts in the parent and serves in a forked child
// (dup2 onto stdin/stdout), on the host and in its own PID namespace, as in a container, where
// the fork's return value is not the child's pid in the kernel.
func TestKernelForkedChildServes(t *testing.T) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox not installed (Debian: busybox-static)")
	}
	_, c := sharedKernel(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("forked"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		addr  string
		flags uintptr
	}{
		{"host", "127.0.0.80:8080", 0},
		{"pid namespace", "127.0.0.81:8080", unix.CLONE_NEWPID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			httpd := exec.CommandContext(ctx, busybox, "httpd", "-f", "-p", tc.addr, "-h", dir)
			httpd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: tc.flags}
			if err := httpd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); _ = httpd.Wait() }()
			get := func(path string) (int, error) {
				resp, err := http.Get("http://" + tc.addr + path)
				if err != nil {
					return 0, err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode, nil
			}
			var code int
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && code == 0; time.Sleep(50 * time.Millisecond) {
				code, _ = get("/index.html")
			}
			if code != 200 {
				t.Fatalf("busybox httpd answered %d", code)
			}
			// Every connection is served by its own child: each must be seen.
			const n = 12
			for i := range n {
				if code, err := get(fmt.Sprintf("/index.html?n=%d", i)); err != nil || code != 200 {
					t.Fatalf("request %d: %d %v", i, code, err)
				}
			}
			for i := range n {
				want := fmt.Sprintf("GET /index.html?n=%d ", i)
				sx := c.waitHTTP1(t, "busybox child "+want, func(e *HTTP1Event) bool {
					return e.Socket.Local.String() == tc.addr && e.Socket.Role == RoleServer && strings.HasPrefix(string(e.Request), want)
				})
				if sx.Process.PID == uint32(httpd.Process.Pid) || sx.Status != 200 {
					t.Errorf("server exchange %d by pid %d (httpd parent %d) status %d", i, sx.Process.PID, httpd.Process.Pid, sx.Status)
				}
			}
		})
	}
}

// TestKernelRecoveryAfterError: after an error, the healthy exchanges of the same owner, peer
// and route are sent for Judging.Recovery (a retried call's success reaches user space with its
// failures), one success per error; the success after that, another route meanwhile, and the
// same route once the window has passed, are counted in the kernel (the healthy twins).
func TestKernelRecoveryAfterError(t *testing.T) {
	src, c := sharedJudging(t)
	j := judgingOptions().Judging
	j.Recovery = 300 * time.Millisecond
	if err := src.SetJudging(j); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.SetJudging(judgingOptions().Judging) })

	ln, err := net.Listen("tcp4", "127.0.0.82:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	attempts := map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("/flaky/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts[r.URL.Path]++
		n := attempts[r.URL.Path]
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/flaky/1") && n <= 3 { // calls 1x fail three times
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("/items/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "item") })
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	client := keepAliveClient()

	// Warm the keys: each route's first exchange is sent as its key's first.
	get(t, client, "http://"+addr+"/flaky/200")
	get(t, client, "http://"+addr+"/items/1")
	for call := 10; call < 13; call++ {
		for attempt := 0; attempt < 4; attempt++ {
			get(t, client, fmt.Sprintf("http://%s/flaky/%d", addr, call))
		}
		// Within the window, but the error is taken by the success above: counted.
		get(t, client, fmt.Sprintf("http://%s/flaky/%d", addr, call))
		get(t, client, fmt.Sprintf("http://%s/items/%d", addr, call)) // another route: counted
	}
	time.Sleep(400 * time.Millisecond) // the window passes
	for i := 0; i < 4; i++ {
		get(t, client, fmt.Sprintf("http://%s/flaky/%d", addr, 300+i))
	}
	httpMarker(t, c, "127.0.0.83:0")

	var recovered, errors, others int
	for _, ev := range c.snapshot() {
		x := ev.HTTP1
		if x == nil || x.Socket.Role != RoleClient || x.Socket.Remote.String() != addr || x.Reasons&HTTP1First != 0 {
			continue
		}
		switch {
		case x.Reasons&HTTP1Error != 0:
			errors++
		case x.Reasons&HTTP1Recovery != 0 && x.RouteKey == RouteKey("/flaky/{id}") && x.Status == 200:
			recovered++
		default:
			others++
			t.Errorf("sent: %q reasons %b", x.Request[:min(len(x.Request), 20)], x.Reasons)
		}
	}
	if errors != 9 || recovered != 3 || others != 0 {
		t.Errorf("client side: %d errors (want 9), %d recoveries (want 3: each call's success), %d others (want 0)", errors, recovered, others)
	}
	var flaky, items uint64
	for _, a := range drainOwn(t, src)[RoleClient] {
		if netip.AddrPortFrom(a.Peer, a.Port).String() != addr {
			continue // another test's server
		}
		switch a.RouteKey {
		case RouteKey("/flaky/{id}"):
			flaky += a.Count
		case RouteKey("/items/{id}"):
			items += a.Count
		}
	}
	if flaky != 7 || items != 3 {
		t.Errorf("counted in the kernel: /flaky/{id} %d (want 7: each call's second success, and 4 after the window), /items/{id} %d (want 3)", flaky, items)
	}
}

// pairLocal turns Judging.PairLocal on in the shared judging source for one test, as the
// receiver runs it.
func pairLocal(t *testing.T, src *ebpfSource) {
	t.Helper()
	j := judgingOptions().Judging
	j.PairLocal = true
	if err := src.SetJudging(j); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.SetJudging(judgingOptions().Judging) })
}

// TestKernelLocalPairJudgedOnce: with both ends on this node, the connection is judged once, on
// its server's socket. The client judges its first exchange itself and then goes quiet: from the
// second exchange on every record and aggregate comes from the server's side and says Paired,
// and nothing from the client crosses or is counted. (Its healthy twins: PairLocal off,
// TestKernelAggregatesHealthyHTTP1, where both ends judge; a client that pipelines,
// TestKernelLocalPairPipelinedClient.)
func TestKernelLocalPairJudgedOnce(t *testing.T) {
	src, c := sharedJudging(t)
	pairLocal(t, src)
	addr := judgedServer(t, "127.0.0.74:0")
	client := keepAliveClient()
	before := src.Counters().Kernel
	const n = 40
	itemsThenFailures(t, client, addr, n, 3)
	route := RouteKey("/items/{id}")
	isOurs := exchangeOf(addr)
	type tally struct{ clientFirst, serverFirst, pairedFirst, errs int }
	count := func() (n tally, bad []string) {
		for _, ev := range c.snapshot() {
			x := ev.HTTP1
			if x == nil || !isOurs(x) {
				continue
			}
			first := x.RouteKey == route && x.Reasons&HTTP1First != 0
			switch {
			case x.Socket.Role == RoleClient && first && !x.Paired:
				n.clientFirst++
			case x.Socket.Role == RoleServer && first && !x.Paired:
				n.serverFirst++
			case x.Socket.Role == RoleServer && first:
				n.pairedFirst++
			case x.Socket.Role == RoleServer && x.Paired && x.Status == 500 && x.Reasons&HTTP1Error != 0:
				n.errs++
			default:
				bad = append(bad, fmt.Sprintf("%v paired %v status %d reasons %b %q", x.Socket.Role, x.Paired, x.Status, x.Reasons, x.Request))
			}
		}
		return n, bad
	}
	want := tally{clientFirst: 1, serverFirst: 1, pairedFirst: 1, errs: 3}
	deadline := time.Now().Add(waitBudget)
	for time.Now().Before(deadline) {
		if got, _ := count(); got == want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a client record, if any, would be here by now
	got, bad := count()
	if got != want || len(bad) > 0 {
		c.dump(t)
		t.Fatalf("records %+v, want %+v (the first exchange from each end, then the server's alone, paired); unexpected: %v", got, want, bad)
	}

	aggs := drainOwn(t, src)
	for _, a := range aggs[RoleClient] {
		if a.Peer == netip.MustParseAddrPort(addr).Addr() {
			t.Errorf("the quiet client counted %+v", a)
		}
	}
	var paired *HTTP1Aggregate
	for _, a := range aggs[RoleServer] {
		if a.RouteKey != route || netip.AddrPortFrom(a.Local, a.Port).String() != addr {
			continue
		}
		if !a.Paired || a.Status != 200 {
			t.Errorf("server aggregate paired %v status %d count %d: only the paired key counts", a.Paired, a.Status, a.Count)
			continue
		}
		paired = a
	}
	if paired == nil {
		t.Fatalf("no paired server aggregate of /items/{id} 200 in %+v", aggs[RoleServer])
	}
	if paired.Count != n-2 || paired.PeerPID != uint32(os.Getpid()) {
		t.Errorf("paired aggregate count %d (want %d: all but the two sent first), client pid %d (want %d)", paired.Count, n-2, paired.PeerPID, os.Getpid())
	}
	after := src.Counters().Kernel
	if d := after[kcHTTP1Paired] - before[kcHTTP1Paired]; d != 1 {
		t.Errorf("http1_pairs_judged_once moved by %d, want 1 (one client connection)", d)
	}
	if d := after[kcHTTP1Aggregated] - before[kcHTTP1Aggregated]; d != n-2 {
		t.Errorf("http1_aggregated moved by %d, want %d: each exchange once", d, n-2)
	}
}

// TestKernelLocalPairPipelinedClient: a local client that pipelines its requests (a second one
// before the first response) is handed to user space as raw bytes before its first response, so
// it never goes quiet: its server withdraws its offer at its second exchange, and nothing says
// Paired — both ends are seen, as for a remote peer.
func TestKernelLocalPairPipelinedClient(t *testing.T) {
	src, c := sharedJudging(t)
	pairLocal(t, src)
	addr := judgedServer(t, "127.0.0.78:0")
	before := src.Counters().Kernel[kcHTTP1Paired]
	conn, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := addrPort(conn.LocalAddr())
	r := bufio.NewReader(conn)
	for round := 0; round < 2; round++ {
		// The second request is written before the first response is read: the client's
		// kernel side sees a request in flight (the server answers them one by one).
		_, _ = io.WriteString(conn, "GET /items/1 HTTP/1.1\r\nHost: p\r\n\r\n")
		time.Sleep(50 * time.Millisecond)
		_, _ = io.WriteString(conn, "GET /items/2 HTTP/1.1\r\nHost: p\r\n\r\n")
		for i := 0; i < 2; i++ {
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	sent := c.waitData(t, "client's raw bytes", func(d *DataEvent) bool {
		return d.Socket.Local == client && d.Direction == DirectionSend && bytes.HasPrefix(d.Payload, []byte("GET /items/2"))
	})
	if sent.Paired {
		t.Errorf("client data says Paired")
	}
	time.Sleep(200 * time.Millisecond)
	for _, ev := range c.snapshot() {
		if d := ev.Data; d != nil && d.Socket.Remote == client && d.Paired {
			t.Errorf("server data says Paired: its client judges itself")
		}
		if x := ev.HTTP1; x != nil && x.Socket.Remote == client && x.Paired {
			t.Errorf("server record says Paired")
		}
	}
	// The server answered one by one: its first exchange crossed, the other three were
	// counted, under an unpaired key.
	var counted uint64
	for _, a := range drainOwn(t, src)[RoleServer] {
		if netip.AddrPortFrom(a.Local, a.Port).String() == addr {
			counted += a.Count
			if a.Paired {
				t.Errorf("server aggregate says Paired: %+v", a)
			}
		}
	}
	if counted != 3 {
		t.Errorf("server counted %d exchanges, want 3", counted)
	}
	if d := src.Counters().Kernel[kcHTTP1Paired] - before; d != 0 {
		t.Errorf("http1_pairs_judged_once moved by %d: a pipelining client went quiet", d)
	}
}

// TestKernelLocalPairHungServer: a quiet client gives up on a request its server never answers
// and never closes; the server's socket, which judges for both, sends the request as
// unanswered when the client's connection closes — once, saying the client closed first.
func TestKernelLocalPairHungServer(t *testing.T) {
	src, c := sharedJudging(t)
	pairLocal(t, src)
	ln, err := net.Listen("tcp4", "127.0.0.79:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	release := make(chan struct{})
	served := make(chan struct{})
	go func() {
		defer close(served)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		if _, err := http.ReadRequest(r); err != nil {
			return
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		_, _ = http.ReadRequest(r)
		<-release // hung: never answers, never closes
	}()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client := addrPort(conn.LocalAddr())
	_, _ = io.WriteString(conn, "GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_, _ = io.WriteString(conn, "GET /hang HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	conn.Close()
	sx := c.waitHTTP1(t, "unanswered", func(e *HTTP1Event) bool {
		return e.Socket.Remote == client && e.Reasons&HTTP1Unanswered != 0
	})
	if sx.Socket.Role != RoleServer || !sx.Paired || !sx.PeerClosed || !strings.HasPrefix(string(sx.Request), "GET /hang") {
		t.Errorf("unanswered: role %v paired %v peer closed %v request %q", sx.Socket.Role, sx.Paired, sx.PeerClosed, sx.Request)
	}
	if sx.Process.PID != uint32(os.Getpid()) {
		t.Errorf("unanswered owned by pid %d, want the server's %d", sx.Process.PID, os.Getpid())
	}
	close(release)
	<-served
	time.Sleep(200 * time.Millisecond)
	var n int
	for _, ev := range c.snapshot() {
		if x := ev.HTTP1; x != nil && x.Reasons&HTTP1Unanswered != 0 && (x.Socket.Remote == client || x.Socket.Local == client) {
			n++
		}
	}
	if n != 1 {
		c.dump(t)
		t.Errorf("%d unanswered records for the connection, want 1", n)
	}
}

// TestKernelRouteRules: a rule user space learned (under /users/ on this port, the next segment
// is an identifier) is applied in the kernel, where names that look like no identifier
// ("alice") key one route, /users/{id}. Its healthy twin: the same requests on another port, or
// before the rule, keep their literal paths.
func TestKernelRouteRules(t *testing.T) {
	src, c := sharedJudging(t)
	addr := judgedServer(t, "127.0.0.77:0")
	other := judgedServer(t, "127.0.0.77:0")
	port := netip.MustParseAddrPort(addr).Port()
	if err := src.SetRouteRules([]RouteRule{{Port: port, Prefix: "/items/"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.SetRouteRules(nil) })
	client := keepAliveClient()
	names := []string{"alice", "bob", "carol", "dave"}
	for _, host := range []string{addr, other} {
		for _, n := range names {
			get(t, client, "http://"+host+"/items/"+n)
		}
	}
	templated, alice := RouteKey("/items/{id}"), RouteKey("/items/alice")
	c.waitHTTP1(t, "the other port's literal route", func(e *HTTP1Event) bool {
		return e.Socket.Local.String() == other && e.RouteKey == alice
	})
	time.Sleep(100 * time.Millisecond)
	seen := map[string]map[uint64]int{}
	for _, ev := range c.snapshot() {
		if x := ev.HTTP1; x != nil && x.Socket.Role == RoleServer {
			host := x.Socket.Local.String()
			if seen[host] == nil {
				seen[host] = map[uint64]int{}
			}
			seen[host][x.RouteKey]++
		}
	}
	var counted = map[string]map[uint64]uint64{}
	for _, a := range drainOwn(t, src)[RoleServer] {
		host := netip.AddrPortFrom(a.Local, a.Port).String()
		if counted[host] == nil {
			counted[host] = map[uint64]uint64{}
		}
		counted[host][a.RouteKey] += a.Count
	}
	if seen[addr][templated] != 1 || counted[addr][templated] != uint64(len(names)-1) || len(seen[addr]) != 1 {
		t.Errorf("with the rule: records by route key %v, counted %v; want one route, /items/{id} (%x), its first sent and %d counted", seen[addr], counted[addr], templated, len(names)-1)
	}
	if len(seen[other]) != len(names) || seen[other][templated] != 0 {
		t.Errorf("another port: records by route key %v, want %d literal routes", seen[other], len(names))
	}
}

// TestKernelLocalPairIPv6: over ::1 the pair is found too — the client goes quiet after its first
// exchange, and the server's aggregate of the rest says Paired.
func TestKernelLocalPairIPv6(t *testing.T) {
	src, _ := sharedJudging(t)
	pairLocal(t, src)
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	before := src.Counters().Kernel[kcHTTP1Paired]
	client := keepAliveClient()
	const n = 10
	for i := 0; i < n; i++ {
		get(t, client, "http://"+addr+"/v6")
	}
	if d := src.Counters().Kernel[kcHTTP1Paired] - before; d != 1 {
		t.Errorf("http1_pairs_judged_once moved by %d, want 1", d)
	}
	var paired, client6 uint64
	aggs := drainOwn(t, src)
	for _, a := range aggs[RoleServer] {
		if netip.AddrPortFrom(a.Local, a.Port).String() == addr && a.Paired {
			paired += a.Count
		}
	}
	for _, a := range aggs[RoleClient] {
		if a.Peer == netip.IPv6Loopback() && a.Port == netip.MustParseAddrPort(addr).Port() {
			client6 += a.Count
		}
	}
	if paired != n-2 || client6 != 0 {
		t.Errorf("paired server count %d (want %d), client count %d (want 0)", paired, n-2, client6)
	}
}

// TestKernelLocalPairRecovery: an error on a local pair's connection before it is paired, and the
// retry's success after (the same connection, now paired), are one owner, peer and route: the
// success is sent as the error's recovery, not counted away under the paired key.
func TestKernelLocalPairRecovery(t *testing.T) {
	src, c := sharedJudging(t)
	j := judgingOptions().Judging
	j.PairLocal = true
	j.Recovery = 2 * time.Second
	if err := src.SetJudging(j); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.SetJudging(judgingOptions().Judging) })
	ln, err := net.Listen("tcp4", "127.0.0.84:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	calls := 0
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 3 { // the second connection's first request
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	// A first connection makes the paired key of /call exist (its second exchange is sent as
	// the paired key's first).
	first := keepAliveClient()
	get(t, first, "http://"+addr+"/call")
	get(t, first, "http://"+addr+"/call")
	first.CloseIdleConnections()
	// A second one fails, unpaired yet, then succeeds, paired.
	second := keepAliveClient()
	if code := get(t, second, "http://"+addr+"/call"); code != 503 {
		t.Fatalf("status %d", code)
	}
	local := c.waitHTTP1(t, "the error", func(e *HTTP1Event) bool {
		return e.Socket.Local.String() == addr && e.Status == 503
	}).Socket.Remote
	get(t, second, "http://"+addr+"/call")
	x := c.waitHTTP1(t, "the retry's recovery", func(e *HTTP1Event) bool {
		return e.Socket.Local.String() == addr && e.Socket.Remote == local && e.Status == 200
	})
	if x.Reasons&HTTP1Recovery == 0 || !x.Paired {
		t.Errorf("the retry's success: reasons %b paired %v, want recovery, paired", x.Reasons, x.Paired)
	}
}

// itemsThenFailures asks addr for n healthy /items/<id> (distinct ids, one route), then fails
// times for /fail.
func itemsThenFailures(t *testing.T, client *http.Client, addr string, n, fails int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if code := get(t, client, fmt.Sprintf("http://%s/items/%d", addr, 1000+i)); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	for i := 0; i < fails; i++ {
		get(t, client, "http://"+addr+"/fail")
	}
}

// exchangeOf: an exchange at either end of a connection to addr.
func exchangeOf(addr string) func(*HTTP1Event) bool {
	return func(e *HTTP1Event) bool { return e.Socket.Local.String() == addr || e.Socket.Remote.String() == addr }
}

// TestKernelSocketSlotsReused: a TCP socket's state takes a slot of sock_slots and gives it back
// when the connection closes. With room for 256 sockets, 400 connections one after another (800
// sockets) are each judged and none is refused a state (the healthy twin of a full table); 300
// held open at once run the slots out, which is counted; once they close, new connections are
// judged again.
func TestKernelSocketSlotsReused(t *testing.T) {
	opts := judgingOptions()
	opts.MaxSockets = 256
	src, _ := startKernel(t, opts)
	addr := judgedServer(t, "127.0.0.71:0")
	full := func() uint64 { return src.Counters().MapFull }
	oneShot := func(route string, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
			if code := get(t, c, "http://"+addr+route); code != 200 {
				t.Fatalf("%s: status %d", route, code)
			}
		}
	}
	// counted is the aggregated count of route per role (every exchange but each key's first).
	counted := func(route string) map[Role]uint64 {
		t.Helper()
		key := RouteKey(route)
		got := map[Role]uint64{}
		for role, aggs := range drainOwn(t, src) {
			for _, a := range aggs {
				if a.RouteKey == key && a.Status == 200 {
					got[role] += a.Count
				}
			}
		}
		return got
	}

	before, slotsBefore := full(), src.Counters().Kernel[kcSocketTableFull]
	const sequential = 400
	oneShot("/items/1", sequential)
	if got := counted("/items/{id}"); got[RoleClient] != sequential-1 || got[RoleServer] != sequential-1 {
		t.Errorf("%d connections one after another: counted %v, want %d on each side (each socket had a state)", sequential, got, sequential-1)
	}
	if moved := full() - before; moved != 0 {
		t.Errorf("map_full moved by %d over connections that never held more than a few sockets at once", moved)
	}

	// 300 connections open at once: more sockets than the tables hold.
	held := make([]net.Conn, 0, 300)
	for i := 0; i < cap(held); i++ {
		conn, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
		if _, err := io.WriteString(conn, "GET /fast/1 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	for _, conn := range held {
		buf := make([]byte, 512)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Read(buf)
	}
	// Each connection's two sockets ask for a state as they connect (the fd table overflows
	// too): the slots run out, and that is counted as the socket table's.
	if moved := src.Counters().Kernel[kcSocketTableFull] - slotsBefore; moved == 0 {
		t.Errorf("600 sockets open at once, 256 slots: socket_table_full did not move")
	}
	for _, conn := range held {
		conn.Close()
	}
	_ = counted("/fast/{id}")

	// Closed, they gave their slots back: new connections are judged.
	deadline := time.Now().Add(waitBudget)
	for {
		oneShot("/fast/2", 20)
		got := counted("/fast/{id}")
		if got[RoleClient] >= 19 && got[RoleServer] >= 19 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the 300 closed, 20 connections counted %v, want 19 or more on each side", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestKernelErrorsBeyondTheirRecordsCounted: with ErrorRecords 4, the kernel sends each error
// key's first errors of a drain whole (4 per CPU at most: the bound is each CPU's) and counts
// the rest in the key's aggregate, so that sent and counted add up to the errors driven, at
// each end. A drain resets the bound: the next errors are sent whole again. The healthy twin,
// ErrorRecords 0 (every error sent), is TestKernelAggregatesHealthyHTTP1's.
func TestKernelErrorsBeyondTheirRecordsCounted(t *testing.T) {
	opts := judgingOptions()
	opts.Judging.ErrorRecords = 4
	src, c := startKernel(t, opts)
	addr := judgedServer(t, "127.0.0.95:0")
	client := keepAliveClient()
	isOurs := exchangeOf(addr)
	route := RouteKey("/fail")
	maxSent := 4 * possibleCPUs(t)
	// sentWhole counts the /fail errors that crossed, by role, once the sent and the counted
	// add up to want at both ends (counted: the drained aggregates, added to counted).
	counted := map[Role]uint64{}
	sentWhole := func(want uint64) map[Role]uint64 {
		t.Helper()
		deadline := time.Now().Add(waitBudget)
		for {
			for role, as := range drainOwn(t, src) {
				for _, a := range as {
					if a.RouteKey == route && a.Status == 500 {
						counted[role] += a.Count
						if s := sum(a.Latency[:]); s != a.Count {
							t.Errorf("%v: latency buckets hold %d errors, count %d", role, s, a.Count)
						}
					}
				}
			}
			sent := map[Role]uint64{}
			for _, ev := range c.snapshot() {
				if x := ev.HTTP1; x != nil && isOurs(x) && x.Status == 500 && x.Reasons&HTTP1Error != 0 {
					sent[x.Socket.Role]++
				}
			}
			done := true
			for _, role := range []Role{RoleClient, RoleServer} {
				if sent[role]+counted[role] != want {
					done = false
				}
			}
			if done {
				return sent
			}
			if time.Now().After(deadline) {
				c.dump(t)
				t.Fatalf("after %d errors at each end: sent whole %v, counted %v", want, sent, counted)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	before := src.Counters().Kernel[kcHTTP1ErrorsCounted]
	const n = 60
	itemsThenFailures(t, client, addr, 1, n)
	sent := sentWhole(n)
	t.Logf("of %d errors at each end: sent whole %v, counted %v", n, sent, counted)
	for _, role := range []Role{RoleClient, RoleServer} {
		if sent[role] < 4 || sent[role] > uint64(maxSent) {
			t.Errorf("%v: %d of %d errors sent whole, want 4 to %d (4 per CPU)", role, sent[role], n, maxSent)
		}
	}
	if got, want := src.Counters().Kernel[kcHTTP1ErrorsCounted]-before, counted[RoleClient]+counted[RoleServer]; got != want {
		t.Errorf("http1_errors_counted moved by %d, the aggregates hold %d", got, want)
	}
	// The drain reset the bound: the next errors cross whole again, up to it.
	first := sent
	itemsThenFailures(t, client, addr, 0, n)
	sent = sentWhole(2 * n)
	for _, role := range []Role{RoleClient, RoleServer} {
		if d := sent[role] - first[role]; d < 4 || d > uint64(maxSent) {
			t.Errorf("%v: after the drain %d more errors sent whole, want 4 to %d", role, d, maxSent)
		}
	}
}

func possibleCPUs(t *testing.T) int {
	t.Helper()
	n, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestKernelStopKeepsWhatWasCounted: Stop detaches the programs, delivers the records left in
// the ring buffer and closes Events, while the aggregates stay readable until Close: a
// consumer's last flush after Stop holds every exchange. Twin: traffic after Stop is not seen.
func TestKernelStopKeepsWhatWasCounted(t *testing.T) {
	src, c := startKernel(t, judgingOptions())
	addr := judgedServer(t, "127.0.0.96:0")
	client := keepAliveClient()
	const n = 30
	itemsThenFailures(t, client, addr, n, 3)
	src.Stop()
	select {
	case <-c.done:
	case <-time.After(waitBudget):
		t.Fatal("Events not closed after Stop")
	}
	isOurs := exchangeOf(addr)
	var errs int
	for _, ev := range c.snapshot() {
		if x := ev.HTTP1; x != nil && isOurs(x) && x.Status == 500 {
			errs++
		}
	}
	if errs != 6 {
		c.dump(t)
		t.Errorf("%d error exchanges delivered by Stop, want 6 (3 at each end)", errs)
	}
	// After Stop: nothing is judged, and what was counted is still drained.
	itemsThenFailures(t, client, addr, n, 0)
	route := RouteKey("/items/{id}")
	for role, as := range drainOwn(t, src) {
		var got uint64
		for _, a := range as {
			if a.RouteKey == route && a.Status == 200 {
				got += a.Count
			}
		}
		if got != n-1 {
			t.Errorf("%v: drained %d healthy exchanges after Stop, want %d (the first was sent; none after Stop)", role, got, n-1)
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}
