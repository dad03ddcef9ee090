package capture

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
)

// detachSetState closes the link of the capture's inet_sock_set_state program and returns what
// attaches it again: state changes meanwhile are not seen, as when the kernel skips the
// program's run (it counts those as recursion misses).
func detachSetState(t *testing.T, s *ebpfSource) (reattach func()) {
	t.Helper()
	prog := s.k.programs["ni_raw_set_state"]
	if prog == nil {
		t.Fatal("no ni_raw_set_state program loaded")
	}
	pinfo, err := prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := pinfo.ID()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, lk := range s.k.links {
		info, err := lk.Info()
		if err != nil || info.Program != id {
			continue
		}
		if err := lk.Close(); err != nil {
			t.Fatal(err)
		}
		s.k.links = append(s.k.links[:i], s.k.links[i+1:]...)
		return func() {
			lk, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "inet_sock_set_state", Program: prog})
			if err != nil {
				t.Fatal(err)
			}
			s.mu.Lock()
			s.k.links = append(s.k.links, lk)
			s.mu.Unlock()
		}
	}
	t.Fatal("no link of ni_raw_set_state")
	return nil
}

// TestKernelStaleStateAtBirth: a connection whose CLOSE the capture did not see (the state
// program detached for it here; in production a run the kernel skipped) leaves its sockets'
// states behind. The kernel soon gives a new socket the dead one's address; that socket must not
// take the state over: its exchanges are its own, and no bytes of the dead connection's request
// reappear. Before, a new client found the dead one's request waiting, took its own request for
// a pipelined second one and sent the dead request's bytes with it (TestNoisyWorld's false
// latency_anomaly: a request of a stuck client, 3 s old, answered by another connection's 200).
func TestKernelStaleStateAtBirth(t *testing.T) {
	src, c := startKernel(t, DefaultOptions()) // its own capture: its link is detached a while
	ln, err := net.Listen("tcp4", "127.0.0.54:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := addrPort(ln.Addr())
	pair := func() (client, server net.Conn) {
		accepted := make(chan net.Conn, 1)
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				conn = nil
			}
			accepted <- conn
		}()
		client, err := net.Dial("tcp4", srv.String())
		if err != nil {
			t.Fatal(err)
		}
		server = <-accepted
		if server == nil {
			t.Fatal("accept failed")
		}
		_ = client.SetDeadline(time.Now().Add(5 * time.Second))
		_ = server.SetDeadline(time.Now().Add(5 * time.Second))
		return client, server
	}
	exchange := func(client, server net.Conn, path string, answer bool) {
		req := "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"
		resp := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
		if _, err := io.WriteString(client, req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(server, make([]byte, len(req))); err != nil {
			t.Fatal(err)
		}
		if !answer {
			return
		}
		if _, err := io.WriteString(server, resp); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, make([]byte, len(resp))); err != nil {
			t.Fatal(err)
		}
	}
	stale := func() uint64 { return src.Counters().Kernel[kcStaleSockStates] }

	const rounds, fresh = 20, 40
	before := stale()
	var paths []string
	for r := 0; r < rounds && stale() == before; r++ {
		// A connection with a request waiting on both ends, reset while the capture looks away.
		client, server := pair()
		exchange(client, server, fmt.Sprintf("/lost/%d", r), false)
		reattach := detachSetState(t, src)
		_ = client.(*net.TCPConn).SetLinger(0)
		client.Close() // a reset: both sockets go to CLOSE unseen, and are freed
		_, _ = server.Read(make([]byte, 1))
		server.Close()
		reattach()
		// New connections, one of which the kernel likely places at a dead socket's address.
		for i := 0; i < fresh; i++ {
			client, server := pair()
			p := fmt.Sprintf("/fresh/%d/%d", r, i)
			exchange(client, server, p, true)
			paths = append(paths, p)
			client.Close()
			server.Close()
		}
	}
	if stale() == before {
		t.Fatalf("in %d rounds no new socket took a dead one's address: the test saw nothing", rounds)
	}
	t.Logf("stale socket states found at birth: %d", stale()-before)

	judged := func() (map[string]int, []string) {
		got := map[string]int{}
		var lost []string
		for _, ev := range c.snapshot() {
			var b []byte
			switch {
			case ev.HTTP1 != nil:
				b = ev.HTTP1.Request
			case ev.Data != nil:
				b = ev.Data.Payload
			default:
				continue
			}
			if strings.Contains(string(b), "/lost/") && ev.HTTP1 != nil && len(ev.HTTP1.Response) > 0 {
				lost = append(lost, fmt.Sprintf("%q answered by %q", firstLineOf(b), firstLineOf(ev.HTTP1.Response)))
			} else if strings.Contains(string(b), "/lost/") && ev.Data != nil {
				lost = append(lost, fmt.Sprintf("%q sent again as data", firstLineOf(b)))
			}
			if ev.HTTP1 != nil {
				if f := strings.Fields(string(ev.HTTP1.Request)); len(f) > 1 && strings.HasPrefix(f[1], "/fresh/") {
					got[f[1]]++
				}
			}
		}
		return got, lost
	}
	deadline := time.Now().Add(waitBudget)
	for time.Now().Before(deadline) {
		got, _ := judged()
		if len(got) == len(paths) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	got, lost := judged()
	if len(lost) > 0 {
		t.Errorf("a dead connection's request came back on a new socket: %v", lost)
	}
	var missing []string
	for _, p := range paths {
		if got[p] < 2 {
			missing = append(missing, fmt.Sprintf("%s (%d sides)", p, got[p]))
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d new connections not judged on both sides as their own: %v", len(missing), len(paths), missing)
	}
}

func firstLineOf(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\r\n")
	return s
}
