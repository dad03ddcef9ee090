package l7

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/netintel/netintelreceiver/internal/capture"
)

type wantH2 struct {
	isn    uint32 // the connection, by client ISN
	stream uint32
	path   string
	query  string
	status int
}

func http2Want(conns []*fixtureConn) []wantH2 {
	a, b := conns[0].clientISN, conns[1].clientISN
	return []wantH2{
		{a, 13, "/index.html", "", 200}, {a, 15, "/b.html", "q=secret", 200}, {a, 17, "/missing", "", 404},
		{b, 1, "/index.html", "", 200}, {b, 3, "/index.html", "", 200}, {b, 5, "/index.html", "", 200}, {b, 7, "/index.html", "", 200},
	}
}

func sortByStream(xs []*Exchange) {
	sort.SliceStable(xs, func(i, j int) bool {
		if xs[i].ClientISN != xs[j].ClientISN {
			return xs[i].Start.Before(xs[j].Start)
		}
		return xs[i].StreamID < xs[j].StreamID
	})
}

func TestHTTP2Fixture(t *testing.T) {
	conns := loadFixture(t, "http2.tsv")
	want := http2Want(conns)
	// maxPayload 234: nghttpd's 376-byte write of three responses loses the END_STREAM DATA
	// frame of stream 17 (the 404's body); its headers were seen, so the close does not fail it.
	for _, r := range []replay{{}, {close: true}, {unknownRole: true}, {split: 7}, {split: 1}, {maxPayload: 512}, {maxPayload: 234, close: true}} {
		t.Run(fmt.Sprintf("%+v", r), func(t *testing.T) {
			xs, tr := runFixture(t, "http2.tsv", DefaultOptions(), r)
			for _, side := range []Side{SideClient, SideServer} {
				got := bySide(xs, side)
				sortByStream(got)
				if len(got) != len(want) {
					t.Fatalf("%v side: %d exchanges, want %d", side, len(got), len(want))
				}
				for i, w := range want {
					x := got[i]
					h := x.HTTP
					if x.ClientISN != w.isn || x.StreamID != w.stream || h.Method != "GET" || h.Path != w.path || h.Query != w.query || h.Status != w.status {
						t.Errorf("%v #%d: stream %d %s %s ?%s → %d, want %+v", side, i, x.StreamID, h.Method, h.Path, h.Query, h.Status, w)
					}
					if x.Protocol != ProtocolHTTP2 || h.Version != "2" || h.Host != "127.0.0.45:8081" || h.Partial || x.Failure != FailureNone {
						t.Errorf("%v #%d: %v version %q host %q partial %v failure %v", side, i, x.Protocol, h.Version, h.Host, h.Partial, x.Failure)
					}
				}
			}
			checkIdentity(t, conns, xs, nil)
			if c := tr.Counters(); c.HPACKUnknownIndex != 0 || c.UnmatchedResponses != 0 || c.ParseFailure(ProtocolHTTP2) != 0 {
				t.Errorf("counters: %+v", c)
			}
		})
	}
}

func TestHTTP2MidStream(t *testing.T) {
	// Join h2load's connection after its preface, SETTINGS and the HEADERS of streams 1 and 3:
	// their responses are counted, and streams 5 and 7, whose headers reference dynamic-table
	// entries added before the join, degrade to what is decodable.
	fc := loadFixture(t, "http2.tsv")[1]
	fc.segs = fc.segs[2:]
	var xs []*Exchange
	tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x) })
	feed(tr, fc.events(0, replay{unknownRole: true}))
	c := tr.Counters()
	if c.HPACKUnknownIndex == 0 || c.UnmatchedResponses == 0 {
		t.Errorf("unknown HPACK references and unmatched responses must be counted: %+v", c)
	}
	sortByStream(xs)
	if len(xs) != 4 {
		t.Fatalf("%d exchanges, want streams 5 and 7 on both sockets", len(xs))
	}
	for _, x := range xs {
		if (x.StreamID != 5 && x.StreamID != 7) || !x.HTTP.Partial || x.HTTP.Status != 200 {
			t.Errorf("stream %d partial %v status %d", x.StreamID, x.HTTP.Partial, x.HTTP.Status)
		}
	}
	if xs[0].Side == xs[1].Side {
		t.Errorf("sides not inferred")
	}
}

// h2Conn builds HTTP/2 traffic for synthetic cases.
type h2Conn struct {
	*h1Conn
	enc    [2]*hpack.Encoder
	encBuf [2]bytes.Buffer
}

func newH2Conn(tr *Tracker) *h2Conn {
	c := &h2Conn{h1Conn: newH1Conn(tr, 10)}
	c.h1Conn.cs.Remote = netip.MustParseAddrPort("127.0.0.45:8081")
	for i := range c.enc {
		c.enc[i] = hpack.NewEncoder(&c.encBuf[i])
	}
	return c
}

func h2Frame(typ, flags byte, stream uint32, payload []byte) []byte {
	b := make([]byte, h2FrameHeaderLen, h2FrameHeaderLen+len(payload))
	b[0], b[1], b[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	b[3], b[4] = typ, flags
	binary.BigEndian.PutUint32(b[5:], stream)
	return append(b, payload...)
}

func (c *h2Conn) headers(fromClient bool, stream uint32, endStream bool, kv ...string) []byte {
	i := 0
	if !fromClient {
		i = 1
	}
	c.encBuf[i].Reset()
	for j := 0; j+1 < len(kv); j += 2 {
		c.enc[i].WriteField(hpack.HeaderField{Name: kv[j], Value: kv[j+1]})
	}
	flags := byte(h2FlagEndHeaders)
	if endStream {
		flags |= h2FlagEndStream
	}
	return h2Frame(h2Headers, flags, stream, c.encBuf[i].Bytes())
}

func TestHTTP2ResetAndClose(t *testing.T) {
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	c := newH2Conn(tr)
	settings := h2Frame(h2Settings, 0, 0, nil)
	c.send(true, h2Preface+string(settings)+string(c.headers(true, 1, true, ":method", "GET", ":path", "/a", ":authority", "x")), 0)
	c.send(false, string(settings)+string(h2Frame(h2RSTStream, 0, 1, []byte{0, 0, 0, 2})), 0)
	c.send(true, string(c.headers(true, 3, true, ":method", "GET", ":path", "/b", ":authority", "x")), 0)
	c.tr.Conn(&capture.ConnEvent{Kind: capture.ConnResetReceived, Time: c.now, Socket: c.cs})
	got := bySide(*xs, SideClient)
	if len(got) != 2 {
		t.Fatalf("%d client exchanges, want 2", len(got))
	}
	sortByStream(got)
	if got[0].StreamID != 1 || got[0].Failure != FailureReset || got[1].StreamID != 3 || got[1].Failure != FailureReset {
		t.Errorf("stream %d %v, stream %d %v: want both reset", got[0].StreamID, got[0].Failure, got[1].StreamID, got[1].Failure)
	}
}

func TestHPACKTableSizeAttack(t *testing.T) {
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	c := newH2Conn(tr)
	// The server announces a 4 GiB header table; the client's encoder then asks for 1 GiB:
	// l7 caps what it allows, so the block fails to decode instead of growing the table.
	big := make([]byte, 6)
	binary.BigEndian.PutUint16(big, h2SettingHeaderTableSize)
	binary.BigEndian.PutUint32(big[2:], 0xffffffff)
	c.send(true, h2Preface+string(h2Frame(h2Settings, 0, 0, nil)), 0)
	c.send(false, string(h2Frame(h2Settings, 0, 0, big)), 0)
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	enc.SetMaxDynamicTableSizeLimit(1 << 30)
	enc.SetMaxDynamicTableSize(1 << 30)
	enc.WriteField(hpack.HeaderField{Name: ":method", Value: "GET"})
	c.send(true, string(h2Frame(h2Headers, h2FlagEndHeaders, 1, blk.Bytes())), 0)
	if n := tr.Counters().ParseFailure(ProtocolHTTP2); n == 0 {
		t.Errorf("oversized table size update not rejected")
	}
	// The connection keeps working for blocks that respect the cap.
	c.send(true, string(c.headers(true, 3, true, ":method", "GET", ":path", "/ok", ":authority", "x")), 0)
	c.send(false, string(c.headers(false, 3, true, ":status", "200")), 0)
	found := false
	for _, x := range *xs {
		found = found || x.StreamID == 3 && x.HTTP.Path == "/ok" && x.HTTP.Status == 200
	}
	if !found {
		t.Errorf("later stream lost after a rejected block")
	}
}

func TestHTTP2Continuation(t *testing.T) {
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	c := newH2Conn(tr)
	blk := c.headers(true, 1, true, ":method", "POST", ":path", "/split?q=1", ":authority", "svc", "user-agent", "test/1")[h2FrameHeaderLen:]
	first := h2Frame(h2Headers, h2FlagEndStream|h2FlagPadded, 1, append(append([]byte{3}, blk[:5]...), 0, 0, 0))
	cont := h2Frame(h2Continuation, h2FlagEndHeaders, 1, blk[5:])
	c.send(true, h2Preface+string(first), 0)
	c.send(true, string(cont), 0)
	c.send(false, string(c.headers(false, 1, false, ":status", "500", "content-type", "text/plain"))+string(h2Frame(h2Data, h2FlagEndStream, 1, []byte("boom"))), 0)
	got := bySide(*xs, SideClient)
	if len(got) != 1 {
		t.Fatalf("%d exchanges", len(got))
	}
	h := got[0].HTTP
	if h.Method != "POST" || h.Path != "/split" || h.Query != "q=1" || h.Host != "svc" || h.UserAgent != "test/1" || h.Status != 500 || h.ContentType != "text/plain" {
		t.Errorf("got %+v", h)
	}
	if got[0].Start.After(got[0].End) || got[0].End.Sub(got[0].Start) != 2*time.Millisecond {
		t.Errorf("timing: start %v end %v", got[0].Start, got[0].End)
	}
}

// compactOf is what the kernel's frame walk sends of bytes that begin at a frame boundary (or
// with the preface): every frame header, DATA without its payload, other payloads whole.
func compactOf(b []byte) []byte {
	var out []byte
	if bytes.HasPrefix(b, []byte(h2Preface)) {
		out, b = append(out, h2Preface...), b[len(h2Preface):]
	}
	for len(b) >= h2FrameHeaderLen {
		h := readH2FrameHeader(b)
		out = append(out, b[:h2FrameHeaderLen]...)
		if h.typ != h2Data {
			out = append(out, b[h2FrameHeaderLen:h2FrameHeaderLen+h.length]...)
		}
		b = b[h2FrameHeaderLen+h.length:]
	}
	return out
}

// TestHTTP2CompactBatchedDifferently: the kernel's compact records of a gRPC-like exchange where
// the client writes preface, SETTINGS, HEADERS and DATA in one call and the server reads them in
// three, and answers HEADERS, DATA and trailers in one write that the client reads in two: both
// ends make the same exchange with the same identity (ISNs and stream id), status and trailers.
func TestHTTP2CompactBatchedDifferently(t *testing.T) {
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	c := newH2Conn(tr)
	settings := h2Frame(h2Settings, 0, 0, nil)
	hdrs := c.headers(true, 1, false, ":method", "POST", ":path", "/pkg.Svc/Call", ":authority", "svc", "content-type", "application/grpc")
	body := h2Frame(h2Data, h2FlagEndStream, 1, bytes.Repeat([]byte("b"), 300))
	respHeaders := c.headers(false, 1, false, ":status", "200", "content-type", "application/grpc")
	respData := h2Frame(h2Data, 0, 1, bytes.Repeat([]byte("r"), 500))
	resp := append(append(respHeaders, respData...), c.headers(false, 1, true, "grpc-status", "5")...)

	ev := func(s capture.Socket, d capture.Direction, seq uint32, real []byte, payload []byte) *capture.DataEvent {
		c.now = c.now.Add(time.Millisecond)
		return &capture.DataEvent{Time: c.now, Socket: s, Direction: d, Size: len(real), Payload: payload, Seq: seq,
			ClientISN: 1000, ServerISN: 5000, H2Compact: true}
	}
	req := append(append([]byte(h2Preface), settings...), append(hdrs, body...)...)
	tr.Data(ev(c.cs, capture.DirectionSend, 1001, req, compactOf(req)))
	// The server's three reads: preface and SETTINGS, HEADERS, DATA.
	cuts := []int{len(h2Preface) + len(settings), len(h2Preface) + len(settings) + len(hdrs), len(req)}
	from := 0
	for _, to := range cuts {
		part := req[from:to]
		tr.Data(ev(c.ss, capture.DirectionRecv, 1001+uint32(from), part, compactOf(part)))
		from = to
	}
	tr.Data(ev(c.ss, capture.DirectionSend, 5001, resp, compactOf(resp)))
	// The client's two reads: HEADERS and DATA, then the trailers.
	split := len(respHeaders) + len(respData)
	tr.Data(ev(c.cs, capture.DirectionRecv, 5001, resp[:split], compactOf(resp[:split])))
	tr.Data(ev(c.cs, capture.DirectionRecv, 5001+uint32(split), resp[split:], compactOf(resp[split:])))

	if len(*xs) != 2 {
		t.Fatalf("%d exchanges, want one per end", len(*xs))
	}
	a, b := (*xs)[0], (*xs)[1]
	if a.Side == b.Side || a.ClientISN != b.ClientISN || a.ServerISN != b.ServerISN || a.RequestSeq != b.RequestSeq || a.StreamID != b.StreamID || a.StreamID != 1 {
		t.Errorf("identities differ: %v %d/%d/%d/%d, %v %d/%d/%d/%d", a.Side, a.ClientISN, a.ServerISN, a.RequestSeq, a.StreamID, b.Side, b.ClientISN, b.ServerISN, b.RequestSeq, b.StreamID)
	}
	for _, x := range *xs {
		if x.GRPC == nil || x.GRPC.Status != 5 || x.HTTP.Path != "/pkg.Svc/Call" || x.HTTP.Status != 200 {
			t.Errorf("%v: grpc %+v path %q status %d", x.Side, x.GRPC, x.HTTP.Path, x.HTTP.Status)
		}
	}
}

// TestHTTP2CompactWalkCutThenReset: a gRPC server stream answered in one write with more frames
// than the kernel walks, so its trailers are not in the record (Truncated), and then the client
// resets the connection (it closed with a PING ack unread, as grpc-go's route_guide client
// does). The call answered and its end went unseen: it is reported with its status unknown,
// never as reset. The same when the server's record with the trailers was lost (a sequence gap
// shows at its next record). The twin: every response byte walked and no trailers among them —
// the server really was cut off mid-stream — fails the call as reset.
func TestHTTP2CompactWalkCutThenReset(t *testing.T) {
	for _, tc := range []struct {
		name      string
		truncated bool // the walk stopped before the trailers
		lost      bool // the server's next record (with the trailers) was lost
		failure   Failure
	}{
		{"walk cut", true, false, FailureNone},
		{"record lost", false, true, FailureNone},
		{"walked whole, no trailers", false, false, FailureReset},
	} {
		xs, emit := collect()
		tr := NewTracker(DefaultOptions(), emit)
		c := newH2Conn(tr)
		ev := func(s capture.Socket, d capture.Direction, seq uint32, size int, payload []byte, cut bool) *capture.DataEvent {
			c.now = c.now.Add(time.Millisecond)
			return &capture.DataEvent{Time: c.now, Socket: s, Direction: d, Size: size, Payload: payload, Seq: seq,
				ClientISN: 1000, ServerISN: 5000, H2Compact: true, Truncated: cut}
		}
		settings := h2Frame(h2Settings, 0, 0, nil)
		req := append(append([]byte(h2Preface), settings...), c.headers(true, 1, false, ":method", "POST", ":path", "/routeguide.RouteGuide/ListFeatures", ":authority", "svc", "content-type", "application/grpc")...)
		req = append(req, h2Frame(h2Data, h2FlagEndStream, 1, bytes.Repeat([]byte("q"), 20))...)
		tr.Data(ev(c.ss, capture.DirectionRecv, 1001, len(req), compactOf(req), false))
		resp := append(settings, c.headers(false, 1, false, ":status", "200", "content-type", "application/grpc")...)
		for i := 0; i < 30; i++ {
			resp = append(resp, h2Frame(h2Data, 0, 1, bytes.Repeat([]byte("f"), 60))...)
		}
		walked := compactOf(resp)
		if tc.truncated {
			resp = append(resp, c.headers(false, 1, true, "grpc-status", "0")...)
			walked = walked[:len(walked)-10*h2FrameHeaderLen] // the walk's bound: 10 DATA frames and the trailers unwalked
		}
		tr.Data(ev(c.ss, capture.DirectionSend, 5001, len(resp), walked, tc.truncated))
		next := 5001 + uint32(len(resp))
		if tc.lost {
			next += 40 // the record with the trailers
		}
		ping := h2Frame(h2Ping, h2FlagAck, 0, []byte("pingpong"))
		tr.Data(ev(c.ss, capture.DirectionSend, next, len(ping), ping, false))
		tr.Conn(&capture.ConnEvent{Kind: capture.ConnResetReceived, Time: c.now.Add(time.Millisecond), Socket: c.ss})
		got := bySide(*xs, SideServer)
		if len(got) != 1 {
			t.Errorf("%s: %d server calls, want 1", tc.name, len(got))
			continue
		}
		x := got[0]
		if x.Failure != tc.failure || x.GRPC == nil || x.GRPC.Status != -1 || !x.HTTP.Partial || x.HTTP.Status != 200 {
			t.Errorf("%s: failure %v grpc %+v partial %v status %d; want failure %v, grpc status unknown (-1), partial, :status 200",
				tc.name, x.Failure, x.GRPC, x.HTTP.Partial, x.HTTP.Status, tc.failure)
		}
	}
}
