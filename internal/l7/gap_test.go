package l7

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// dropSegment removes the n-th segment (0-based, among those sent by fromClient) from the
// connection's byte streams: the kernel lost the read/write events that carried it.
func dropSegment(fc *fixtureConn, fromClient bool, n int) {
	i := -1
	for j, s := range fc.segs {
		if s.fromClient == fromClient {
			i++
			if i == n {
				fc.segs = append(fc.segs[:j:j], fc.segs[j+1:]...)
				return
			}
		}
	}
	panic("no such segment")
}

// dropEvents removes the events of the given direction on one socket whose payload starts
// with prefix (the nth of them, 0-based): one side's kernel event was lost, not the bytes.
func dropEvents(evs []capture.Event, cookie uint64, dir capture.Direction, prefix string, n int) []capture.Event {
	out := evs[:0:0]
	seen := 0
	for _, e := range evs {
		if d := e.Data; d != nil && d.Socket.Cookie == cookie && d.Direction == dir && bytes.HasPrefix(d.Payload, []byte(prefix)) {
			seen++
			if seen-1 == n {
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// outcome is an exchange as the pipeline would report it: what was asked, what came back.
func (w wantHTTP) String() string { return fmt.Sprintf("%s %s → %d", w.method, w.path, w.status) }

// checkNoMispairing asserts that every exchange that carries a status carries its own
// (truth maps path → status), and that an exchange closed by a gap says so.
func checkNoMispairing(t *testing.T, xs []*Exchange, truth map[string]int) (paired, unknown int) {
	t.Helper()
	for _, x := range xs {
		h := x.HTTP
		switch {
		case x.Failure == FailureUnknown:
			unknown++
			if h.Status != 0 {
				t.Errorf("%v %s: closed as unknown but carries status %d", x.Side, h.Path, h.Status)
			}
			if x.End != x.Start {
				t.Errorf("%v %s: closed as unknown with a duration %v", x.Side, h.Path, x.Duration())
			}
		case h.Status != 0:
			paired++
			if want := truth[h.Path]; h.Status != want {
				t.Errorf("%v %s: mis-paired with status %d (its own response is %d)", x.Side, h.Path, h.Status, want)
			}
			if x.Duration() > 50*time.Millisecond {
				t.Errorf("%v %s: latency %v: paired with a later response", x.Side, h.Path, x.Duration())
			}
		default:
			t.Errorf("%v %s: no status and failure %v", x.Side, h.Path, x.Failure)
		}
	}
	return paired, unknown
}

var http1Truth = func() map[string]int {
	m := map[string]int{}
	for _, w := range http1Want {
		m[w.path] = w.status
	}
	return m
}()

// A keep-alive connection (curl's four GETs) with the second response's events lost on both
// sockets: the requests outstanding at the gap are closed as unknown, the response after the
// gap pairs with nothing, and the request after it pairs with its own response again.
func TestHTTP1LostResponseDoesNotMispair(t *testing.T) {
	fc := loadFixture(t, "http1.tsv")[0]
	dropSegment(fc, false, 1) // "HTTP/1.1 200 OK" for /b.html
	var xs []*Exchange
	tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x) })
	feed(tr, fc.events(0, replay{close: true}))

	paired, unknown := checkNoMispairing(t, xs, http1Truth)
	// Per socket: / → 200 and /api/users → 503 paired; /b.html and /missing closed unknown.
	if paired != 4 || unknown != 4 {
		t.Errorf("paired %d, closed unknown %d; want 4 and 4 (two of each per socket)", paired, unknown)
	}
	c := tr.Counters()
	if c.SequenceGaps != 2 || c.GapClosed != 4 || c.UnmatchedResponses != 2 {
		t.Errorf("counters %+v: want 2 sequence gaps, 4 requests closed by them, 2 unmatched responses", c)
	}
	for _, x := range xs {
		if x.HTTP.Path == "/api/users" && x.HTTP.Status != 503 {
			t.Errorf("%v: the request after the gap must pair with its own 503", x.Side)
		}
	}
}

// The same loss seen by one socket only (the server's write was reported, the client's read
// was not): the client side recovers the same way; the server side is untouched.
func TestHTTP1LostEventOnOneSocket(t *testing.T) {
	fc := loadFixture(t, "http1.tsv")[0]
	cc, _ := fc.cookies(0)
	evs := dropEvents(fc.events(0, replay{}), cc, capture.DirectionRecv, "HTTP/1.1 200", 1)
	var xs []*Exchange
	tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x) })
	feed(tr, evs)
	checkNoMispairing(t, xs, http1Truth)
	if srv := bySide(xs, SideServer); len(srv) != 4 {
		t.Errorf("server side: %d exchanges, want all 4 paired", len(srv))
	}
}

// Pipelined requests (one write of three requests) with the middle response lost: the two
// requests outstanding at the gap are closed, and nothing pairs with a neighbour's response.
func TestHTTP1PipelinedLostResponse(t *testing.T) {
	fc := loadFixture(t, "http1.tsv")[2]
	dropSegment(fc, false, 1) // nginx's 503 for /api/orders
	var xs []*Exchange
	tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x) })
	feed(tr, fc.events(0, replay{close: true}))
	paired, unknown := checkNoMispairing(t, xs, http1Truth)
	if paired != 2 || unknown != 4 {
		t.Errorf("paired %d, closed unknown %d; want /index.html paired and the other two closed, per socket", paired, unknown)
	}
}

// A lost request (its response then arrives with nothing outstanding) is counted, and the
// requests after it pair with their own responses.
func TestHTTP1LostRequest(t *testing.T) {
	fc := loadFixture(t, "http1.tsv")[0]
	dropSegment(fc, true, 1) // GET /b.html
	var xs []*Exchange
	tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x) })
	feed(tr, fc.events(0, replay{}))
	paired, unknown := checkNoMispairing(t, xs, http1Truth)
	if paired != 6 || unknown != 0 {
		t.Errorf("paired %d, unknown %d; want the three other requests paired on each socket", paired, unknown)
	}
	if c := tr.Counters(); c.UnmatchedResponses != 2 || c.SequenceGaps != 2 {
		t.Errorf("counters %+v", c)
	}
}

// A lost read/write inside a body whose length is known loses nothing: the bytes are
// accounted for by Content-Length, so the next message is where it was expected.
func TestHTTP1LostBodyChunkKeepsSync(t *testing.T) {
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	c := newH1Conn(tr, 10)
	body := string(bytes.Repeat([]byte("x"), 3000))
	c.send(true, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", 512)
	c.send(false, "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n"+body[:1000], 512)
	c.sseq += 1000 // the second write of the body: its events were lost
	c.send(false, body[2000:], 512)
	c.send(true, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n", 512)
	c.send(false, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 512)
	got := bySide(*xs, SideClient)
	if len(got) != 2 || got[1].HTTP.Path != "/next" || got[1].HTTP.Status != 404 || got[1].Failure != FailureNone {
		t.Fatalf("want /big → 200 and /next → 404, got %d exchanges", len(got))
	}
	if cn := tr.Counters(); cn.SequenceGaps != 2 || cn.GapClosed != 0 || cn.Resyncs != 0 {
		t.Errorf("counters %+v: the gap is counted, nothing is closed or skipped", cn)
	}
}

// A response whose bytes precede what the response stream had reached when the request was
// seen (an event delivered out of order) cannot answer that request.
func TestHTTP1ResponseCannotPrecedeRequest(t *testing.T) {
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	c := newH1Conn(tr, 10)
	c.send(true, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n", 0)
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	c.send(false, resp, 0)
	c.send(true, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n", 0)
	// The first response again, as a late duplicate on the client socket: same bytes, same seq.
	c.tr.Data(&capture.DataEvent{Time: c.now, Socket: c.cs, Direction: capture.DirectionRecv, Size: len(resp), Payload: []byte(resp), Seq: 5001, ClientISN: 1000, ServerISN: 5000})
	c.send(false, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0)
	for _, x := range bySide(*xs, SideClient) {
		if x.HTTP.Path == "/b" && x.HTTP.Status != 404 {
			t.Errorf("/b paired with status %d", x.HTTP.Status)
		}
	}
}
