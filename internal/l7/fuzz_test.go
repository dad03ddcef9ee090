package l7

import (
	"bytes"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// Fuzz targets: one per parser. Each feeds hostile bytes through the tracker on a client and a
// server socket (the parser forced, so detection does not filter the input) and checks that
// what comes out is well formed and that per-socket state stays within its caps.

// fixtureStreams returns, per connection of a fixture, the bytes each side sent.
func fixtureStreams(f *testing.F, name string) (reqs, resps [][]byte) {
	for _, fc := range loadFixture(f, name) {
		var req, resp []byte
		for _, s := range fc.segs {
			if s.fromClient {
				req = append(req, s.payload...)
			} else {
				resp = append(resp, s.payload...)
			}
		}
		reqs, resps = append(reqs, req), append(resps, resp)
	}
	return reqs, resps
}

func seedStreams(f *testing.F, name string) {
	reqs, resps := fixtureStreams(f, name)
	for i := range reqs {
		f.Add(reqs[i], resps[i], uint8(0), uint16(0))
		f.Add(reqs[i], resps[i], uint8(7), uint16(64))
	}
}

// fuzzConn feeds req (client → server) and resp (server → client) on two sockets, in pieces
// of split+1 bytes alternating between the two directions, cut to maxPayload.
func fuzzConn(t *testing.T, newParser func() parser, proto Protocol, transport capture.Transport, req, resp []byte, split uint8, maxPayload uint16) {
	var xs []*Exchange
	tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x) })
	cli, srv := netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("127.0.0.2:80")
	cs := capture.Socket{Cookie: 1, Transport: transport, Local: cli, Remote: srv, Role: capture.RoleUnknown}
	ss := capture.Socket{Cookie: 2, Transport: transport, Local: srv, Remote: cli, Role: capture.RoleServer}
	now := time.Unix(1_800_000_000, 0)
	for _, s := range []capture.Socket{cs, ss} {
		c := tr.lookup(s, now)
		c.proto, c.parser = proto, newParser()
	}
	n := int(split) + 1
	if transport == capture.TransportUDP {
		n = 1 << 16 // one datagram each
	}
	seq := [2]uint32{1000, 9000}
	streams := [2][]byte{req, resp}
	for steps := 0; (len(streams[0]) > 0 || len(streams[1]) > 0) && steps < 10000; steps++ {
		i := steps % 2
		if len(streams[i]) == 0 {
			continue
		}
		k := min(n, len(streams[i]))
		p := streams[i][:k]
		streams[i] = streams[i][k:]
		now = now.Add(time.Microsecond)
		from, to := cs, ss
		if i == 1 {
			from, to = ss, cs
		}
		for _, ev := range []*capture.DataEvent{
			{Time: now, Socket: from, Direction: capture.DirectionSend, Size: len(p), Payload: p},
			{Time: now, Socket: to, Direction: capture.DirectionRecv, Size: len(p), Payload: p},
		} {
			if transport == capture.TransportTCP {
				ev.Seq, ev.ClientISN, ev.ServerISN = seq[i], 999, 8999
			}
			if maxPayload > 0 && len(p) > int(maxPayload) {
				ev.Payload, ev.Truncated = p[:maxPayload], true
			}
			tr.Data(ev)
		}
		seq[i] += uint32(len(p))
		checkBounds(t, tr)
	}
	tr.Tick(now.Add(time.Minute))
	for _, s := range []capture.Socket{cs, ss} {
		tr.Conn(&capture.ConnEvent{Kind: capture.ConnClosed, Time: now, Socket: s})
	}
	if c := tr.Counters(); c.Connections != 0 {
		t.Fatalf("%d sockets left after close", c.Connections)
	}
	for _, x := range xs {
		if x.Side != SideClient && x.Side != SideServer || x.Cookie != 1 && x.Cookie != 2 || x.Transport != transport {
			t.Fatalf("malformed exchange: side %v cookie %d transport %v", x.Side, x.Cookie, x.Transport)
		}
		switch x.Protocol {
		case ProtocolHTTP1, ProtocolHTTP2:
			if x.HTTP == nil || len(x.HTTP.UserAgent) > maxHeaderValueLen {
				t.Fatalf("bad HTTP exchange %+v", x.HTTP)
			}
		case ProtocolGRPC:
			if x.GRPC == nil || x.HTTP == nil {
				t.Fatalf("gRPC exchange without fields")
			}
		case ProtocolDNS:
			if x.DNS == nil || len(x.DNS.Answers)+len(x.DNS.CNAMEs) > dnsMaxAnswers {
				t.Fatalf("bad DNS exchange %+v", x.DNS)
			}
		case ProtocolTLS:
			if x.TLS == nil || len(x.TLS.ALPN) > tlsMaxALPN || len(x.TLS.SNI) > maxHeaderValueLen {
				t.Fatalf("bad TLS exchange %+v", x.TLS)
			}
		default:
			t.Fatalf("exchange with protocol %v", x.Protocol)
		}
		if x.Failure == FailureNone && x.End.Before(x.Start) {
			t.Fatalf("end before start")
		}
	}
}

// checkBounds asserts the per-socket caps that keep hostile input from growing memory.
func checkBounds(t *testing.T, tr *Tracker) {
	for _, c := range tr.conns {
		switch p := c.parser.(type) {
		case *http1Parser:
			if len(p.pending) > maxPendingPerConn || len(p.dirs[0].carry) > maxCarryBytes || len(p.dirs[1].carry) > maxCarryBytes {
				t.Fatalf("http1 state over its caps")
			}
		case *http2Parser:
			for _, d := range p.dirs {
				if len(d.carry) > maxCarryBytes || len(d.block) > maxCarryBytes+1<<14 || len(d.fields) > maxH2Fields {
					t.Fatalf("http2 state over its caps: carry %d block %d", len(d.carry), len(d.block))
				}
			}
			if len(p.streams) > maxH2Streams {
				t.Fatalf("%d streams", len(p.streams))
			}
		case *dnsParser:
			if len(p.pending) > maxDNSPending || len(p.order) != len(p.pending) {
				t.Fatalf("dns pending %d order %d", len(p.pending), len(p.order))
			}
		}
	}
}

func FuzzHTTP1(f *testing.F) {
	seedStreams(f, "http1.tsv")
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"), uint8(3), uint16(0))
	f.Fuzz(func(t *testing.T, req, resp []byte, split uint8, maxPayload uint16) {
		fuzzConn(t, func() parser { return newHTTP1() }, ProtocolHTTP1, capture.TransportTCP, req, resp, split, maxPayload)
		h := parseHTTP1Head(req)
		if len(h.host) > maxHeaderValueLen || len(h.target) > maxHeaderValueLen {
			t.Fatalf("header value not clipped")
		}
	})
}

func FuzzHTTP2(f *testing.F) {
	seedStreams(f, "http2.tsv")
	seedStreams(f, "grpc.tsv")
	// A header block asking for a 1 GiB dynamic table, and a frame claiming 16 MiB.
	f.Add(append([]byte(h2Preface), h2Frame(h2Headers, h2FlagEndHeaders, 1, []byte{0x3f, 0xe1, 0xff, 0xff, 0x03})...), h2Frame(h2Data, 0, 1, nil)[:3], uint8(0), uint16(0))
	f.Add([]byte{0xff, 0xff, 0xff, h2Headers, 0, 0, 0, 0, 1}, []byte{}, uint8(0), uint16(0))
	f.Fuzz(func(t *testing.T, req, resp []byte, split uint8, maxPayload uint16) {
		fuzzConn(t, func() parser { return newHTTP2() }, ProtocolHTTP2, capture.TransportTCP, req, resp, split, maxPayload)
	})
}

func FuzzGRPC(f *testing.F) {
	seedStreams(f, "grpc.tsv")
	f.Fuzz(func(t *testing.T, req, resp []byte, split uint8, maxPayload uint16) {
		fuzzConn(t, func() parser { return newHTTP2() }, ProtocolHTTP2, capture.TransportTCP, req, resp, split, maxPayload)
		s, m := splitGRPCPath(string(req))
		if len(s)+len(m) > len(req) {
			t.Fatalf("split grew the path")
		}
	})
}

func FuzzDNS(f *testing.F) {
	for _, fc := range loadFixture(f, "dns.tsv") {
		if fc.transport == capture.TransportUDP && len(fc.segs) == 2 {
			f.Add(fc.segs[0].payload, fc.segs[1].payload, true, uint16(0))
		}
	}
	reqs, resps := fixtureStreams(f, "dns.tsv")
	for i := range reqs {
		f.Add(reqs[i], resps[i], false, uint16(0))
	}
	// Compression pointer loop in the answer.
	loop := dnsQuery(9, "loop.test", true, 0)
	f.Add(dnsQuery(9, "loop.test", false, 0), append(loop[:len(loop)-16], 0xc0, byte(len(loop)-16), 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 1, 2, 3, 4), true, uint16(0))
	f.Fuzz(func(t *testing.T, req, resp []byte, udp bool, maxPayload uint16) {
		tr := capture.TransportTCP
		if udp {
			tr = capture.TransportUDP
		}
		fuzzConn(t, func() parser { return newDNS(udp) }, ProtocolDNS, tr, req, resp, 255, maxPayload)
	})
}

func FuzzTLS(f *testing.F) {
	seedStreams(f, "tls.tsv")
	f.Fuzz(func(t *testing.T, req, resp []byte, split uint8, maxPayload uint16) {
		fuzzConn(t, func() parser { return &tlsParser{} }, ProtocolTLS, capture.TransportTCP, req, resp, 255, maxPayload)
		if h, ok := parseTLSHello(req); ok && (len(h.sni) > maxHeaderValueLen || len(h.alpn) > tlsMaxALPN) {
			t.Fatalf("unbounded hello fields")
		}
	})
}

// FuzzDetect feeds arbitrary first bytes through detection and every parser it picks.
func FuzzDetect(f *testing.F) {
	for _, n := range []string{"http1.tsv", "http2.tsv", "grpc.tsv", "dns.tsv", "tls.tsv"} {
		reqs, resps := fixtureStreams(f, n)
		for i := range reqs {
			f.Add(reqs[i], resps[i])
		}
	}
	f.Fuzz(func(t *testing.T, req, resp []byte) {
		var xs int
		tr := NewTracker(DefaultOptions(), func(*Exchange) { xs++ })
		s := capture.Socket{Cookie: 1, Transport: capture.TransportTCP, Local: netip.MustParseAddrPort("127.0.0.1:1"), Remote: netip.MustParseAddrPort("127.0.0.2:2")}
		now := time.Unix(1_800_000_000, 0)
		tr.Data(&capture.DataEvent{Time: now, Socket: s, Direction: capture.DirectionSend, Size: len(req), Payload: req, Seq: 1})
		tr.Data(&capture.DataEvent{Time: now, Socket: s, Direction: capture.DirectionRecv, Size: len(resp), Payload: resp, Seq: 1})
		checkBounds(t, tr)
		tr.Conn(&capture.ConnEvent{Kind: capture.ConnClosed, Time: now, Socket: s})
		if tr.Counters().Connections != 0 || uint64(xs) != tr.Counters().Exchanges {
			t.Fatalf("state left or exchanges miscounted")
		}
	})
}

func TestOversizedLengthsAllocateNothing(t *testing.T) {
	tr := NewTracker(DefaultOptions(), func(*Exchange) {})
	c := newH2Conn(tr)
	c.send(true, h2Preface+string(h2Frame(h2Settings, 0, 0, nil)), 0)
	c1 := newH1Conn(tr, 50)
	c1.send(true, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999\r\n\r\n", 0)
	huge := []byte{0xff, 0xff, 0xff, h2Data, 0, 0, 0, 0, 1}
	body := bytes.Repeat([]byte("z"), 512)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const writes = 100
	for range writes {
		c.send(true, string(huge), 0) // a DATA frame claiming 16 MiB
		c1.send(true, string(body), 0)
	}
	runtime.ReadMemStats(&after)
	// The test's own events and string conversions cost about 2 KiB a round; buffering either
	// claimed length would cost megabytes.
	if per := (after.TotalAlloc - before.TotalAlloc) / writes; per > 4<<10 {
		t.Errorf("%d bytes allocated per hostile write", per)
	}
	for _, s := range []uint64{c.cs.Cookie, c.ss.Cookie, c1.cs.Cookie, c1.ss.Cookie} {
		conn := tr.conns[s]
		switch p := conn.parser.(type) {
		case *http2Parser:
			if len(p.dirs[0].carry)+len(p.dirs[1].carry) != 0 || p.dirs[dirIndex(capture.DirectionSend)].skip+p.dirs[1].skip == 0 {
				t.Errorf("h2 socket %d buffers a claimed frame or lost count of it", s)
			}
		case *http1Parser:
			if len(p.dirs[0].carry)+len(p.dirs[1].carry) != 0 {
				t.Errorf("h1 socket %d buffers a body", s)
			}
		}
	}
}
