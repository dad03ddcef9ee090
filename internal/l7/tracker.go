package l7

import (
	"container/list"
	"encoding/binary"
	"hash/fnv"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// Options configure the tracker. The lead maps the receiver's YAML onto it.
type Options struct {
	MaxConnections int // sockets with parser state; the least recently used is evicted
	// MaxStateBytes bounds the estimated memory of all sockets' parser state together; over
	// it, the least recently used sockets are shed, the largest first (memory.go).
	MaxStateBytes  int64
	RequestTimeout time.Duration // a request unanswered this long becomes a FailureTimeout exchange
	IdleTimeout    time.Duration // a socket silent this long loses its parser state

	// Ports are hints that order detection; protocols are detected on any port.
	DNSPorts, HTTPPorts, HTTPSPorts []uint16

	// Switches: a disabled protocol is still recognised (so its bytes are not misparsed as
	// another) but yields no exchanges.
	HTTP, HTTPS, GRPC, DNS bool

	// DurationBounds are the explicit histogram bounds the kernel counts HTTP/1 aggregates on
	// (capture.Judging.Bounds): Aggregate.Explicit carries them.
	DurationBounds []time.Duration
}

// Limits that bound per-connection state regardless of configuration.
const (
	maxPendingPerConn = 64         // requests awaiting a response on one socket
	maxCarryBytes     = 8 << 10    // a message split across reads/writes is buffered up to this
	maxHPACKTable     = 64 << 10   // HPACK dynamic table cap, whatever SETTINGS asks for
	maxDetectAttempts = 4          // events inspected before a socket is declared unclassified
	defaultMaxConns   = 16384      // DefaultOptions().MaxConnections
	maxH2Streams      = 256        // open HTTP/2 streams tracked per socket
	maxHeaderValueLen = 1024       // longest header value kept (user agent, grpc-message)
	maxDNSPending     = 256        // DNS queries awaiting an answer on one socket
	maxHPACKString    = 16 << 10   // longest HPACK string decoded
	unknownSeq        = ^uint64(0) // marker for "no sequence number seen yet"
)

// DefaultOptions are the defaults the receiver's config starts from.
func DefaultOptions() Options {
	return Options{
		MaxConnections: defaultMaxConns,
		MaxStateBytes:  DefaultMaxStateBytes,
		RequestTimeout: 30 * time.Second,
		IdleTimeout:    5 * time.Minute,
		DNSPorts:       []uint16{53},
		HTTPPorts:      []uint16{80, 8080},
		HTTPSPorts:     []uint16{443, 8443},
		HTTP:           true,
		HTTPS:          true,
		GRPC:           true,
		DNS:            true,
	}
}

// Counters are cumulative totals of what the tracker could not turn into exchanges.
type Counters struct {
	Exchanges          uint64               // exchanges emitted
	ParseFailures      [numProtocols]uint64 // indexed by Protocol: bytes of a detected protocol that did not parse
	Unclassified       uint64               // sockets whose bytes matched no protocol
	UnmatchedResponses uint64               // responses with no request seen (capture joined mid-connection)
	HPACKUnknownIndex  uint64               // header blocks referencing dynamic-table entries never seen
	Evictions          uint64               // sockets evicted because MaxConnections was reached
	IdleEvictions      uint64               // sockets evicted after IdleTimeout of silence
	Timeouts           uint64               // requests turned into FailureTimeout exchanges
	PendingDropped     uint64               // requests dropped because a socket had too many outstanding
	Resyncs            uint64               // reads/writes skipped while looking for the next message boundary
	SequenceGaps       uint64               // reads/writes that did not follow the previous one (lost events)
	GapClosed          uint64               // requests closed as unknown: their response may have been in a gap
	Overlaps           uint64               // reads/writes of bytes already seen (MSG_PEEK), ignored
	PartialHeaders     uint64               // requests/responses whose headers were cut by the payload limit
	MemoryShed         uint64               // sockets shed because the state exceeded MaxStateBytes
	MemoryShedBytes    uint64               // the estimated bytes those sockets held
	Released           uint64               // outstanding requests of evicted or shed sockets, closed as unknown
	Connections        int                  // sockets currently tracked
	StateBytes         int64                // estimated bytes of parser state now (all sockets)
}

// ParseFailure is the number of parse failures for one protocol.
func (c Counters) ParseFailure(p Protocol) uint64 {
	if int(p) >= len(c.ParseFailures) {
		return 0
	}
	return c.ParseFailures[p]
}

const numProtocols = int(ProtocolTLS) + 1

// parser is one protocol's state on one socket.
type parser interface {
	data(c *conn, ev *capture.DataEvent)
	// fail ends every outstanding request with f (connection closed or reset).
	fail(c *conn, f Failure, at time.Time)
	// expire ends requests that started before deadline with FailureTimeout.
	expire(c *conn, deadline, now time.Time)
}

// conn is the state of one observing socket.
type conn struct {
	t                    *Tracker
	key                  uint64 // socketKey
	sock                 capture.Socket
	proc                 capture.Process
	clientISN, serverISN uint32
	lastSeen             time.Time
	elem                 *list.Element

	proto    Protocol
	parser   parser
	paired   bool // a server socket the kernel judges for its quiet local client (capture.DataEvent.Paired)
	attempts int
	short    *capture.DataEvent // a first read/write too short to classify, held for the next
	done     bool               // unclassified, disabled or encrypted: ignore further bytes

	// reqDir is the direction requests travel on this socket, once known.
	reqDir capture.Direction

	mem int // estimated bytes of this socket's state, as last accounted
}

// Tracker turns the data and connection events of many sockets into Exchanges. It is used
// from a single goroutine.
type Tracker struct {
	opts     Options
	emitFn   func(*Exchange)
	conns    map[uint64]*conn
	lru      *list.List // front: most recently used
	counters Counters
	mem      int64 // sum of the sockets' mem
	stopFn   func(capture.Socket)
}

// SetStop gives the tracker a way to tell the kernel to stop sending a TCP socket's bytes once
// it has given up on them (unclassified, switched off, encrypted, unparsable hellos).
func (t *Tracker) SetStop(fn func(capture.Socket)) { t.stopFn = fn }

// giveUp ignores the socket's further bytes, and asks the kernel to stop sending them.
func (c *conn) giveUp() {
	if c.done {
		return
	}
	c.done = true
	if c.t.stopFn != nil && c.sock.Transport == capture.TransportTCP && c.sock.Cookie != 0 {
		c.t.stopFn(c.sock)
	}
}

// NewTracker returns a tracker that calls emit for every exchange, synchronously.
func NewTracker(opts Options, emit func(*Exchange)) *Tracker {
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = defaultMaxConns
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultOptions().RequestTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultOptions().IdleTimeout
	}
	if opts.MaxStateBytes <= 0 {
		opts.MaxStateBytes = DefaultMaxStateBytes
	}
	return &Tracker{opts: opts, emitFn: emit, conns: make(map[uint64]*conn), lru: list.New()}
}

// Counters returns the running totals.
func (t *Tracker) Counters() Counters {
	c := t.counters
	c.Connections = len(t.conns)
	c.StateBytes = t.mem
	return c
}

// Data feeds one read or write.
func (t *Tracker) Data(ev *capture.DataEvent) {
	if ev == nil || ev.Size <= 0 && len(ev.Payload) == 0 {
		return
	}
	c := t.lookup(ev.Socket, ev.Time)
	defer t.account(c, ev.Time)
	c.proc = ev.Process
	c.paired = c.paired || ev.Paired
	if ev.Socket.Transport != capture.TransportUDP {
		// An unconnected UDP socket talks to many peers; keep the first one for TCP only.
		c.sock.Remote = ev.Socket.Remote
	}
	if ev.ClientISN != 0 || ev.ServerISN != 0 {
		c.clientISN, c.serverISN = ev.ClientISN, ev.ServerISN
	}
	if c.reqDir == 0 && ev.Socket.Role != capture.RoleUnknown {
		c.sock.Role = ev.Socket.Role
		c.reqDir = requestDirection(ev.Socket.Role)
	}
	if c.done {
		return
	}
	if c.parser == nil {
		var ok bool
		if ev, ok = t.detect(c, ev); !ok {
			return
		}
	}
	c.parser.data(c, ev)
}

// Conn feeds a connection lifecycle event.
func (t *Tracker) Conn(ev *capture.ConnEvent) {
	if ev == nil {
		return
	}
	switch ev.Kind {
	case capture.ConnOpened:
		c := t.lookup(ev.Socket, ev.Time)
		c.proc = ev.Process
		if ev.Socket.Role != capture.RoleUnknown {
			c.sock.Role = ev.Socket.Role
		}
		t.account(c, ev.Time)
	case capture.ConnClosed:
		f := FailureClosed
		if c, ok := t.conns[socketKey(ev.Socket)]; ok && c.clientClosedFirst(ev) {
			f = FailureAbandoned
		}
		t.end(socketKey(ev.Socket), f, ev.Time)
	case capture.ConnResetSent, capture.ConnResetReceived:
		t.end(socketKey(ev.Socket), FailureReset, ev.Time)
	case capture.ConnFailed:
		// No request went out; the failed connect itself is the intel stage's to report.
		if c, ok := t.conns[socketKey(ev.Socket)]; ok {
			t.remove(c)
		}
	}
}

// Tick times out unanswered requests and evicts idle sockets.
func (t *Tracker) Tick(now time.Time) {
	deadline := now.Add(-t.opts.RequestTimeout)
	idle := now.Add(-t.opts.IdleTimeout)
	for e := t.lru.Back(); e != nil; {
		c := e.Value.(*conn)
		prev := e.Prev()
		if c.parser != nil {
			c.parser.expire(c, deadline, now)
		}
		if c.lastSeen.Before(idle) {
			if c.parser != nil {
				// Whatever is still outstanding after IdleTimeout has timed out too.
				before := t.counters.Exchanges
				c.parser.fail(c, FailureTimeout, now)
				t.counters.Timeouts += t.counters.Exchanges - before
			}
			t.remove(c)
			t.counters.IdleEvictions++
		}
		e = prev
	}
}

// clientClosedFirst reports whether the client end hung up first on the connection ev closes:
// on the client socket (requests are sent) this socket sent the first FIN; on the server socket
// (requests are received) the peer did. A reset has its own event kinds, so a ConnClosed whose
// peer closed first is an orderly FIN from the client. Direction unknown: not assumed.
func (c *conn) clientClosedFirst(ev *capture.ConnEvent) bool {
	switch c.reqDir {
	case capture.DirectionSend:
		return ev.LocalClosedFirst
	case capture.DirectionRecv:
		return !ev.LocalClosedFirst
	}
	return false
}

func (t *Tracker) end(key uint64, f Failure, at time.Time) {
	c, ok := t.conns[key]
	if !ok {
		return
	}
	if c.parser != nil {
		c.parser.fail(c, f, at)
	}
	t.remove(c)
}

func (t *Tracker) lookup(s capture.Socket, now time.Time) *conn {
	key := socketKey(s)
	if c, ok := t.conns[key]; ok {
		c.lastSeen = now
		t.lru.MoveToFront(c.elem)
		return c
	}
	for len(t.conns) >= t.opts.MaxConnections {
		old := t.lru.Back().Value.(*conn)
		t.release(old, now)
		t.remove(old)
		t.counters.Evictions++
	}
	c := &conn{t: t, key: key, sock: s, lastSeen: now}
	c.reqDir = requestDirection(s.Role)
	c.elem = t.lru.PushFront(c)
	t.conns[key] = c
	return c
}

func (t *Tracker) remove(c *conn) {
	t.lru.Remove(c.elem)
	delete(t.conns, c.key)
	t.mem -= int64(c.mem)
	c.mem = 0
	c.elem = nil
}

func (t *Tracker) enabled(p Protocol) bool {
	switch p {
	case ProtocolHTTP1, ProtocolHTTP2:
		return t.opts.HTTP
	case ProtocolGRPC:
		return t.opts.GRPC
	case ProtocolDNS:
		return t.opts.DNS
	case ProtocolTLS:
		return t.opts.HTTPS
	}
	return false
}

func (t *Tracker) parseFailure(p Protocol) {
	if int(p) < len(t.counters.ParseFailures) {
		t.counters.ParseFailures[p]++
	}
}

// emit hands an exchange on, unless its protocol is switched off.
func (c *conn) emit(x *Exchange) {
	if !c.t.enabled(x.Protocol) {
		return
	}
	if x.End.Before(x.Start) || x.Failure == FailureUnknown {
		// Events from different CPUs can arrive slightly out of order; a response never
		// precedes its request. An unknown outcome has no duration.
		x.End = x.Start
	}
	x.sanitize()
	x.Paired = x.Paired || c.paired && x.Side == SideServer
	c.t.counters.Exchanges++
	c.t.emitFn(x)
}

// learnRequestDir records that requests on this socket travel in direction d.
func (c *conn) learnRequestDir(d capture.Direction) {
	if c.reqDir == 0 {
		c.reqDir = d
	}
}

// isRequestDir reports whether bytes in direction d are requests. Unknown: a guess that the
// caller refines by content.
func (c *conn) isRequestDir(d capture.Direction) bool {
	if c.reqDir == 0 {
		return true
	}
	return d == c.reqDir
}

// exchange starts an exchange for a request that travelled in reqDir, observed on c.
func (c *conn) exchange(p Protocol, reqDir capture.Direction, start time.Time, remote capture.Socket) *Exchange {
	x := &Exchange{
		Protocol:  p,
		Transport: c.sock.Transport,
		Cookie:    c.sock.Cookie,
		Start:     start,
		ClientISN: c.clientISN,
		ServerISN: c.serverISN,
	}
	if x.Transport == 0 {
		x.Transport = capture.TransportTCP
	}
	local := Endpoint{Addr: c.sock.Local, Process: c.proc}
	peer := Endpoint{Addr: remote.Remote}
	if !peer.Addr.IsValid() {
		peer.Addr = c.sock.Remote
	}
	if reqDir == capture.DirectionSend {
		x.Side, x.Client, x.Server = SideClient, local, peer
	} else {
		x.Side, x.Client, x.Server = SideServer, peer, local
	}
	return x
}

// socketKey identifies a socket: its cookie, or when the kernel could not read one (seen for
// UDP sockets), a hash of what identifies the socket instead, marked by the top bit.
func socketKey(s capture.Socket) uint64 {
	if s.Cookie != 0 {
		return s.Cookie
	}
	h := fnv.New64a()
	var b [2*18 + 1]byte
	b[0] = byte(s.Transport)
	l := s.Local.Addr().As16()
	copy(b[1:], l[:])
	binary.BigEndian.PutUint16(b[17:], s.Local.Port())
	if s.Transport != capture.TransportUDP {
		// A TCP socket is its 4-tuple; an unconnected UDP socket talks to many peers.
		r := s.Remote.Addr().As16()
		copy(b[19:], r[:])
		binary.BigEndian.PutUint16(b[35:], s.Remote.Port())
	}
	h.Write(b[:])
	return h.Sum64() | 1<<63
}

// requestDirection is the direction requests travel on a socket of the given role (0: unknown).
func requestDirection(r capture.Role) capture.Direction {
	switch r {
	case capture.RoleClient:
		return capture.DirectionSend
	case capture.RoleServer:
		return capture.DirectionRecv
	}
	return 0
}

func dirIndex(d capture.Direction) int {
	if d == capture.DirectionRecv {
		return 1
	}
	return 0
}

// hasSeq reports whether the event carries TCP sequence numbers.
func hasSeq(ev *capture.DataEvent) bool {
	return ev.Socket.Transport != capture.TransportUDP && (ev.Seq != 0 || ev.ClientISN != 0 || ev.ServerISN != 0)
}

// byteStream follows one direction of a TCP socket through possibly truncated reads/writes:
// it notices lost events by their sequence numbers, skips bodies that run past what was
// captured, and carries a message split across two reads/writes.
type byteStream struct {
	next    uint64 // seq expected next, or unknownSeq
	carry   []byte // visible bytes of an unfinished message
	carrySq uint32
	carryAt time.Time
	skip    int64 // bytes to pass over before the next message; -1 until the connection ends
	lost    bool  // out of sync: the next message must begin at the start of a read/write
	// breaks counts the gaps (lost reads/writes) that broke sync: whole messages may have
	// been in them. A gap inside a body of known length is not a break.
	breaks uint64
}

func newByteStream() byteStream { return byteStream{next: unknownSeq} }

// chunk is what a parser sees of one read/write: the bytes to parse (carried bytes first),
// the sequence number of data[0], the bytes of the event that were not captured after data,
// and the time of the bytes at data[0].
type chunk struct {
	data   []byte
	seq    uint32
	hidden int
	at     time.Time // time of the newest bytes (this event)
	start  time.Time // time of data[0] (carried bytes keep their first time)
	fresh  bool      // data[0] is the first byte of this read/write
}

// seqAfter reports whether TCP sequence number a comes after b (RFC 1982 arithmetic).
func seqAfter(a, b uint32) bool { return int32(a-b) > 0 }

// begin applies sequence checks and pending skips to ev; ok is false when nothing is left to parse.
func (s *byteStream) begin(t *Tracker, ev *capture.DataEvent) (ch chunk, ok bool) {
	size := ev.Size
	if size < len(ev.Payload) {
		size = len(ev.Payload)
	}
	vis := ev.Payload
	seq := ev.Seq
	fresh := true
	if hasSeq(ev) && s.next != unknownSeq {
		switch d := int64(int32(ev.Seq - uint32(s.next))); {
		case d < 0:
			// Bytes already seen: a read with MSG_PEEK reports the bytes the next read
			// consumes again, at the same sequence number. Only what follows them is new.
			old := -d
			if old >= int64(size) {
				t.counters.Overlaps++
				return ch, false
			}
			vis = vis[min(int(old), len(vis)):]
			seq += uint32(old)
			size -= int(old)
			fresh = false
		case d > 0:
			t.counters.SequenceGaps++
			switch {
			case s.skip < 0:
				// Inside a body that runs until the connection ends: nothing to lose.
			case s.skip >= d && len(s.carry) == 0:
				s.skip -= d // the lost bytes were part of a body of known length
			default:
				s.carry, s.skip, s.lost = nil, 0, true
				s.breaks++
			}
		}
	}
	if hasSeq(ev) {
		s.next = uint64(seq + uint32(size))
	}
	pos := 0 // offset within the event
	if s.skip < 0 {
		return ch, false
	}
	if s.skip > 0 {
		n := s.skip
		if n >= int64(size) {
			s.skip -= int64(size)
			return ch, false
		}
		pos = int(n)
		s.skip = 0
		s.carry = nil
	}
	if pos >= len(vis) {
		// The rest of the event was not captured: its message boundaries are unknown.
		if pos < size {
			s.lost = true
		}
		return ch, false
	}
	ch = chunk{data: vis[pos:], seq: seq + uint32(pos), hidden: size - len(vis), at: ev.Time, start: ev.Time, fresh: fresh}
	if len(s.carry) > 0 && pos == 0 {
		ch.data = append(s.carry, ch.data...)
		ch.seq = s.carrySq
		ch.start = s.carryAt
		ch.fresh = false
	}
	s.carry = nil
	return ch, true
}

// keep carries data (unparsed tail of a chunk that was fully captured) into the next event.
func (s *byteStream) keep(t *Tracker, ch chunk, off int) {
	rest := ch.data[off:]
	if len(rest) == 0 {
		return
	}
	if ch.hidden > 0 || len(rest) > maxCarryBytes {
		s.lost = true
		t.counters.Resyncs++
		return
	}
	if off == 0 && !ch.fresh {
		s.carry = ch.data // already our own buffer: begin appended into the previous carry
	} else {
		s.carry = append(s.carry[:0:0], rest...)
	}
	s.carrySq = ch.seq + uint32(off)
	s.carryAt = ch.start
	if off > 0 {
		s.carryAt = ch.at
	}
}

// skipAfter arranges to skip n more bytes counted from offset off of the chunk (a body that
// runs past the captured bytes). It reports false when the skip ends inside the uncaptured
// part of this event, where nothing is known, so the stream is lost.
func (s *byteStream) skipAfter(ch chunk, off int, n int64) {
	end := int64(off) + n
	total := int64(len(ch.data) + ch.hidden)
	if end >= total {
		s.skip = end - total
		return
	}
	if end > int64(len(ch.data)) {
		s.lost = true
	}
}
