package l7

import (
	"bufio"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// The fixtures are tshark field dumps of real loopback traffic; testdata/README.md says how
// each was recorded and what the columns are.

type segment struct {
	at         time.Time
	fromClient bool
	seq        uint32
	payload    []byte
}

type fixtureConn struct {
	transport            capture.Transport
	client, server       netip.AddrPort
	clientISN, serverISN uint32
	segs                 []segment
	fin, rst             bool
	clientFinFirst       bool // the client sent the connection's first FIN
	end                  time.Time
}

func loadFixture(tb testing.TB, name string) []*fixtureConn {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatalf("open fixture: %v", err)
	}
	defer f.Close()
	type key struct{ a, b netip.AddrPort }
	byKey := map[key]*fixtureConn{}
	var conns []*fixtureConn
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		col := strings.Split(sc.Text(), "\t")
		if len(col) < 15 {
			tb.Fatalf("%s: short line %q", name, sc.Text())
		}
		sec, err := strconv.ParseFloat(col[0], 64)
		if err != nil {
			tb.Fatalf("%s: time %q: %v", name, col[0], err)
		}
		at := time.Unix(0, int64(sec*1e9)).UTC()
		src := netip.MustParseAddr(first(col[1], col[2]))
		dst := netip.MustParseAddr(first(col[5], col[6]))
		tr := capture.TransportTCP
		sp, dp, hexPayload := col[3], col[7], col[13]
		if col[3] == "" {
			tr, sp, dp, hexPayload = capture.TransportUDP, col[4], col[8], col[14]
		}
		from := netip.AddrPortFrom(src, uint16(atoi(tb, sp)))
		to := netip.AddrPortFrom(dst, uint16(atoi(tb, dp)))
		k := key{from, to}
		if to.String() < from.String() {
			k = key{to, from}
		}
		fc, ok := byKey[k]
		if !ok {
			fc = &fixtureConn{transport: tr, client: from, server: to}
			byKey[k] = fc
			conns = append(conns, fc)
		}
		fc.end = at
		fromClient := from == fc.client
		if tr == capture.TransportTCP {
			seq := uint32(atoi(tb, col[12]))
			if col[9] == "1" {
				if fromClient {
					fc.clientISN = seq
				} else {
					fc.serverISN = seq
				}
			}
			if col[11] == "1" && !fc.fin {
				fc.clientFinFirst = fromClient
			}
			fc.fin = fc.fin || col[11] == "1"
			fc.rst = fc.rst || col[10] == "1"
			if hexPayload == "" {
				continue
			}
			b, err := hex.DecodeString(hexPayload)
			if err != nil {
				tb.Fatalf("%s: payload: %v", name, err)
			}
			fc.segs = append(fc.segs, segment{at: at, fromClient: fromClient, seq: seq, payload: b})
			continue
		}
		b, err := hex.DecodeString(hexPayload)
		if err != nil {
			tb.Fatalf("%s: payload: %v", name, err)
		}
		fc.segs = append(fc.segs, segment{at: at, fromClient: fromClient, payload: b})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return conns
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func atoi(tb testing.TB, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		tb.Fatalf("number %q: %v", s, err)
	}
	return n
}

// replay says how a fixture connection becomes capture events.
type replay struct {
	maxPayload  int  // cut payloads like capture.max_payload_bytes (0: keep all)
	unknownRole bool // sockets predate the capture
	split       int  // re-split the byte streams into writes/reads of at most this many bytes
	close       bool // end both sockets with ConnClosed (LocalClosedFirst from the recorded first FIN)
	clientOnly  bool // only the client socket is observed
}

var (
	clientProc = capture.Process{PID: 100, TID: 100, Comm: "client"}
	serverProc = capture.Process{PID: 200, TID: 200, Comm: "server"}
)

func (fc *fixtureConn) cookies(base uint64) (client, server uint64) { return base*2 + 1, base*2 + 2 }

// events turns the connection into what the kernel side reports for its two local sockets.
func (fc *fixtureConn) events(base uint64, r replay) []capture.Event {
	cc, sc := fc.cookies(base)
	cs := capture.Socket{Cookie: cc, Transport: fc.transport, Local: fc.client, Remote: fc.server, Role: capture.RoleClient}
	ss := capture.Socket{Cookie: sc, Transport: fc.transport, Local: fc.server, Remote: fc.client, Role: capture.RoleServer}
	if r.unknownRole {
		cs.Role, ss.Role = capture.RoleUnknown, capture.RoleUnknown
	}
	var out []capture.Event
	segs := fc.segs
	if r.split > 0 && fc.transport == capture.TransportTCP { // datagrams keep their boundaries
		segs = resplit(segs, r.split)
	}
	for _, s := range segs {
		mk := func(sock capture.Socket, proc capture.Process, dir capture.Direction) capture.Event {
			ev := &capture.DataEvent{
				Time: s.at, Process: proc, Socket: sock, Direction: dir, Size: len(s.payload),
				Payload: s.payload, Seq: s.seq,
			}
			if fc.transport == capture.TransportTCP {
				ev.ClientISN, ev.ServerISN = fc.clientISN, fc.serverISN
			}
			if r.maxPayload > 0 && len(ev.Payload) > r.maxPayload {
				ev.Payload, ev.Truncated = ev.Payload[:r.maxPayload], true
			}
			return capture.Event{Data: ev}
		}
		if s.fromClient {
			out = append(out, mk(cs, clientProc, capture.DirectionSend))
			if !r.clientOnly {
				out = append(out, mk(ss, serverProc, capture.DirectionRecv))
			}
		} else {
			if !r.clientOnly {
				out = append(out, mk(ss, serverProc, capture.DirectionSend))
			}
			out = append(out, mk(cs, clientProc, capture.DirectionRecv))
		}
	}
	if r.close {
		out = append(out, capture.Event{Conn: &capture.ConnEvent{Kind: capture.ConnClosed, Time: fc.end, Socket: cs, LocalClosedFirst: fc.clientFinFirst}})
		if !r.clientOnly {
			out = append(out, capture.Event{Conn: &capture.ConnEvent{Kind: capture.ConnClosed, Time: fc.end, Socket: ss, LocalClosedFirst: fc.fin && !fc.clientFinFirst}})
		}
	}
	return out
}

// resplit cuts every segment into pieces of at most n bytes, keeping sequence numbers exact.
func resplit(segs []segment, n int) []segment {
	var out []segment
	for _, s := range segs {
		for off := 0; off < len(s.payload); off += n {
			e := min(off+n, len(s.payload))
			out = append(out, segment{at: s.at, fromClient: s.fromClient, seq: s.seq + uint32(off), payload: s.payload[off:e]})
		}
	}
	return out
}

// runFixture feeds the connections of a fixture to a new tracker and returns what it emitted.
func runFixture(tb testing.TB, name string, opts Options, r replay) ([]*Exchange, *Tracker) {
	tb.Helper()
	var got []*Exchange
	tr := NewTracker(opts, func(x *Exchange) { got = append(got, x) })
	for i, fc := range loadFixture(tb, name) {
		feed(tr, fc.events(uint64(i), r))
	}
	return got, tr
}

func feed(tr *Tracker, evs []capture.Event) {
	for _, e := range evs {
		if e.Data != nil {
			tr.Data(e.Data)
		} else {
			tr.Conn(e.Conn)
		}
	}
}

// bySide keeps the exchanges observed on one side, in emission order.
func bySide(xs []*Exchange, s Side) []*Exchange {
	var out []*Exchange
	for _, x := range xs {
		if x.Side == s {
			out = append(out, x)
		}
	}
	return out
}
