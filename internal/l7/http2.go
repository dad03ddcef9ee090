package l7

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/netintel/netintelreceiver/internal/capture"
)

const (
	h2Preface        = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	h2FrameHeaderLen = 9
	h2DefaultTable   = 4096
	maxH2Fields      = 64 // header fields kept from one block

	h2Data         = 0x0
	h2Headers      = 0x1
	h2Priority     = 0x2
	h2RSTStream    = 0x3
	h2Settings     = 0x4
	h2PushPromise  = 0x5
	h2Ping         = 0x6
	h2GoAway       = 0x7
	h2WindowUpdate = 0x8
	h2Continuation = 0x9

	h2FlagEndStream  = 0x1
	h2FlagAck        = 0x1
	h2FlagEndHeaders = 0x4
	h2FlagPadded     = 0x8
	h2FlagPriority   = 0x20

	h2SettingHeaderTableSize = 0x1
)

type h2FrameHeader struct {
	length int
	typ    byte
	flags  byte
	stream uint32
}

func readH2FrameHeader(b []byte) h2FrameHeader {
	return h2FrameHeader{
		length: int(b[0])<<16 | int(b[1])<<8 | int(b[2]),
		typ:    b[3],
		flags:  b[4],
		stream: binary.BigEndian.Uint32(b[5:]) & 0x7fffffff,
	}
}

// valid applies the frame-type rules that tell HTTP/2 frames from arbitrary bytes.
func (h h2FrameHeader) valid() bool {
	switch h.typ {
	case h2Data, h2Headers, h2Continuation:
		return h.stream != 0
	case h2Priority:
		return h.stream != 0 && h.length == 5
	case h2RSTStream:
		return h.stream != 0 && h.length == 4
	case h2Settings:
		return h.stream == 0 && h.length%6 == 0 && (h.flags&h2FlagAck == 0 || h.length == 0)
	case h2PushPromise:
		return h.stream != 0
	case h2Ping:
		return h.stream == 0 && h.length == 8
	case h2GoAway:
		return h.stream == 0 && h.length >= 8
	case h2WindowUpdate:
		return h.length == 4
	}
	return false
}

// looksLikeH2Frames reports whether p starts with well-formed HTTP/2 frames (a connection
// joined after its preface, or the server's first SETTINGS).
func looksLikeH2Frames(p []byte) bool {
	off, frames := 0, 0
	for off+h2FrameHeaderLen <= len(p) && frames < 4 {
		h := readH2FrameHeader(p[off:])
		if !h.valid() || h.length > 1<<14 && h.typ != h2Data {
			return false
		}
		frames++
		off += h2FrameHeaderLen + h.length
	}
	return frames > 0 && (off == len(p) || off > len(p) || frames == 4 || len(p)-off < h2FrameHeaderLen)
}

// h2Stream is one request on a connection and what has been seen of its response.
type h2Stream struct {
	x        *Exchange
	answered bool // response headers seen
	// maybeGRPC: neither the request's nor the response's content type was decodable
	// (references to HPACK entries added before the capture joined). The call is held until
	// its stream ends: trailers make it a gRPC call.
	maybeGRPC bool
	gapsAt    uint64 // the response direction's gaps when the headers were seen
}

type h2Dir struct {
	byteStream
	hp     *hpackDecoder
	fields []hpack.HeaderField

	// A header block spread over HEADERS and CONTINUATION frames.
	block          []byte
	blockStream    uint32
	blockEndStream bool
	blockAt        time.Time
	blockCut       bool
	inBlock        bool
	framed         bool   // frames were parsed in this direction (the preface can no longer come)
	allowedTable   uint32 // HPACK table size the peer's SETTINGS allow (capped)
	// gaps counts the reads/writes of this direction that were not fully seen (cut by the
	// payload limit, or missing before one): frames such as trailers may have been in them.
	gaps uint64

	// Compact events (the kernel's frame walk): a non-DATA frame whose payload runs into the
	// next read/write, with the bytes of it seen so far.
	cHeader  h2FrameHeader
	cPayload []byte
	cLeft    int
	cSeq     uint32
	cAt      time.Time
}

type http2Parser struct {
	dirs    [2]h2Dir
	streams map[uint32]*h2Stream
}

func newHTTP2() *http2Parser {
	p := &http2Parser{streams: make(map[uint32]*h2Stream)}
	for i := range p.dirs {
		d := &p.dirs[i]
		d.byteStream = newByteStream()
		d.allowedTable = h2DefaultTable
		// Until the preface shows the connection's start, its tables may hold entries
		// inserted before the capture began.
		d.hp = newHPACKDecoder(h2DefaultTable, maxHPACKString)
	}
	return p
}

func (p *http2Parser) data(c *conn, ev *capture.DataEvent) {
	d := &p.dirs[dirIndex(ev.Direction)]
	if ev.H2Compact {
		p.parseCompact(c, ev, d)
		return
	}
	if hasSeq(ev) && d.next != unknownSeq && seqAfter(ev.Seq, uint32(d.next)) {
		d.gaps++ // a read/write before this one was lost
	}
	p.parse(c, ev, d)
	if ev.Size > len(ev.Payload) {
		d.gaps++ // counted after the frames that were visible in it
	}
}

func (p *http2Parser) parse(c *conn, ev *capture.DataEvent, d *h2Dir) {
	t := c.t
	ch, ok := d.begin(t, ev)
	if !ok {
		return
	}
	off := 0
	if !d.framed && len(ch.data) < len(h2Preface) && bytes.HasPrefix([]byte(h2Preface), ch.data) {
		d.keep(t, ch, 0) // the preface, split across writes
		return
	}
	if (ch.fresh || !d.framed) && bytes.HasPrefix(ch.data, []byte(h2Preface)) {
		c.learnRequestDir(ev.Direction)
		off = len(h2Preface)
		d.lost = false
		if !d.framed {
			// The connection's first bytes: both tables start empty.
			for i := range p.dirs {
				p.dirs[i].hp.fresh()
			}
		}
	}
	d.framed = true
	if d.lost {
		if !ch.fresh || !looksLikeH2Frames(ch.data[off:]) {
			t.counters.Resyncs++
			return
		}
		d.lost = false
	}
	for off+h2FrameHeaderLen <= len(ch.data) {
		h := readH2FrameHeader(ch.data[off:])
		if !h.valid() {
			t.parseFailure(ProtocolHTTP2)
			d.lost = true
			d.inBlock = false
			return
		}
		end := off + h2FrameHeaderLen + h.length
		at := ch.at
		if off == 0 {
			at = ch.start
		}
		seq := ch.seq + uint32(off)
		if end > len(ch.data) {
			headerish := h.typ == h2Headers || h.typ == h2Continuation || h.typ == h2Settings || h.typ == h2RSTStream
			if headerish && ch.hidden == 0 && h2FrameHeaderLen+h.length <= maxCarryBytes {
				d.keep(t, ch, off) // the frame continues in the next read/write
				return
			}
			// Cut by the payload limit (or a large DATA frame): use what is visible, skip the rest.
			p.frame(c, ev, d, h, ch.data[off+h2FrameHeaderLen:], true, seq, at)
			d.skipAfter(ch, off, int64(h2FrameHeaderLen+h.length))
			return
		}
		p.frame(c, ev, d, h, ch.data[off+h2FrameHeaderLen:end], false, seq, at)
		off = end
	}
	d.keep(t, ch, off)
}

// h2FlagCut marks a frame whose payload the kernel cut to what it copies (its length then says
// what was copied); no HTTP/2 frame type defines the bit for the frames it keeps.
const h2FlagCut = 0x80

// parseCompact parses the kernel's frame walk of one read/write: every frame header, DATA without
// its payload, the other frames whole (or marked cut). The kernel follows frames across calls, so
// a call starts at a frame boundary or with the rest of the frame the previous one began.
//
// What the walk could not see makes the direction blind (gaps): a record lost before this one
// (a sequence gap), or frames of this call the kernel did not walk (Truncated).
func (p *http2Parser) parseCompact(c *conn, ev *capture.DataEvent, d *h2Dir) {
	if hasSeq(ev) && d.next != unknownSeq && seqAfter(ev.Seq, uint32(d.next)) {
		d.gaps++
		c.t.counters.SequenceGaps++
		// The frame the lost record went on with cannot be completed.
		d.cLeft, d.cPayload = 0, d.cPayload[:0]
	}
	if hasSeq(ev) {
		d.next = uint64(ev.Seq + uint32(ev.Size))
	}
	if ev.Truncated {
		defer func() { d.gaps++ }() // counted after the frames that were visible in it
	}
	b := ev.Payload
	off := 0
	if d.cLeft > 0 {
		n := min(d.cLeft, len(b))
		if len(d.cPayload)+n <= maxCarryBytes {
			d.cPayload = append(d.cPayload, b[:n]...)
		}
		d.cLeft -= n
		off = n
		if d.cLeft > 0 {
			return
		}
		p.frame(c, ev, d, d.cHeader, d.cPayload, len(d.cPayload) < d.cHeader.length, d.cSeq, d.cAt)
		d.cPayload = d.cPayload[:0]
	}
	if off == 0 && bytes.HasPrefix(b, []byte(h2Preface)) {
		c.learnRequestDir(ev.Direction)
		off = len(h2Preface)
		if !d.framed {
			for i := range p.dirs {
				p.dirs[i].hp.fresh()
			}
		}
	}
	d.framed = true
	for off+h2FrameHeaderLen <= len(b) {
		h := readH2FrameHeader(b[off:])
		cut := h.flags&h2FlagCut != 0
		h.flags &^= h2FlagCut
		if !h.valid() {
			t := c.t
			t.parseFailure(ProtocolHTTP2)
			return
		}
		start := off + h2FrameHeaderLen
		if h.typ == h2Data {
			p.frame(c, ev, d, h, nil, false, ev.Seq, ev.Time)
			off = start
			continue
		}
		if start+h.length > len(b) {
			// The frame goes on in the next read/write: keep what is here.
			d.cHeader, d.cLeft, d.cSeq, d.cAt = h, start+h.length-len(b), ev.Seq, ev.Time
			d.cPayload = append(d.cPayload[:0], b[start:]...)
			return
		}
		p.frame(c, ev, d, h, b[start:start+h.length], cut, ev.Seq, ev.Time)
		off = start + h.length
	}
}

// frame handles one frame; cut means its payload was not fully captured.
func (p *http2Parser) frame(c *conn, ev *capture.DataEvent, d *h2Dir, h h2FrameHeader, payload []byte, cut bool, seq uint32, at time.Time) {
	switch h.typ {
	case h2Settings:
		if h.flags&h2FlagAck != 0 {
			return
		}
		for i := 0; i+6 <= len(payload); i += 6 {
			if binary.BigEndian.Uint16(payload[i:]) == h2SettingHeaderTableSize {
				// The sender's decoder size bounds what the other direction's encoder may use.
				v := min(binary.BigEndian.Uint32(payload[i+2:]), maxHPACKTable)
				other := &p.dirs[1-dirIndex(ev.Direction)]
				other.allowedTable = v
				other.hp.setAllowed(v)
			}
		}
	case h2Headers, h2PushPromise:
		frag := payload
		if h.flags&h2FlagPadded != 0 {
			if len(frag) < 1 {
				return
			}
			pad := int(frag[0])
			frag = frag[1:]
			if !cut {
				if pad > len(frag) {
					c.t.parseFailure(ProtocolHTTP2)
					return
				}
				frag = frag[:len(frag)-pad]
			}
		}
		if h.typ == h2PushPromise {
			if len(frag) < 4 {
				return
			}
			frag = frag[4:]
		} else if h.flags&h2FlagPriority != 0 {
			if len(frag) < 5 {
				return
			}
			frag = frag[5:]
		}
		d.block = append(d.block[:0], frag...)
		d.blockStream, d.blockAt, d.blockCut = h.stream, at, cut
		d.blockEndStream = h.flags&h2FlagEndStream != 0
		d.inBlock = true
		if h.typ == h2PushPromise {
			// Decode to keep the dynamic table in step; the promised request is not an exchange.
			if h.flags&h2FlagEndHeaders != 0 || cut {
				p.decode(c, d)
				d.inBlock = false
			}
			return
		}
		if h.flags&h2FlagEndHeaders != 0 || cut {
			p.headers(c, ev, d)
		}
	case h2Continuation:
		if !d.inBlock || h.stream != d.blockStream {
			return
		}
		if len(d.block)+len(payload) > maxCarryBytes {
			d.blockCut = true
		} else {
			d.block = append(d.block, payload...)
		}
		d.blockCut = d.blockCut || cut
		if h.flags&h2FlagEndHeaders != 0 || cut {
			p.headers(c, ev, d)
		}
	case h2RSTStream:
		s, ok := p.streams[h.stream]
		if !ok {
			return
		}
		delete(p.streams, h.stream)
		if !s.answered {
			s.x.End = at
			s.x.Failure = FailureReset
		} else {
			p.unfinished(s, FailureReset)
		}
		c.emit(s.x)
	case h2Data:
		if h.flags&h2FlagEndStream == 0 {
			return
		}
		// A response that ends with DATA had no trailers: an HTTP/2 response already went out
		// at its headers; a gRPC response without trailers is reported as it is.
		if s, ok := p.streams[h.stream]; ok && s.answered && !c.isRequestDir(ev.Direction) {
			delete(p.streams, h.stream)
			c.emit(s.x)
		}
	}
}

// decode runs the header block through the direction's HPACK decoder. Fields that reference
// dynamic-table entries the capture never saw (it joined after they were added) are skipped
// and counted; the others, static-table and literal ones, are kept.
func (p *http2Parser) decode(c *conn, d *h2Dir) (partial bool) {
	d.fields = d.fields[:0]
	unknown, err := d.hp.decode(d.block, func(f hpack.HeaderField) {
		if len(d.fields) < maxH2Fields {
			d.fields = append(d.fields, f)
		}
	})
	d.inBlock = false
	if d.blockCut {
		// The cut tail may have inserted entries: what follows would resolve them wrongly.
		d.hp.forget()
	}
	if unknown > 0 {
		c.t.counters.HPACKUnknownIndex++
	}
	if err != nil && !d.blockCut {
		c.t.parseFailure(ProtocolHTTP2)
	}
	return err != nil || unknown > 0 || d.blockCut
}

// headers interprets a complete (or cut) header block.
func (p *http2Parser) headers(c *conn, ev *capture.DataEvent, d *h2Dir) {
	partial := p.decode(c, d)
	if d.blockCut {
		c.t.counters.PartialHeaders++
	}
	var f h2Fields
	f.read(d.fields)
	sid := d.blockStream
	s, known := p.streams[sid]
	// Only requests carry :method, :scheme, :path or :authority; a block with neither those nor
	// :status (all of them references to entries never seen) is taken for a request only when
	// the socket's request direction is known, or it would turn trailers into requests.
	isRequest := f.requestPseudo || (!known && f.status == 0 && f.grpcStatus < 0 && c.reqDir != 0 && c.isRequestDir(ev.Direction))
	if isRequest && !known {
		c.learnRequestDir(ev.Direction)
		p.flushBlind(c)
		x := c.exchange(ProtocolHTTP2, ev.Direction, d.blockAt, ev.Socket)
		// Identity (DESIGN §4): on HTTP/2 the stream id names the request within the connection;
		// the HEADERS frame's position does not enter it. The kernel walks frames per call and
		// drops DATA payloads, and the two ends batch frames into calls differently, so a
		// position one end computed from its call need not be the other end's.
		x.StreamID = sid
		path, query, _ := strings.Cut(f.path, "?")
		x.HTTP = &HTTP{
			Method: f.method, Path: path, Query: query, Version: "2", Host: f.authority,
			UserAgent: f.userAgent, ContentType: f.contentType, Partial: partial || f.method == "",
		}
		if strings.HasPrefix(f.contentType, "application/grpc") {
			x.Protocol = ProtocolGRPC
			x.GRPC = &GRPC{Status: -1}
			x.GRPC.Service, x.GRPC.Method = splitGRPCPath(path)
		}
		if len(p.streams) >= maxH2Streams {
			p.evictOldest(c)
		}
		p.streams[sid] = &h2Stream{x: x}
		return
	}
	if !known {
		if f.status != 0 {
			c.t.counters.UnmatchedResponses++
		}
		return
	}
	if ev.Direction == s.x.directionOfRequest() {
		return // request trailers
	}
	x := s.x
	if x.GRPC == nil && (strings.HasPrefix(f.contentType, "application/grpc") || f.grpcStatus >= 0) {
		// The request's content type was not decodable (joined mid-connection); the response
		// says it is a gRPC call.
		x.Protocol = ProtocolGRPC
		x.GRPC = &GRPC{Status: -1}
		x.GRPC.Service, x.GRPC.Method = splitGRPCPath(x.HTTP.Path)
	}
	if !s.answered {
		s.answered = true
		s.gapsAt = d.gaps
		x.End = d.blockAt
		x.HTTP.Status = f.status
		x.HTTP.Partial = x.HTTP.Partial || partial
		if f.contentType != "" && x.GRPC == nil {
			x.HTTP.ContentType = f.contentType
		}
		s.maybeGRPC = x.GRPC == nil && partial && x.HTTP.ContentType == "" && !d.blockEndStream
	} else if x.GRPC == nil && s.maybeGRPC {
		// A second header block from the server is trailers: a gRPC call whose content type
		// was a reference the capture could not resolve.
		x.Protocol = ProtocolGRPC
		x.GRPC = &GRPC{Status: -1}
		x.GRPC.Service, x.GRPC.Method = splitGRPCPath(x.HTTP.Path)
	}
	if x.GRPC != nil && f.grpcStatus >= 0 {
		x.GRPC.Status = f.grpcStatus
		x.GRPC.StatusName = grpcCodeName(f.grpcStatus)
		x.GRPC.Message = f.grpcMessage
	}
	if x.GRPC == nil && !s.maybeGRPC || f.grpcStatus >= 0 || d.blockEndStream {
		delete(p.streams, sid)
		c.emit(x)
	}
}

// directionOfRequest is the direction, on the observing socket, the request travelled.
func (x *Exchange) directionOfRequest() capture.Direction {
	if x.Side == SideClient {
		return capture.DirectionSend
	}
	return capture.DirectionRecv
}

func (p *http2Parser) evictOldest(c *conn) {
	var oldest uint32
	first := true
	for id := range p.streams {
		if first || id < oldest {
			oldest, first = id, false
		}
	}
	delete(p.streams, oldest)
	c.t.counters.PendingDropped++
}

// blind reports whether bytes of the stream's response direction went unseen since its
// response headers: its trailers (or END_STREAM) may have been among them.
func (p *http2Parser) blind(s *h2Stream) bool {
	resp := 1 - dirIndex(s.x.directionOfRequest())
	return p.dirs[resp].gaps != s.gapsAt
}

// unfinished settles a stream whose response headers were seen but whose end was not, and
// that ends with f. The server did answer, so a close, a client hanging up or a timeout is
// not its failure: the call is reported with what was seen (gRPC status -1, partial, End at
// the response headers). A reset fails it only when every response byte since the headers
// was seen, so the trailers really never came.
func (p *http2Parser) unfinished(s *h2Stream, f Failure) {
	x := s.x
	if x.GRPC == nil || x.GRPC.Status >= 0 {
		return // complete: a plain HTTP/2 response is its headers
	}
	x.HTTP.Partial = true
	if f == FailureReset && !p.blind(s) {
		x.Failure = FailureReset
	}
}

// flushBlind emits, when a new request opens a stream, the answered calls whose trailers may
// have been in response bytes that were not captured (a server stream written in one write
// cut by the payload limit): waiting for the connection to end would hold them for as long
// as the client keeps the connection open. A call still running concurrently is reported the
// same way, without its status; its later frames are ignored.
func (p *http2Parser) flushBlind(c *conn) {
	if p.dirs[0].gaps == 0 && p.dirs[1].gaps == 0 {
		return // every byte seen so far: nothing can be blind
	}
	for id, s := range p.streams {
		if s.answered && s.x.GRPC != nil && p.blind(s) {
			delete(p.streams, id)
			p.unfinished(s, FailureNone)
			c.emit(s.x)
		}
	}
}

func (p *http2Parser) fail(c *conn, f Failure, at time.Time) {
	for id, s := range p.streams {
		if !s.answered {
			s.x.End = at
			s.x.Failure = f
		} else {
			p.unfinished(s, f)
		}
		delete(p.streams, id)
		c.emit(s.x)
	}
}

func (p *http2Parser) expire(c *conn, deadline, now time.Time) {
	for id, s := range p.streams {
		if !s.x.Start.Before(deadline) {
			continue
		}
		delete(p.streams, id)
		if !s.answered {
			s.x.End = now
			s.x.Failure = FailureTimeout
			c.t.counters.Timeouts++
		} else {
			p.unfinished(s, FailureTimeout)
		}
		c.emit(s.x)
	}
}

// h2Fields are the header fields l7 reads.
type h2Fields struct {
	method, path, authority, userAgent, contentType string
	status                                          int
	grpcStatus                                      int
	grpcMessage                                     string
	requestPseudo                                   bool // :method, :scheme, :path or :authority
}

func (f *h2Fields) read(fields []hpack.HeaderField) {
	f.grpcStatus = -1
	for _, hf := range fields {
		v := hf.Value
		if len(v) > maxHeaderValueLen {
			v = v[:maxHeaderValueLen]
		}
		switch hf.Name {
		case ":method":
			f.method, f.requestPseudo = v, true
		case ":path":
			f.path, f.requestPseudo = v, true
		case ":authority":
			f.authority, f.requestPseudo = v, true
		case ":scheme":
			f.requestPseudo = true
		case ":status":
			f.status, _ = strconv.Atoi(v)
		case "user-agent":
			f.userAgent = v
		case "content-type":
			f.contentType = v
		case "grpc-status":
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				f.grpcStatus = n
			}
		case "grpc-message":
			f.grpcMessage = decodeGRPCMessage(v)
		case "host":
			if f.authority == "" {
				f.authority = v
			}
		}
	}
}
