package l7

import (
	"bytes"
	"strconv"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

var http1Methods = [...]string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE"}

var (
	crlf       = []byte("\r\n")
	crlfcrlf   = []byte("\r\n\r\n")
	httpPrefix = []byte("HTTP/1.")
)

// looksLikeHTTP1Request reports whether p starts with an HTTP/1 request line (possibly cut).
func looksLikeHTTP1Request(p []byte) bool {
	for _, m := range http1Methods {
		if len(p) > len(m)+1 && string(p[:len(m)]) == m && p[len(m)] == ' ' {
			rest := p[len(m)+1:]
			if rest[0] != '/' && rest[0] != '*' && !bytes.HasPrefix(rest, []byte("http")) && m != "CONNECT" {
				return false
			}
			line, _, complete := bytes.Cut(rest, crlf)
			if !complete {
				return true // cut by the payload limit or split across writes
			}
			return bytes.Contains(line, []byte(" HTTP/1."))
		}
	}
	return false
}

// looksLikeHTTP1Response reports whether p starts with an HTTP/1 status line.
func looksLikeHTTP1Response(p []byte) bool {
	if len(p) < 12 || !bytes.HasPrefix(p, httpPrefix) || p[8] != ' ' {
		return false
	}
	return isDigit(p[9]) && isDigit(p[10]) && isDigit(p[11])
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

type http1Pending struct {
	x    *Exchange
	head bool // HEAD: the response has no body whatever its headers say
	// respFloor is where the response stream was (its next sequence number) when the request
	// was seen: its response cannot begin before it (unknownSeq: no sequence numbers).
	respFloor uint64
}

type http1Dir struct {
	byteStream
	chunked chunkedBody
	scanned int // bytes of the carried head already searched for its end
}

type http1Parser struct {
	dirs    [2]http1Dir
	pending []http1Pending

	// Pairing is FIFO, which is only right while no message went missing. After a gap in the
	// responses the outstanding requests are closed as unknown; a client proven to pipeline
	// (several requests in one write) can have responses in flight for requests we never saw,
	// so after any gap its connection pairs nothing more (unpairable).
	pipelined  bool
	unpairable bool
	chunkReqs  int // requests parsed from the current read/write
}

func newHTTP1() *http1Parser {
	p := &http1Parser{}
	p.dirs[0].byteStream = newByteStream()
	p.dirs[1].byteStream = newByteStream()
	return p
}

// http1Head is one parsed request or response head.
type http1Head struct {
	request       bool
	method        string
	target        string
	version       string
	status        int
	reason        string
	host          string
	userAgent     string
	contentType   string
	contentLength int64 // -1 when absent
	chunked       bool
	partial       bool // the head was cut before its end
}

func (p *http1Parser) data(c *conn, ev *capture.DataEvent) {
	t := c.t
	d := &p.dirs[dirIndex(ev.Direction)]
	breaks := d.breaks
	ch, ok := d.begin(t, ev)
	if d.breaks != breaks {
		p.gap(c, ev.Direction)
	}
	if !ok {
		return
	}
	p.chunkReqs = 0
	off := 0
	if d.chunked.active {
		n, done := d.chunked.consume(ch.data)
		off = n
		if !done {
			p.endOfChunk(t, d, ch, off)
			return
		}
	}
	if d.lost {
		if !ch.fresh || !(looksLikeHTTP1Request(ch.data) || looksLikeHTTP1Response(ch.data)) {
			t.counters.Resyncs++
			return
		}
		d.lost = false
	}
	for off < len(ch.data) {
		msg := ch.data[off:]
		if !looksLikeHTTP1Request(msg) && !looksLikeHTTP1Response(msg) {
			if len(msg) < 16 && ch.hidden == 0 && bytes.IndexByte(msg, '\n') < 0 {
				d.keep(t, ch, off) // too short to judge: a start line split across writes
				return
			}
			t.parseFailure(ProtocolHTTP1)
			d.lost = true
			return
		}
		// A head trickling in over many small writes is searched once, not once per write.
		from := 0
		if off == 0 && !ch.fresh {
			from = max(0, d.scanned-len(crlfcrlf)+1)
		}
		end := bytes.Index(msg[from:], crlfcrlf)
		if end >= 0 {
			end += from
		}
		if end < 0 && ch.hidden == 0 {
			d.keep(t, ch, off)
			d.scanned = len(msg)
			return
		}
		d.scanned = 0
		var h http1Head
		headLen := 0
		if end < 0 {
			h = parseHTTP1Head(msg)
			h.partial = true
			t.counters.PartialHeaders++
		} else {
			headLen = end + len(crlfcrlf)
			h = parseHTTP1Head(msg[:end])
		}
		at := ch.at
		if off == 0 {
			at = ch.start
		}
		body := p.message(c, ev, &h, ch.seq+uint32(off), at)
		if h.partial {
			// The rest of the head, and whatever follows it, was not captured.
			d.lost = true
			return
		}
		off += headLen
		if h.chunked {
			d.chunked = chunkedBody{active: true}
			n, done := d.chunked.consume(ch.data[off:])
			off += n
			if !done {
				p.endOfChunk(t, d, ch, off)
				return
			}
			continue
		}
		if body < 0 {
			d.skip = -1 // delimited by the end of the connection
			return
		}
		if int64(off)+body <= int64(len(ch.data)) {
			off += int(body)
			continue
		}
		d.skipAfter(ch, off, body)
		return
	}
}

// endOfChunk settles a chunk that ended inside a chunked body.
func (p *http1Parser) endOfChunk(t *Tracker, d *http1Dir, ch chunk, off int) {
	if ch.hidden == 0 {
		if off < len(ch.data) {
			d.keep(t, ch, off) // a chunk-size line split across writes
		}
		return
	}
	if d.chunked.state == chunkData && off == len(ch.data) && d.chunked.remaining >= int64(ch.hidden) {
		d.chunked.remaining -= int64(ch.hidden)
		return
	}
	d.chunked = chunkedBody{}
	d.lost = true
}

// gap settles what a lost read/write in direction dir may have carried.
func (p *http1Parser) gap(c *conn, dir capture.Direction) {
	if c.reqDir == 0 {
		return // no request seen yet: nothing outstanding
	}
	if dir != c.reqDir {
		// Responses were lost: any outstanding request may have been answered in the gap.
		p.closeUnknown(c)
		if p.pipelined {
			p.unpairable = true
		}
		return
	}
	// Requests were lost. A client that waits for each response before the next request
	// got the lost requests' answers before it sent the next one we see (they arrive with
	// nothing outstanding and are counted unmatched). A pipelining client may not have.
	if p.pipelined {
		p.unpairable = true
		p.closeUnknown(c)
	}
}

// closeUnknown ends every outstanding request with FailureUnknown.
func (p *http1Parser) closeUnknown(c *conn) {
	for _, pr := range p.pending {
		pr.x.End = pr.x.Start
		pr.x.Failure = FailureUnknown
		c.t.counters.GapClosed++
		c.emit(pr.x)
	}
	p.pending = p.pending[:0]
}

// requestHTTP is the HTTP of a request head: the target split into path (an absolute-form
// target's scheme and authority dropped) and query.
func (h *http1Head) requestHTTP() *HTTP {
	path, query, _ := stringsCut(h.target, '?')
	if i := indexAfterScheme(path); i >= 0 {
		path = path[i:]
	}
	return &HTTP{
		Method:      h.method,
		Path:        path,
		Query:       query,
		Version:     h.version,
		Host:        h.host,
		UserAgent:   h.userAgent,
		ContentType: h.contentType,
		Partial:     h.partial,
	}
}

// message records a parsed head and returns the length of the body that follows it
// (-1: until the connection closes).
func (p *http1Parser) message(c *conn, ev *capture.DataEvent, h *http1Head, seq uint32, at time.Time) int64 {
	t := c.t
	if h.request {
		c.learnRequestDir(ev.Direction)
		x := c.exchange(ProtocolHTTP1, ev.Direction, at, ev.Socket)
		x.RequestSeq = seq
		x.HTTP = h.requestHTTP()
		if len(p.pending) >= maxPendingPerConn {
			p.pending = p.pending[1:]
			t.counters.PendingDropped++
		}
		if p.chunkReqs++; p.chunkReqs > 1 {
			p.pipelined = true
		}
		p.pending = append(p.pending, http1Pending{x: x, head: h.method == "HEAD", respFloor: p.dirs[1-dirIndex(ev.Direction)].next})
		if h.chunked {
			return 0
		}
		if h.contentLength > 0 {
			return h.contentLength
		}
		return 0
	}
	// A response.
	if h.status >= 100 && h.status < 200 && h.status != 101 {
		return 0 // interim (100 Continue): the final response follows
	}
	head := false
	switch {
	case len(p.pending) == 0:
		t.counters.UnmatchedResponses++
	case p.unpairable:
		p.closeUnknown(c)
		t.counters.UnmatchedResponses++
	case p.pending[0].respFloor != unknownSeq && seqAfter(uint32(p.pending[0].respFloor), seq):
		// The response began before the request was seen: it answers an earlier one.
		t.counters.UnmatchedResponses++
	default:
		pr := p.pending[0]
		p.pending[0] = http1Pending{}
		p.pending = p.pending[1:]
		head = pr.head
		x := pr.x
		x.End = at
		x.HTTP.Status = h.status
		x.HTTP.Reason = h.reason
		if x.HTTP.ContentType == "" || h.contentType != "" {
			// The response's content type is what a dashboard wants; keep the request's if none.
			if h.contentType != "" {
				x.HTTP.ContentType = h.contentType
			}
		}
		x.HTTP.Partial = x.HTTP.Partial || h.partial
		c.emit(x)
	}
	if h.status == 101 {
		// The connection switched protocols (h2c upgrade, websocket): detect it afresh.
		c.parser, c.attempts = nil, 0
		return -1
	}
	if head || h.status == 204 || h.status == 304 || h.chunked {
		return 0
	}
	if h.contentLength >= 0 {
		return h.contentLength
	}
	return -1 // neither length nor chunked: the body runs until the connection closes
}

func (p *http1Parser) fail(c *conn, f Failure, at time.Time) {
	for _, pr := range p.pending {
		pr.x.End = at
		pr.x.Failure = f
		c.emit(pr.x)
	}
	p.pending = nil
}

func (p *http1Parser) expire(c *conn, deadline, now time.Time) {
	for len(p.pending) > 0 && p.pending[0].x.Start.Before(deadline) {
		x := p.pending[0].x
		p.pending = p.pending[1:]
		x.End = now
		x.Failure = FailureTimeout
		c.t.counters.Timeouts++
		c.emit(x)
	}
}

// parseHTTP1Head parses a request or status line and the headers that follow (head holds no
// final empty line; it may be cut anywhere).
func parseHTTP1Head(head []byte) http1Head {
	h := http1Head{contentLength: -1}
	line, rest, _ := bytes.Cut(head, crlf)
	if bytes.HasPrefix(line, httpPrefix) {
		h.version = string(line[5:min(8, len(line))])
		if len(line) >= 12 {
			h.status, _ = strconv.Atoi(string(line[9:12]))
		}
		if len(line) > 13 {
			h.reason = clip(line[13:])
		}
	} else {
		h.request = true
		m, r, _ := bytes.Cut(line, []byte(" "))
		h.method = string(m)
		target, ver, ok := bytes.Cut(r, []byte(" "))
		h.target = clip(target)
		if ok && bytes.HasPrefix(ver, []byte("HTTP/")) {
			h.version = string(ver[5:])
		}
	}
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, crlf)
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		// Switch on the name's length first: most headers are none of these.
		switch name = bytes.TrimSpace(name); len(name) {
		case 4:
			if bytes.EqualFold(name, []byte("host")) {
				h.host = clip(value)
			}
		case 10:
			if bytes.EqualFold(name, []byte("user-agent")) {
				h.userAgent = clip(value)
			}
		case 12:
			if bytes.EqualFold(name, []byte("content-type")) {
				h.contentType = clip(value)
			}
		case 14:
			if bytes.EqualFold(name, []byte("content-length")) {
				if n, err := strconv.ParseInt(string(value), 10, 64); err == nil && n >= 0 {
					h.contentLength = n
				}
			}
		case 17:
			if bytes.EqualFold(name, []byte("transfer-encoding")) {
				h.chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
			}
		}
	}
	return h
}

// clip copies a header value, bounded in length.
func clip(b []byte) string {
	if len(b) > maxHeaderValueLen {
		b = b[:maxHeaderValueLen]
	}
	return string(b)
}

func stringsCut(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// indexAfterScheme returns where the path starts in an absolute-form target, or -1.
func indexAfterScheme(t string) int {
	for _, scheme := range []string{"http://", "https://"} {
		if len(t) > len(scheme) && t[:len(scheme)] == scheme {
			rest := t[len(scheme):]
			for i := 0; i < len(rest); i++ {
				if rest[i] == '/' {
					return len(scheme) + i
				}
			}
			return len(t)
		}
	}
	return -1
}

const (
	chunkSize = iota
	chunkData
	chunkTrailer
)

// chunkedBody walks a chunked transfer-coded body across reads/writes.
type chunkedBody struct {
	active    bool
	state     int
	remaining int64 // chunkData: bytes left of the chunk and its CRLF
}

// consume walks data and returns how many bytes belong to the body, and whether it ended.
func (b *chunkedBody) consume(data []byte) (int, bool) {
	i := 0
	for i < len(data) {
		switch b.state {
		case chunkSize:
			line, _, ok := bytes.Cut(data[i:], crlf)
			if !ok {
				return i, false
			}
			sz, _, _ := bytes.Cut(line, []byte(";"))
			n, err := strconv.ParseInt(string(bytes.TrimSpace(sz)), 16, 64)
			if err != nil || n < 0 {
				// Not a chunk size: treat the body as ended and let the caller resync.
				b.active = false
				return len(data), true
			}
			i += len(line) + 2
			if n == 0 {
				b.state = chunkTrailer
			} else {
				b.state, b.remaining = chunkData, n+2
			}
		case chunkData:
			take := min(b.remaining, int64(len(data)-i))
			i += int(take)
			b.remaining -= take
			if b.remaining == 0 {
				b.state = chunkSize
			}
		case chunkTrailer:
			line, _, ok := bytes.Cut(data[i:], crlf)
			if !ok {
				return i, false
			}
			i += len(line) + 2
			if len(line) == 0 {
				*b = chunkedBody{}
				return i, true
			}
		}
	}
	return i, false
}
