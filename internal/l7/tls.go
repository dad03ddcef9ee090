package l7

import (
	"encoding/binary"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

const (
	tlsRecordHandshake    = 0x16
	tlsRecordAppData      = 0x17
	tlsRecordAlert        = 0x15
	tlsRecordCCS          = 0x14
	tlsRecordHeaderLen    = 5
	tlsMaxRecordLen       = 16384 + 2048
	tlsClientHello        = 1
	tlsServerHello        = 2
	tlsExtServerName      = 0
	tlsExtALPN            = 16
	tlsExtSupportedVers   = 43
	tlsMaxALPN            = 8
	tlsServerNameHostName = 0
)

// looksLikeTLS checks for a TLS record header: a handshake, or (joined mid-connection)
// application data, alerts or change-cipher-spec.
func looksLikeTLS(p []byte) bool {
	if len(p) < tlsRecordHeaderLen || p[1] != 3 || p[2] > 4 {
		return false
	}
	n := int(binary.BigEndian.Uint16(p[3:]))
	if n == 0 || n > tlsMaxRecordLen {
		return false
	}
	switch p[0] {
	case tlsRecordHandshake:
		return len(p) == tlsRecordHeaderLen || p[5] == tlsClientHello || p[5] == tlsServerHello
	case tlsRecordAppData, tlsRecordAlert, tlsRecordCCS:
		return true
	}
	return false
}

// tlsHello is what a ClientHello or ServerHello says.
type tlsHello struct {
	client  bool
	sni     string
	alpn    []string
	version uint16 // legacy version, or the supported_versions choice of a ServerHello
	partial bool   // cut before its extensions ended
}

type tlsParser struct {
	x *Exchange
}

func (p *tlsParser) data(c *conn, ev *capture.DataEvent) {
	if !looksLikeTLS(ev.Payload) {
		if p.x == nil {
			c.giveUp()
		}
		return
	}
	if ev.Payload[0] != tlsRecordHandshake {
		c.giveUp() // encrypted from here on: nothing more to learn
		return
	}
	h, ok := parseTLSHello(ev.Payload)
	if !ok {
		c.t.parseFailure(ProtocolTLS)
		c.giveUp()
		return
	}
	if h.client {
		c.learnRequestDir(ev.Direction)
		x := c.exchange(ProtocolTLS, ev.Direction, ev.Time, ev.Socket)
		x.RequestSeq = ev.Seq
		x.TLS = &TLS{SNI: h.sni, ALPN: h.alpn, Version: tlsVersionName(h.version)}
		p.x = x
		return
	}
	if p.x == nil {
		c.t.counters.UnmatchedResponses++
		c.giveUp()
		return
	}
	x := p.x
	p.x = nil
	x.End = ev.Time
	x.TLS.Handshake = x.Duration()
	x.TLS.Version = tlsVersionName(h.version)
	if len(h.alpn) > 0 {
		x.TLS.ALPN = h.alpn
	}
	c.emit(x)
	c.giveUp()
}

func (p *tlsParser) fail(c *conn, f Failure, at time.Time) {
	if p.x != nil {
		p.x.End, p.x.Failure = at, f
		c.emit(p.x)
		p.x = nil
	}
}

func (p *tlsParser) expire(c *conn, deadline, now time.Time) {
	if p.x != nil && p.x.Start.Before(deadline) {
		p.x.End, p.x.Failure = now, FailureTimeout
		c.t.counters.Timeouts++
		c.emit(p.x)
		p.x = nil
	}
}

func tlsVersionName(v uint16) string {
	switch v {
	case 0x0304:
		return "1.3"
	case 0x0303:
		return "1.2"
	case 0x0302:
		return "1.1"
	case 0x0301:
		return "1.0"
	}
	return ""
}

// tlsReader reads big-endian fields and reports running past the end instead of panicking.
type tlsReader struct {
	b   []byte
	bad bool
}

func (r *tlsReader) u8() int {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return int(v)
}

func (r *tlsReader) u16() int {
	if len(r.b) < 2 {
		r.bad = true
		r.b = nil
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return int(v)
}

func (r *tlsReader) bytes(n int) []byte {
	if n > len(r.b) {
		r.bad = true
		v := r.b
		r.b = nil
		return v
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// parseTLSHello parses a handshake record holding a ClientHello or ServerHello. A hello cut
// by the payload limit yields what precedes the cut.
func parseTLSHello(p []byte) (tlsHello, bool) {
	var h tlsHello
	if len(p) < tlsRecordHeaderLen+4 || p[0] != tlsRecordHandshake {
		return h, false
	}
	body := p[tlsRecordHeaderLen:]
	if n := int(binary.BigEndian.Uint16(p[3:])); n < len(body) {
		body = body[:n]
	}
	if len(body) < 4 {
		return h, false
	}
	typ := body[0]
	if typ != tlsClientHello && typ != tlsServerHello {
		return h, false
	}
	h.client = typ == tlsClientHello
	r := &tlsReader{b: body[4:]}
	if hl := int(body[1])<<16 | int(body[2])<<8 | int(body[3]); hl < len(r.b) {
		r.b = r.b[:hl]
	}
	h.version = uint16(r.u16())
	r.bytes(32) // random
	r.bytes(r.u8())
	if h.client {
		r.bytes(r.u16()) // cipher suites
		r.bytes(r.u8())  // compression methods
	} else {
		r.u16() // cipher suite
		r.u8()  // compression method
	}
	if r.bad {
		h.partial = true
		return h, h.version != 0
	}
	if len(r.b) == 0 {
		return h, true // no extensions
	}
	ext := &tlsReader{b: r.bytes(r.u16())}
	for len(ext.b) >= 4 && !ext.bad {
		typ := ext.u16()
		data := &tlsReader{b: ext.bytes(ext.u16())}
		switch typ {
		case tlsExtServerName:
			list := &tlsReader{b: data.bytes(data.u16())}
			for len(list.b) > 0 && !list.bad {
				kind := list.u8()
				name := list.bytes(list.u16())
				if kind == tlsServerNameHostName && !list.bad {
					h.sni = clip(name)
					break
				}
			}
		case tlsExtALPN:
			if !h.client && h.alpn != nil {
				break
			}
			list := &tlsReader{b: data.bytes(data.u16())}
			for len(list.b) > 0 && !list.bad && len(h.alpn) < tlsMaxALPN {
				proto := list.bytes(list.u8())
				if !list.bad {
					h.alpn = append(h.alpn, clip(proto))
				}
			}
		case tlsExtSupportedVers:
			if !h.client && len(data.b) == 2 {
				h.version = uint16(data.u16())
			} else if h.client {
				// The highest version offered that is a real one (skip GREASE values).
				list := &tlsReader{b: data.bytes(data.u8())}
				best := h.version
				for len(list.b) >= 2 {
					v := uint16(list.u16())
					if v&0x0f0f != 0x0a0a && v > best && v <= 0x0304 {
						best = v
					}
				}
				h.version = best
			}
		}
	}
	h.partial = ext.bad
	return h, true
}
