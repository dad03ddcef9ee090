package l7

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/net/http2/hpack"

	"github.com/netintel/netintelreceiver/internal/capture"
)

func readEvents(t *testing.T, name string) []capture.Event {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := capture.ReadRecording(f)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// joinAfter keeps what a capture started after the first n data events would have seen: no
// connect or accept (the socket predates it: role unknown), and only the later reads/writes.
func joinAfter(evs []capture.Event, n int, keepRoles bool) []capture.Event {
	var out []capture.Event
	seen := 0
	for _, e := range evs {
		if e.Data != nil {
			seen++
			if seen <= n {
				continue
			}
			d := *e.Data
			if !keepRoles {
				d.Socket.Role = capture.RoleUnknown
			}
			out = append(out, capture.Event{Data: &d})
			continue
		}
		if seen > n && e.Conn.Kind != capture.ConnOpened {
			out = append(out, e)
		}
	}
	return out
}

// h2HeadersFrames counts the HEADERS frames in p (from a frame boundary).
func h2HeadersFrames(p []byte) (n int) {
	p = bytes.TrimPrefix(p, []byte(h2Preface))
	for off := 0; off+h2FrameHeaderLen <= len(p); {
		h := readH2FrameHeader(p[off:])
		if h.typ == h2Headers {
			n++
		}
		off += h2FrameHeaderLen + h.length
	}
	return n
}

// h2load -c 1 -m 1 --rps 40 against nghttpd, recorded by the real kernel programs
// (testdata/h2load-keepalive.events): 60 requests alternating /index.html (200) and
// /missing (404) on ONE connection. A collector that starts in the middle of it never sees
// the preface, the SETTINGS or the requests that filled the HPACK tables: `:authority` and
// `user-agent` are references to entries it never saw. `:method` (static) and `:path`
// (nghttp2 never indexes it) must still be decoded for every later request, and each
// response's status (static) paired with its own request.
func TestHTTP2JoinedMidStreamRecording(t *testing.T) {
	full := readEvents(t, "h2load-keepalive.events")
	for _, tc := range []struct {
		name      string
		join      int
		keepRoles bool
	}{
		{"after 10 events, roles from /proc", 10, true},
		{"after 10 events, roles unknown", 10, false},
		{"after 101 events", 101, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := joinAfter(full, tc.join, tc.keepRoles)
			var xs []*Exchange
			tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x) })
			feed(tr, evs)

			// Requests whose HEADERS were captured after the join, per socket.
			var want int
			for _, e := range evs {
				if d := e.Data; d != nil && d.Direction == capture.DirectionSend && d.Socket.Local.Port() != 8141 {
					want += h2HeadersFrames(d.Payload)
				}
			}
			if want < 20 {
				t.Fatalf("only %d requests after the join: recording too short", want)
			}
			status := map[string]int{"/index.html": 200, "/missing": 404}
			sides := map[Side]int{}
			for _, x := range xs {
				h := x.HTTP
				if h.Method != "GET" || status[h.Path] == 0 {
					t.Errorf("%v stream %d: method %q path %q: static and literal fields must decode", x.Side, x.StreamID, h.Method, h.Path)
					continue
				}
				if h.Status != status[h.Path] || x.Failure != FailureNone {
					t.Errorf("%v stream %d %s: status %d failure %v", x.Side, x.StreamID, h.Path, h.Status, x.Failure)
				}
				if !h.Partial {
					t.Errorf("%v stream %d: headers with unknown references must be marked partial", x.Side, x.StreamID)
				}
				sides[x.Side]++
			}
			if sides[SideClient] != want || sides[SideServer] != want {
				t.Errorf("exchanges client %d, server %d; want %d each", sides[SideClient], sides[SideServer], want)
			}
			if c := tr.Counters(); c.HPACKUnknownIndex == 0 || c.ParseFailure(ProtocolHTTP2) != 0 {
				t.Errorf("counters %+v: unknown references must be counted, nothing is a parse failure", c)
			}
		})
	}
}

// The whole recording, from the preface: every request complete, nothing partial.
func TestHTTP2KeepAliveRecording(t *testing.T) {
	var xs []*Exchange
	tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x) })
	feed(tr, readEvents(t, "h2load-keepalive.events"))
	if len(xs) != 120 {
		t.Fatalf("%d exchanges, want 60 per socket", len(xs))
	}
	for _, x := range xs {
		if x.HTTP.Partial || x.HTTP.Host != "127.0.0.141:8141" || x.HTTP.UserAgent == "" {
			t.Errorf("stream %d: partial %v host %q ua %q", x.StreamID, x.HTTP.Partial, x.HTTP.Host, x.HTTP.UserAgent)
		}
	}
	if c := tr.Counters(); c.HPACKUnknownIndex != 0 {
		t.Errorf("counters %+v", c)
	}
}

// The decoder resolves what it knows, skips what it does not, and lines up again with the
// peer's table from the entries inserted after the join.
func TestHPACKPartialTable(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	block := func(fs ...hpack.HeaderField) []byte {
		buf.Reset()
		for _, f := range fs {
			if err := enc.WriteField(f); err != nil {
				t.Fatal(err)
			}
		}
		return append([]byte(nil), buf.Bytes()...)
	}
	f := func(n, v string) hpack.HeaderField { return hpack.HeaderField{Name: n, Value: v} }
	// Before the capture: these entries go into the peer's table.
	block(f(":authority", "api:8080"), f("user-agent", "grpc-go/1.7"))
	// After: the authority is a reference to an unseen entry, the path a new literal.
	b1 := block(f(":method", "POST"), f(":authority", "api:8080"), f(":path", "/pkg.Svc/Get"), f("x-new", "1"))
	b2 := block(f(":path", "/pkg.Svc/Get"), f("x-new", "1"), f("user-agent", "grpc-go/1.7"))

	d := newHPACKDecoder(4096, 1<<10)
	decode := func(b []byte) (map[string]string, int) {
		got := map[string]string{}
		unknown, err := d.decode(b, func(hf hpack.HeaderField) { got[hf.Name] = hf.Value })
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		return got, unknown
	}
	got, unknown := decode(b1)
	if got[":method"] != "POST" || got[":path"] != "/pkg.Svc/Get" || got["x-new"] != "1" || unknown != 1 {
		t.Errorf("first block: %v, %d unknown; want method, path and x-new decoded past the unknown authority", got, unknown)
	}
	got, unknown = decode(b2)
	if got[":path"] != "/pkg.Svc/Get" || got["x-new"] != "1" || unknown != 1 {
		t.Errorf("second block: %v, %d unknown; entries inserted after the join must resolve", got, unknown)
	}

	// x/net's decoder, for comparison, stops at the first unknown reference.
	var stock []string
	sd := hpack.NewDecoder(4096, func(hf hpack.HeaderField) { stock = append(stock, hf.Name) })
	if _, err := sd.Write(b1); err == nil {
		t.Fatal("stock decoder resolved an entry it never saw")
	}
	if len(stock) != 1 {
		t.Logf("stock decoder kept %v", stock)
	}

	// A connection seen from its start: an unknown index is an error, not a gap.
	fresh := newHPACKDecoder(4096, 1<<10)
	fresh.fresh()
	if _, err := fresh.decode(b2, func(hpack.HeaderField) {}); err == nil {
		t.Error("fresh table resolved a reference to an entry never inserted")
	}
}

// Once the entries inserted after the join fill the table, no unseen entry can remain: the
// table is fully known and an index past it is an error again.
func TestHPACKPartialTableResyncs(t *testing.T) {
	d := newHPACKDecoder(256, 1<<10)
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.SetMaxDynamicTableSizeLimit(256)
	for i := 0; i < 4; i++ {
		buf.Reset()
		enc.WriteField(hpack.HeaderField{Name: "x-fill", Value: string(bytes.Repeat([]byte{'a' + byte(i)}, 40))})
		if _, err := d.decode(buf.Bytes(), func(hpack.HeaderField) {}); err != nil {
			t.Fatal(err)
		}
	}
	if d.partial {
		t.Errorf("table of %d known bytes out of %d still partial", d.size, d.maxSize)
	}
	if _, _, err := d.field(uint64(len(hpackStatic) + len(d.entries) + 1)); err == nil {
		t.Error("index past a fully known table accepted")
	}
}

// route_guide's single connection joined after its first call (sockets predating the
// capture, roles unknown): later calls whose requests were seen are reported with the method
// the bytes give, trailers make them gRPC calls even though every content-type is a
// reference to an entry never seen, and nothing is invented from trailers of calls whose
// requests were not seen (they used to open bogus requests of their own).
func TestGRPCJoinedMidStream(t *testing.T) {
	fc := loadFixture(t, "grpc_stream.tsv")[0]
	fc.segs = fc.segs[6:] // GetFeature (stream 3)'s request went out before the join
	var xs []*Exchange
	tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x) })
	feed(tr, fc.events(0, replay{unknownRole: true, close: true, maxPayload: 512}))
	methods := map[uint32]string{5: "ListFeatures", 7: "RecordRoute", 9: "RouteChat"}
	per := map[uint32]int{}
	for _, x := range xs {
		m, ok := methods[x.StreamID]
		if !ok {
			t.Errorf("%v: exchange for stream %d, whose request was not captured (failure %v)", x.Side, x.StreamID, x.Failure)
			continue
		}
		per[x.StreamID]++
		if x.HTTP.Path != "/routeguide.RouteGuide/"+m || x.HTTP.Status != 200 || x.Failure != FailureNone || !x.HTTP.Partial {
			t.Errorf("%v stream %d: path %q status %d failure %v partial %v", x.Side, x.StreamID, x.HTTP.Path, x.HTTP.Status, x.Failure, x.HTTP.Partial)
		}
		// RecordRoute and RouteChat end with trailers that were captured.
		if x.StreamID != 5 && (x.Protocol != ProtocolGRPC || x.GRPC.Method != m) {
			t.Errorf("%v stream %d: protocol %v: trailers must mark it a gRPC call", x.Side, x.StreamID, x.Protocol)
		}
	}
	for id := range methods {
		if per[id] != 2 {
			t.Errorf("stream %d: %d exchanges, want one per socket", id, per[id])
		}
	}
	if c := tr.Counters(); c.UnmatchedResponses != 2 || c.HPACKUnknownIndex == 0 {
		t.Errorf("counters %+v: stream 3's response on each socket is unmatched", c)
	}
}

// FuzzHPACKPartial: whatever the bytes and however much of the table is unknown, the decoder
// never panics, never keeps more than its table size, and a decoder that saw the connection
// from its start agrees with x/net's on every block x/net accepts.
func FuzzHPACKPartial(f *testing.F) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, fs := range [][]hpack.HeaderField{
		{{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/index.html"}, {Name: ":authority", Value: "a:80"}},
		{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/grpc"}},
		{{Name: "grpc-status", Value: "0"}, {Name: "grpc-message", Value: ""}},
	} {
		buf.Reset()
		for _, hf := range fs {
			enc.WriteField(hf)
		}
		f.Add(append([]byte(nil), buf.Bytes()...), uint16(4096), false)
		f.Add(append([]byte(nil), buf.Bytes()...), uint16(64), true)
	}
	f.Fuzz(func(t *testing.T, block []byte, table uint16, joined bool) {
		d := newHPACKDecoder(uint32(table), 1<<10)
		if !joined {
			d.fresh()
		}
		var got []hpack.HeaderField
		for i := 0; i < 2; i++ { // twice: the second pass sees the first one's insertions
			got = got[:0]
			d.decode(block, func(hf hpack.HeaderField) { got = append(got, hf) })
			if d.size > d.maxSize {
				t.Fatalf("table holds %d bytes, size %d", d.size, d.maxSize)
			}
		}
		if joined {
			return
		}
		ref := newHPACKDecoder(uint32(table), 1<<10)
		ref.fresh()
		var ours, theirs []hpack.HeaderField
		_, ourErr := ref.decode(block, func(hf hpack.HeaderField) { ours = append(ours, hf) })
		std := hpack.NewDecoder(uint32(table), func(hf hpack.HeaderField) { theirs = append(theirs, hf) })
		std.SetMaxStringLength(1 << 10)
		if _, err := std.Write(block); err != nil || std.Close() != nil {
			return
		}
		if ourErr != nil {
			t.Fatalf("x/net decodes the block, we fail: %v", ourErr)
		}
		if len(ours) != len(theirs) {
			t.Fatalf("%d fields, x/net %d", len(ours), len(theirs))
		}
		for i := range ours {
			if ours[i].Name != theirs[i].Name || ours[i].Value != theirs[i].Value {
				t.Fatalf("field %d: %v, x/net %v", i, ours[i], theirs[i])
			}
		}
	})
}
