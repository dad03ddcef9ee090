package l7

import (
	"fmt"
	"testing"

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
			checkIdentity(t, conns, xs, isH2Headers)
			if c := tr.Counters(); c.HPACKUnknownIndex != 0 || c.UnmatchedResponses != 0 {
				t.Errorf("counters: %+v", c)
			}
		})
	}
}

func TestGRPCUnfinishedCall(t *testing.T) {
	// Response headers went out but the trailers never came: the call ends with the connection.
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	c := newH2Conn(tr)
	c.send(true, h2Preface+string(c.headers(true, 1, false, ":method", "POST", ":path", "/pkg.Svc/Stream", ":authority", "x", "content-type", "application/grpc")), 0)
	c.send(false, string(c.headers(false, 1, false, ":status", "200", "content-type", "application/grpc")), 0)
	tr.Conn(&capture.ConnEvent{Kind: capture.ConnClosed, Time: c.now, Socket: c.cs})
	if len(*xs) != 1 {
		t.Fatalf("%d exchanges", len(*xs))
	}
	x := (*xs)[0]
	if x.GRPC.Service != "pkg.Svc" || x.GRPC.Method != "Stream" || x.GRPC.Status != -1 || x.Failure != FailureClosed || x.HTTP.Status != 200 {
		t.Errorf("got %+v failure %v", *x.GRPC, x.Failure)
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
