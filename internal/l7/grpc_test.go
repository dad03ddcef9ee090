package l7

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

type wantGRPC struct {
	method     string
	status     int
	statusName string
	message    string
}

// greeter_client → greeter_server, then the nf client: OK, NotFound, and an unknown method
// answered trailers-only with UNIMPLEMENTED.
var grpcWant = []wantGRPC{
	{"SayHello", 0, "OK", ""},
	{"SayHello", 0, "OK", ""},
	{"SayHello", 5, "NOT_FOUND", "no such person: ghost"},
	{"SayGoodbye", 12, "UNIMPLEMENTED", "unknown method SayGoodbye for service helloworld.Greeter"},
}

func TestGRPCFixture(t *testing.T) {
	conns := loadFixture(t, "grpc.tsv")
	for _, r := range []replay{{}, {close: true}, {unknownRole: true}, {split: 5}, {maxPayload: 512}} {
		t.Run(fmt.Sprintf("%+v", r), func(t *testing.T) {
			xs, tr := runFixture(t, "grpc.tsv", DefaultOptions(), r)
			for _, side := range []Side{SideClient, SideServer} {
				got := bySide(xs, side)
				sortByStream(got)
				if len(got) != len(grpcWant) {
					t.Fatalf("%v side: %d exchanges, want %d", side, len(got), len(grpcWant))
				}
				for i, w := range grpcWant {
					x := got[i]
					g := x.GRPC
					if x.Protocol != ProtocolGRPC || g == nil {
						t.Fatalf("%v #%d: protocol %v", side, i, x.Protocol)
					}
					if g.Service != "helloworld.Greeter" || g.Method != w.method || g.Status != w.status || g.StatusName != w.statusName || g.Message != w.message {
						t.Errorf("%v #%d: %+v, want %+v", side, i, *g, w)
					}
					if x.HTTP.Method != "POST" || x.HTTP.Path != "/helloworld.Greeter/"+w.method || x.HTTP.Status != 200 || x.Failure != FailureNone {
						t.Errorf("%v #%d: %+v failure %v", side, i, *x.HTTP, x.Failure)
					}
				}
			}
			checkIdentity(t, conns, xs, nil)
			if c := tr.Counters(); c.HPACKUnknownIndex != 0 || c.UnmatchedResponses != 0 {
				t.Errorf("counters: %+v", c)
			}
		})
	}
}

func TestGRPCUnfinishedCall(t *testing.T) {
	// Response headers went out but the trailers never came. The server did answer: the call
	// ends with the connection as an answered call of unknown status, not as a failure, unless
	// a reset cut it while every response byte was seen (the trailers really never came).
	for _, tc := range []struct {
		name string
		end  capture.ConnKind // 0: the request times out instead
		cut  bool             // the response headers were in a write cut by the payload limit
		want Failure
	}{
		{"closed", capture.ConnClosed, false, FailureNone},
		{"timeout", 0, false, FailureNone},
		{"reset", capture.ConnResetReceived, false, FailureReset},
		{"reset after a cut write", capture.ConnResetReceived, true, FailureNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xs, emit := collect()
			tr := NewTracker(DefaultOptions(), emit)
			c := newH2Conn(tr)
			c.send(true, h2Preface+string(c.headers(true, 1, false, ":method", "POST", ":path", "/pkg.Svc/Stream", ":authority", "x", "content-type", "application/grpc")), 0)
			resp := string(c.headers(false, 1, false, ":status", "200", "content-type", "application/grpc"))
			max := 0
			if tc.cut {
				max = len(resp)
				resp += string(h2Frame(h2Data, 0, 1, make([]byte, 100)))
			}
			c.send(false, resp, max)
			answered := c.now
			c.now = c.now.Add(time.Second)
			if tc.end == 0 {
				tr.Tick(c.now.Add(DefaultOptions().RequestTimeout))
			} else {
				tr.Conn(&capture.ConnEvent{Kind: tc.end, Time: c.now, Socket: c.cs})
			}
			got := bySide(*xs, SideClient)
			if len(got) != 1 {
				t.Fatalf("%d exchanges", len(got))
			}
			x := got[0]
			if x.GRPC.Service != "pkg.Svc" || x.GRPC.Method != "Stream" || x.GRPC.Status != -1 || x.GRPC.StatusName != "" || x.HTTP.Status != 200 || !x.HTTP.Partial {
				t.Errorf("got %+v %+v", *x.GRPC, *x.HTTP)
			}
			if x.Failure != tc.want || !x.End.Equal(answered) {
				t.Errorf("failure %v end %v, want %v at the response headers %v", x.Failure, x.End, tc.want, answered)
			}
		})
	}
}

// grpc_stream.tsv: route_guide's client against its server (testdata/README.md): GetFeature
// twice, the server stream ListFeatures (64 features in ONE 6464-byte write: PING ack,
// WINDOW_UPDATE, PING, response HEADERS, 64 DATA frames, trailers), the client stream
// RecordRoute and the bidirectional RouteChat, all OK; the client closes first.
var routeGuideWant = []struct {
	stream uint32
	method string
}{{1, "GetFeature"}, {3, "GetFeature"}, {5, "ListFeatures"}, {7, "RecordRoute"}, {9, "RouteChat"}}

func TestGRPCServerStreamFixture(t *testing.T) {
	conns := loadFixture(t, "grpc_stream.tsv")
	if len(conns) != 1 {
		t.Fatalf("%d connections", len(conns))
	}
	fc := conns[0]
	if !fc.clientFinFirst {
		t.Fatalf("the recorded client closed first")
	}
	for _, r := range []replay{{}, {close: true}, {maxPayload: 512}, {maxPayload: 512, close: true}, {maxPayload: 512, unknownRole: true}, {maxPayload: 512, clientOnly: true}} {
		t.Run(fmt.Sprintf("%+v", r), func(t *testing.T) {
			var evs []capture.Event
			var xs []*Exchange
			var seen []int // events fed when each exchange was emitted
			tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x); seen = append(seen, len(evs)) })
			for _, e := range fc.events(0, r) {
				evs = append(evs, e)
				feed(tr, []capture.Event{e})
			}
			sides := []Side{SideClient, SideServer}
			if r.clientOnly {
				sides = sides[:1]
			}
			cut := r.maxPayload > 0
			for _, side := range sides {
				got := bySide(xs, side)
				if len(got) != len(routeGuideWant) {
					t.Fatalf("%v side: %d exchanges, want %d", side, len(got), len(routeGuideWant))
				}
				for i, w := range routeGuideWant {
					x := got[i]
					g := x.GRPC
					if x.StreamID != w.stream || x.Protocol != ProtocolGRPC || g == nil || g.Service != "routeguide.RouteGuide" || g.Method != w.method {
						t.Fatalf("%v #%d: stream %d %v %+v, want %+v", side, i, x.StreamID, x.Protocol, g, w)
					}
					if x.Failure != FailureNone || x.HTTP.Status != 200 {
						t.Errorf("%v %s: failure %v status %d", side, w.method, x.Failure, x.HTTP.Status)
					}
					if w.method == "ListFeatures" && cut {
						// The trailers were in the uncaptured part of the write.
						if g.Status != -1 || g.StatusName != "" || !x.HTTP.Partial {
							t.Errorf("%v ListFeatures: %+v partial %v, want status -1, partial", side, *g, x.HTTP.Partial)
						}
						at := fc.segAt(false, 5) // the write with the response HEADERS
						if !x.End.Equal(at) {
							t.Errorf("%v ListFeatures: end %v, want the response headers' %v", side, x.End, at)
						}
						continue
					}
					if g.Status != 0 || g.StatusName != "OK" || x.HTTP.Partial && !r.unknownRole {
						t.Errorf("%v %s: %+v partial %v", side, w.method, *g, x.HTTP.Partial)
					}
				}
			}
			// ListFeatures is emitted when the next call starts, not held until the close.
			for i, x := range xs {
				if x.StreamID == 5 && seen[i] > len(evs)-2 {
					t.Errorf("%v ListFeatures emitted after %d of %d events", x.Side, seen[i], len(evs))
				}
			}
			if !r.clientOnly {
				checkIdentity(t, conns, xs, nil)
			}
			if c := tr.Counters(); c.HPACKUnknownIndex != 0 || c.UnmatchedResponses != 0 || c.ParseFailure(ProtocolHTTP2) != 0 || c.Connections != 0 && r.close {
				t.Errorf("counters: %+v", c)
			}
		})
	}
}

// segAt is the time of the first segment from one end that carries a HEADERS frame of stream.
func (fc *fixtureConn) segAt(fromClient bool, stream uint32) time.Time {
	for _, s := range fc.segs {
		if s.fromClient == fromClient && h2Opens(s.payload, stream) {
			return s.at
		}
	}
	return time.Time{}
}

// h2Opens reports whether the frames in p (from a frame boundary) hold a HEADERS of stream.
func h2Opens(p []byte, stream uint32) bool {
	p = bytes.TrimPrefix(p, []byte(h2Preface))
	for off := 0; off+h2FrameHeaderLen <= len(p); {
		h := readH2FrameHeader(p[off:])
		if h.typ == h2Headers && h.stream == stream {
			return true
		}
		off += h2FrameHeaderLen + h.length
	}
	return false
}

func TestGRPCAbandonedFixture(t *testing.T) {
	// route_guide's last call (RouteChat, stream 9) with the server's answer removed: the
	// connection then closes with the call outstanding. The recorded client closed first, so
	// the call was abandoned by its client, on both sockets; had the server closed first, it
	// is the server's failure.
	for _, tc := range []struct {
		name        string
		clientFirst bool
		want        Failure
	}{
		{"client closed first", true, FailureAbandoned},
		{"server closed first", false, FailureClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := loadFixture(t, "grpc_stream.tsv")[0]
			var segs []segment
			asked := false
			for _, s := range fc.segs {
				asked = asked || s.fromClient && h2Opens(s.payload, 9)
				if asked && !s.fromClient {
					continue
				}
				segs = append(segs, s)
			}
			fc.segs, fc.clientFinFirst = segs, tc.clientFirst
			xs, emit := collect()
			tr := NewTracker(DefaultOptions(), emit)
			feed(tr, fc.events(0, replay{close: true}))
			n := 0
			for _, x := range *xs {
				if x.StreamID != 9 {
					if x.Failure != FailureNone {
						t.Errorf("%v stream %d: %v", x.Side, x.StreamID, x.Failure)
					}
					continue
				}
				n++
				if x.GRPC.Method != "RouteChat" || x.Failure != tc.want || x.HTTP.Status != 0 || !x.End.Equal(fc.end) {
					t.Errorf("%v RouteChat: failure %v status %d end %v, want %v at %v", x.Side, x.Failure, x.HTTP.Status, x.End, tc.want, fc.end)
				}
			}
			if n != 2 || len(*xs) != 10 {
				t.Errorf("%d RouteChat exchanges of %d, want one per socket of 10", n, len(*xs))
			}
		})
	}
}

func TestGRPCNames(t *testing.T) {
	for _, tc := range []struct {
		path, svc, method string
	}{
		{"/helloworld.Greeter/SayHello", "helloworld.Greeter", "SayHello"},
		{"/grpc.health.v1.Health/Check", "grpc.health.v1.Health", "Check"},
		{"nomethod", "nomethod", ""},
	} {
		if s, m := splitGRPCPath(tc.path); s != tc.svc || m != tc.method {
			t.Errorf("%s: %s %s", tc.path, s, m)
		}
	}
	for code, name := range map[int]string{0: "OK", 2: "UNKNOWN", 4: "DEADLINE_EXCEEDED", 14: "UNAVAILABLE", 16: "UNAUTHENTICATED", 17: "CODE_17"} {
		if got := grpcCodeName(code); got != name {
			t.Errorf("code %d: %s, want %s", code, got, name)
		}
	}
	if got := decodeGRPCMessage("no%20such%20thing"); got != "no such thing" {
		t.Errorf("grpc-message not decoded: %q", got)
	}
}

func TestGRPCMidStreamNeverWrong(t *testing.T) {
	// Join the nf connection after the first call's HEADERS: the dynamic table entries it
	// added are unknown. What is decoded later must be right or absent, never another call's.
	fc := loadFixture(t, "grpc.tsv")[1]
	fc.segs = fc.segs[6:]
	var xs []*Exchange
	tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x) })
	feed(tr, fc.events(0, replay{unknownRole: true, close: true}))
	truth := map[uint32]wantGRPC{3: grpcWant[2], 5: grpcWant[3]}
	if len(xs) != 4 {
		t.Fatalf("%d exchanges, want streams 3 and 5 on both sockets", len(xs))
	}
	for _, x := range xs {
		w, ok := truth[x.StreamID]
		if !ok {
			t.Fatalf("exchange for stream %d", x.StreamID)
		}
		if x.HTTP.Path != "" && x.HTTP.Path != "/helloworld.Greeter/"+w.method {
			t.Errorf("stream %d: wrong path %q", x.StreamID, x.HTTP.Path)
		}
		if x.GRPC != nil && x.GRPC.StatusName != "" && x.GRPC.StatusName != w.statusName {
			t.Errorf("stream %d: wrong status %s", x.StreamID, x.GRPC.StatusName)
		}
		if !x.HTTP.Partial || x.Protocol != ProtocolGRPC || x.GRPC.StatusName != w.statusName {
			t.Errorf("stream %d: partial %v protocol %v: the response's grpc-status must make it a gRPC call", x.StreamID, x.HTTP.Partial, x.Protocol)
		}
		t.Logf("stream %d %v path %q grpc %+v", x.StreamID, x.Protocol, x.HTTP.Path, x.GRPC)
	}
	if c := tr.Counters(); c.HPACKUnknownIndex == 0 || c.UnmatchedResponses == 0 {
		t.Errorf("counters %+v", c)
	}
}
