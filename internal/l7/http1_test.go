package l7

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

type wantHTTP struct {
	method, path, query string
	status              int
}

// curl ↔ nginx: four keep-alive requests, a POST, then three pipelined requests in one write.
var http1Want = []wantHTTP{
	{"GET", "/", "", 200},
	{"GET", "/b.html", "x=1&y=two", 200},
	{"GET", "/missing", "", 404},
	{"GET", "/api/users", "id=7", 503},
	{"POST", "/echo", "", 201},
	{"GET", "/index.html", "", 200},
	{"GET", "/api/orders", "", 503},
	{"GET", "/nope", "", 404},
}

func TestHTTP1Fixture(t *testing.T) {
	conns := loadFixture(t, "http1.tsv")
	for _, r := range []replay{
		{},
		{close: true},
		{unknownRole: true},
		{split: 7}, // reads and writes cut differently than the segments
		{split: 1}, // byte by byte: every message spans many events
		{maxPayload: 512, split: 1000},
	} {
		t.Run(fmt.Sprintf("%+v", r), func(t *testing.T) {
			xs, tr := runFixture(t, "http1.tsv", DefaultOptions(), r)
			for _, side := range []Side{SideClient, SideServer} {
				got := bySide(xs, side)
				if len(got) != len(http1Want) {
					t.Fatalf("%v side: %d exchanges, want %d", side, len(got), len(http1Want))
				}
				for i, w := range http1Want {
					h := got[i].HTTP
					if h.Method != w.method || h.Path != w.path || h.Query != w.query || h.Status != w.status || h.Partial {
						t.Errorf("%v #%d: got %s %s ?%s → %d (partial %v), want %+v", side, i, h.Method, h.Path, h.Query, h.Status, h.Partial, w)
					}
					if got[i].Protocol != ProtocolHTTP1 || h.Version != "1.1" || got[i].Failure != FailureNone {
						t.Errorf("%v #%d: protocol %v version %q failure %v", side, i, got[i].Protocol, h.Version, got[i].Failure)
					}
				}
			}
			checkIdentity(t, conns, xs, func(x *Exchange, at []byte) bool {
				return bytes.HasPrefix(at, []byte(x.HTTP.Method+" "+x.HTTP.Path))
			})
			c := tr.Counters()
			if c.UnmatchedResponses != 0 || c.ParseFailure(ProtocolHTTP1) != 0 || c.Resyncs != 0 {
				t.Errorf("counters: %+v", c)
			}
		})
	}
}

// checkIdentity asserts what spans are built from: both sides of an exchange carry the same
// ISNs and request sequence number, and the client's byte stream at RequestSeq is the request.
func checkIdentity(t *testing.T, conns []*fixtureConn, xs []*Exchange, isRequest func(*Exchange, []byte) bool) {
	t.Helper()
	type id struct {
		c, s, seq, stream uint32
	}
	sides := map[id][2]int{}
	for _, x := range xs {
		k := id{x.ClientISN, x.ServerISN, x.RequestSeq, x.StreamID}
		v := sides[k]
		v[x.Side-1]++
		sides[k] = v
		var fc *fixtureConn
		for _, c := range conns {
			if c.clientISN == x.ClientISN && c.serverISN == x.ServerISN {
				fc = c
			}
		}
		if fc == nil {
			t.Errorf("exchange with unknown ISNs %d/%d", x.ClientISN, x.ServerISN)
			continue
		}
		if x.Client.Addr != fc.client || x.Server.Addr != fc.server {
			t.Errorf("endpoints %v → %v, want %v → %v", x.Client.Addr, x.Server.Addr, fc.client, fc.server)
		}
		if x.Side == SideClient && x.Client.Process.PID != clientProc.PID || x.Side == SideServer && x.Server.Process.PID != serverProc.PID {
			t.Errorf("%v side: process not carried: %+v / %+v", x.Side, x.Client.Process, x.Server.Process)
		}
		if isRequest == nil {
			if x.RequestSeq != 0 {
				t.Errorf("request sequence %d in an identity that the stream id makes", x.RequestSeq)
			}
		} else if at := fc.streamAt(true, x.RequestSeq); !isRequest(x, at) {
			t.Errorf("bytes at RequestSeq %d are %q", x.RequestSeq, at[:min(len(at), 40)])
		}
		if x.End.Before(x.Start) {
			t.Errorf("end %v before start %v", x.End, x.Start)
		}
	}
	for k, v := range sides {
		if v[0] != 1 || v[1] != 1 {
			t.Errorf("identity %+v seen %d times on the client and %d on the server, want once each", k, v[0], v[1])
		}
	}
}

// streamAt returns the bytes one direction of the connection carried from seq on.
func (fc *fixtureConn) streamAt(fromClient bool, seq uint32) []byte {
	for _, s := range fc.segs {
		if s.fromClient == fromClient && seq-s.seq < uint32(len(s.payload)) {
			return s.payload[seq-s.seq:]
		}
	}
	return nil
}

func TestHTTP1Truncated(t *testing.T) {
	// With 64-byte payloads only the first request of the pipelined write is visible; its
	// response and the others' are counted, not invented.
	xs, tr := runFixture(t, "http1.tsv", DefaultOptions(), replay{maxPayload: 64})
	got := bySide(xs, SideClient)
	if len(got) != 6 {
		t.Fatalf("%d exchanges, want 6", len(got))
	}
	for i, w := range http1Want[:6] {
		h := got[i].HTTP
		if h.Method != w.method || h.Path != w.path || h.Status != w.status || !h.Partial {
			t.Errorf("#%d: got %s %s → %d partial=%v, want %+v partial", i, h.Method, h.Path, h.Status, h.Partial, w)
		}
	}
	if c := tr.Counters(); c.UnmatchedResponses != 4 || c.PartialHeaders == 0 {
		t.Errorf("counters: %+v", c)
	}
}

// h1Conn drives one synthetic HTTP/1 connection through a tracker.
type h1Conn struct {
	tr         *Tracker
	cs, ss     capture.Socket
	cseq, sseq uint32
	now        time.Time
}

func newH1Conn(tr *Tracker, cookie uint64) *h1Conn {
	cli := netip.MustParseAddrPort("127.0.0.1:40000")
	srv := netip.MustParseAddrPort("127.0.0.41:8080")
	return &h1Conn{
		tr:   tr,
		cs:   capture.Socket{Cookie: cookie, Transport: capture.TransportTCP, Local: cli, Remote: srv, Role: capture.RoleClient},
		ss:   capture.Socket{Cookie: cookie + 1, Transport: capture.TransportTCP, Local: srv, Remote: cli, Role: capture.RoleServer},
		cseq: 1001, sseq: 5001,
		now: time.Unix(1_800_000_000, 0),
	}
}

// send writes b from the client (or server) side, observed on both sockets, cut to max bytes.
func (c *h1Conn) send(fromClient bool, b string, max int) {
	c.now = c.now.Add(time.Millisecond)
	seq := &c.sseq
	from, to := c.ss, c.cs
	if fromClient {
		seq, from, to = &c.cseq, c.cs, c.ss
	}
	p := []byte(b)
	mk := func(s capture.Socket, d capture.Direction) *capture.DataEvent {
		ev := &capture.DataEvent{Time: c.now, Socket: s, Direction: d, Size: len(p), Payload: p, Seq: *seq, ClientISN: 1000, ServerISN: 5000}
		if max > 0 && len(p) > max {
			ev.Payload, ev.Truncated = p[:max], true
		}
		return ev
	}
	c.tr.Data(mk(from, capture.DirectionSend))
	c.tr.Data(mk(to, capture.DirectionRecv))
	*seq += uint32(len(p))
}

func collect() (*[]*Exchange, func(*Exchange)) {
	var xs []*Exchange
	return &xs, func(x *Exchange) { xs = append(xs, x) }
}

func TestHTTP1Bodies(t *testing.T) {
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	c := newH1Conn(tr, 10)
	body := bytes.Repeat([]byte("x"), 3000)
	// A body larger than the payload limit, spread over two writes, then a chunked response
	// whose chunks look like requests, then a HEAD whose response has a Content-Length but no body.
	c.send(true, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3000\r\n\r\n"+string(body[:2000]), 512)
	c.send(true, string(body[2000:]), 512)
	c.send(false, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 512)
	c.send(true, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n", 512)
	c.send(false, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1b\r\nGET /fake HTTP/1.1\r\nHost: \r\n\r\n", 512)
	c.send(false, "5\r\nhello\r\n0\r\n\r\n", 512)
	c.send(true, "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n", 512)
	c.send(false, "HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n", 512)
	c.send(true, "GET /after HTTP/1.1\r\nHost: a\r\n\r\n", 512)
	c.send(false, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 512)
	got := bySide(*xs, SideClient)
	want := []wantHTTP{{"POST", "/upload", "", 200}, {"GET", "/stream", "", 200}, {"HEAD", "/h", "", 200}, {"GET", "/after", "", 204}}
	if len(got) != len(want) {
		t.Fatalf("%d exchanges, want %d: %+v", len(got), len(want), tr.Counters())
	}
	for i, w := range want {
		if h := got[i].HTTP; h.Method != w.method || h.Path != w.path || h.Status != w.status {
			t.Errorf("#%d: %s %s → %d, want %+v", i, h.Method, h.Path, h.Status, w)
		}
	}
	if got[1].RequestSeq != 1001+uint32(len("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3000\r\n\r\n"))+3000 {
		t.Errorf("second request seq %d", got[1].RequestSeq)
	}
	if cn := tr.Counters(); cn.UnmatchedResponses != 0 || cn.Resyncs != 0 || cn.ParseFailure(ProtocolHTTP1) != 0 {
		t.Errorf("counters: %+v", cn)
	}
}

func TestHTTP1Resync(t *testing.T) {
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	c := newH1Conn(tr, 10)
	// A request whose body length is unknown to us (its headers were cut) is followed by body
	// bytes and then a new request at a write boundary: l7 skips to it.
	c.send(true, "POST /big HTTP/1.1\r\nHost: a\r\nUser-Agent: "+string(bytes.Repeat([]byte("u"), 600))+"\r\nContent-Length: 4000\r\n\r\n", 512)
	c.send(true, string(bytes.Repeat([]byte("b"), 4000)), 512)
	c.send(false, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n", 512)
	c.send(true, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n", 512)
	c.send(false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 512)
	got := bySide(*xs, SideClient)
	if len(got) != 2 || got[0].HTTP.Status != 413 || !got[0].HTTP.Partial || got[1].HTTP.Path != "/next" || got[1].HTTP.Status != 200 {
		for _, x := range got {
			t.Logf("%+v", x.HTTP)
		}
		t.Fatalf("want /big → 413 (partial) and /next → 200")
	}
	if cn := tr.Counters(); cn.Resyncs == 0 {
		t.Errorf("resync not counted: %+v", cn)
	}
}

func TestHTTP1Failures(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(c *h1Conn)
		want Failure
	}{
		{"server closed first", func(c *h1Conn) {
			c.tr.Conn(&capture.ConnEvent{Kind: capture.ConnClosed, Time: c.now, Socket: c.cs})
			c.tr.Conn(&capture.ConnEvent{Kind: capture.ConnClosed, Time: c.now, Socket: c.ss, LocalClosedFirst: true})
		}, FailureClosed},
		{"client closed first", func(c *h1Conn) {
			c.tr.Conn(&capture.ConnEvent{Kind: capture.ConnClosed, Time: c.now, Socket: c.cs, LocalClosedFirst: true})
			c.tr.Conn(&capture.ConnEvent{Kind: capture.ConnClosed, Time: c.now, Socket: c.ss})
		}, FailureAbandoned},
		{"reset", func(c *h1Conn) {
			c.tr.Conn(&capture.ConnEvent{Kind: capture.ConnResetReceived, Time: c.now, Socket: c.cs})
			c.tr.Conn(&capture.ConnEvent{Kind: capture.ConnResetSent, Time: c.now, Socket: c.ss})
		}, FailureReset},
		{"timeout", func(c *h1Conn) {
			c.tr.Tick(c.now.Add(10 * time.Second)) // not yet
			c.tr.Tick(c.now.Add(31 * time.Second))
		}, FailureTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xs, emit := collect()
			tr := NewTracker(DefaultOptions(), emit)
			c := newH1Conn(tr, 10)
			c.send(true, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n", 0)
			c.send(false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0)
			c.send(true, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n", 0)
			tc.end(c)
			if len(*xs) != 4 {
				t.Fatalf("%d exchanges, want 4", len(*xs))
			}
			for _, x := range (*xs)[2:] {
				if x.HTTP.Path != "/slow" || x.Failure != tc.want || x.HTTP.Status != 0 {
					t.Errorf("%v side: %s failure %v status %d, want /slow %v", x.Side, x.HTTP.Path, x.Failure, x.HTTP.Status, tc.want)
				}
			}
			if tc.want == FailureTimeout && tr.Counters().Timeouts != 2 {
				t.Errorf("timeouts %d, want 2", tr.Counters().Timeouts)
			}
			if tc.want != FailureTimeout && tr.Counters().Connections != 0 {
				t.Errorf("%d connections left after close", tr.Counters().Connections)
			}
		})
	}
}

func TestHTTP1MidStream(t *testing.T) {
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	c := newH1Conn(tr, 10)
	c.cs.Role, c.ss.Role = capture.RoleUnknown, capture.RoleUnknown
	// Joined after the request went out: the response is counted, never turned into an exchange.
	c.send(false, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0)
	c.send(true, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n", 0)
	c.send(false, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0)
	if len(*xs) != 2 || (*xs)[0].HTTP.Path != "/b" || (*xs)[0].HTTP.Status != 404 {
		t.Fatalf("want only /b → 404 on both sides, got %d exchanges", len(*xs))
	}
	if (*xs)[0].Side == (*xs)[1].Side {
		t.Errorf("sides not inferred from who sent the request")
	}
	if n := tr.Counters().UnmatchedResponses; n != 2 {
		t.Errorf("unmatched responses %d, want 2 (one per socket)", n)
	}
}

func TestTrackerLRU(t *testing.T) {
	xs, emit := collect()
	opts := DefaultOptions()
	opts.MaxConnections = 2
	tr := NewTracker(opts, emit)
	a := newH1Conn(tr, 10)
	a.send(true, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n", 0) // sockets 10 and 11
	b := newH1Conn(tr, 20)
	b.send(true, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n", 0) // 20 and 21 evict 10 and 11
	a.send(false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0)
	c := tr.Counters()
	if c.Evictions < 2 || c.Connections > 2 {
		t.Errorf("counters %+v: want ≥2 evictions and ≤2 connections", c)
	}
	// An evicted socket's outstanding requests come out closed as unknown (counted), never
	// paired with a response that arrives after the eviction.
	if len(*xs) != 4 || c.UnmatchedResponses != 2 || c.Released != 4 {
		t.Errorf("evicted sockets: %d exchanges, %d unmatched, %d released; want 4, 2, 4", len(*xs), c.UnmatchedResponses, c.Released)
	}
	for _, x := range *xs {
		if x.Failure != FailureUnknown || x.HTTP.Status != 0 {
			t.Errorf("%s: failure %v status %d, want unknown", x.HTTP.Path, x.Failure, x.HTTP.Status)
		}
	}
	tr.Tick(a.now.Add(time.Hour))
	if c := tr.Counters(); c.Connections != 0 || c.IdleEvictions == 0 {
		t.Errorf("idle sockets not evicted: %+v", c)
	}
}

func TestProtocolSwitches(t *testing.T) {
	opts := DefaultOptions()
	opts.HTTP = false
	xs, _ := runFixture(t, "http1.tsv", opts, replay{})
	if len(xs) != 0 {
		t.Errorf("HTTP disabled: %d exchanges", len(xs))
	}
	opts = DefaultOptions()
	opts.HTTP = false // gRPC stays on: gRPC calls still come out of HTTP/2
	xs, _ = runFixture(t, "grpc.tsv", opts, replay{})
	if len(xs) != 8 {
		t.Errorf("gRPC with HTTP disabled: %d exchanges, want 8", len(xs))
	}
	xs, _ = runFixture(t, "http2.tsv", opts, replay{})
	if len(xs) != 0 {
		t.Errorf("HTTP disabled: %d HTTP/2 exchanges", len(xs))
	}
}

func TestHTTP1UpgradeToH2C(t *testing.T) {
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	c := newH2Conn(tr)
	c.send(true, "GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n", 0)
	c.send(false, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 0)
	c.send(true, h2Preface+string(h2Frame(h2Settings, 0, 0, nil))+string(c.headers(true, 3, true, ":method", "GET", ":path", "/after", ":authority", "a")), 0)
	c.send(false, string(h2Frame(h2Settings, 0, 0, nil))+string(c.headers(false, 3, true, ":status", "204")), 0)
	got := bySide(*xs, SideClient)
	if len(got) != 2 || got[0].HTTP.Status != 101 || got[1].Protocol != ProtocolHTTP2 || got[1].HTTP.Path != "/after" || got[1].HTTP.Status != 204 {
		t.Fatalf("want the upgrade (101) then an HTTP/2 exchange, got %d", len(got))
	}
}
