package l7

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/netintel/netintelreceiver/internal/capture"
)

const (
	dnsHeaderLen  = 12
	dnsMaxAnswers = 16 // answers kept per response
)

// looksLikeDNS checks a datagram's header: one question, a standard opcode, and counts that
// fit the message.
func looksLikeDNS(p []byte) bool {
	if !plausibleDNSHeader(p) {
		return false
	}
	var parser dnsmessage.Parser
	if _, err := parser.Start(p); err != nil {
		return false
	}
	_, err := parser.Question()
	return err == nil
}

// plausibleDNSHeader checks the fixed header alone (the rest may not have arrived yet).
func plausibleDNSHeader(p []byte) bool {
	if len(p) < dnsHeaderLen+5 {
		return false
	}
	flags := binary.BigEndian.Uint16(p[2:])
	opcode := (flags >> 11) & 0xf
	qd := binary.BigEndian.Uint16(p[4:])
	an := binary.BigEndian.Uint16(p[6:])
	ns := binary.BigEndian.Uint16(p[8:])
	ar := binary.BigEndian.Uint16(p[10:])
	if qd != 1 || opcode > 5 || flags&0x0040 != 0 { // Z bit must be zero
		return false
	}
	if flags&0x8000 == 0 && (an != 0 || ns != 0 || ar > 1) {
		return false // a query carries at most an OPT record
	}
	return true
}

// looksLikeDNSOverTCP checks a length-prefixed DNS message.
func looksLikeDNSOverTCP(p []byte) bool {
	if len(p) < 2+dnsHeaderLen+5 {
		return false
	}
	n := int(binary.BigEndian.Uint16(p))
	if n < dnsHeaderLen+5 {
		return false
	}
	if len(p)-2 < n {
		return plausibleDNSHeader(p[2:]) // the rest is in the next read, or was not captured
	}
	return looksLikeDNS(p[2 : 2+n])
}

// dnsLengthOnly reports whether a TCP write carried exactly one length-prefixed DNS message of
// which only the length was captured: clients such as dig write the 2-byte length and the
// message as two iovecs of one sendmsg/writev, and only the first was copied.
func dnsLengthOnly(ev *capture.DataEvent) bool {
	p := ev.Payload
	if ev.Socket.Transport == capture.TransportUDP || len(p) < 2 || len(p) >= 2+dnsHeaderLen || !ev.Truncated {
		return false
	}
	n := int(binary.BigEndian.Uint16(p))
	return n >= dnsHeaderLen+5 && ev.Size == n+2
}

type dnsKey struct {
	peer netip.AddrPort
	id   uint16
}

type dnsPending struct {
	x *Exchange
}

type dnsParser struct {
	udp     bool
	pending map[dnsKey]dnsPending
	order   []dnsKey // insertion order, for timeouts and the cap
	tcp     [2]byteStream
	// blind are TCP queries whose message was not captured (only its length was): a
	// response with no known query answers the oldest, and its question names the query.
	blind []*Exchange
}

func newDNS(udp bool) *dnsParser {
	p := &dnsParser{udp: udp, pending: make(map[dnsKey]dnsPending)}
	p.tcp[0], p.tcp[1] = newByteStream(), newByteStream()
	return p
}

func (p *dnsParser) data(c *conn, ev *capture.DataEvent) {
	if p.udp {
		p.message(c, ev, ev.Payload, 0, ev.Time)
		return
	}
	s := &p.tcp[dirIndex(ev.Direction)]
	ch, ok := s.begin(c.t, ev)
	if !ok {
		return
	}
	if s.lost {
		if !ch.fresh || !looksLikeDNSOverTCP(ch.data) {
			c.t.counters.Resyncs++
			return
		}
		s.lost = false
	}
	off := 0
	for off+2 <= len(ch.data) {
		n := int(binary.BigEndian.Uint16(ch.data[off:]))
		msg := ch.data[off+2:]
		if len(msg) < n {
			if ch.hidden == 0 {
				break // the rest arrives in the next read
			}
			// Cut by the payload limit: parse what is there, skip the rest.
			if len(msg) < dnsHeaderLen && c.reqDir != 0 && ev.Direction == c.reqDir {
				p.blindQuery(c, ev, ch.seq+uint32(off), ch.at)
			} else {
				p.message(c, ev, msg, ch.seq+uint32(off), ch.at)
			}
			s.skipAfter(ch, off, int64(n+2))
			return
		}
		at := ch.at
		if off == 0 {
			at = ch.start
		}
		p.message(c, ev, msg[:n], ch.seq+uint32(off), at)
		off += 2 + n
	}
	s.keep(c.t, ch, off)
}

// message handles one DNS message (possibly cut short).
func (p *dnsParser) message(c *conn, ev *capture.DataEvent, msg []byte, seq uint32, at time.Time) {
	t := c.t
	var parser dnsmessage.Parser
	hdr, err := parser.Start(msg)
	if err != nil {
		t.parseFailure(ProtocolDNS)
		return
	}
	q, err := parser.Question()
	if err != nil {
		t.parseFailure(ProtocolDNS)
		return
	}
	key := dnsKey{peer: ev.Socket.Remote, id: hdr.ID}
	if !hdr.Response {
		c.learnRequestDir(ev.Direction)
		x := c.exchange(ProtocolDNS, ev.Direction, at, ev.Socket)
		if p.udp {
			x.StreamID = uint32(hdr.ID)
		} else {
			x.RequestSeq = seq
		}
		x.DNS = &DNS{
			ID:    hdr.ID,
			Name:  strings.TrimSuffix(q.Name.String(), "."),
			Type:  typeName(q.Type),
			RCode: -1,
		}
		if _, dup := p.pending[key]; !dup {
			if len(p.order) >= maxDNSPending {
				p.drop(p.order[0])
				t.counters.PendingDropped++
			}
			p.order = append(p.order, key)
		}
		p.pending[key] = dnsPending{x: x}
		return
	}
	var x *Exchange
	if pd, ok := p.pending[key]; ok {
		p.drop(key)
		x = pd.x
	} else if len(p.blind) > 0 {
		// The query went out uncaptured: the response echoes its question and id.
		x = p.blind[0]
		p.blind[0] = nil
		p.blind = p.blind[1:]
		x.DNS.ID = hdr.ID
		x.DNS.Name = strings.TrimSuffix(q.Name.String(), ".")
		x.DNS.Type = typeName(q.Type)
	} else {
		t.counters.UnmatchedResponses++
		return
	}
	x.End = at
	x.DNS.RCode = int(hdr.RCode)
	x.DNS.RCodeName = rcodeName(hdr.RCode)
	if err := parser.SkipAllQuestions(); err != nil {
		c.emit(x)
		return
	}
	for i := 0; i < dnsMaxAnswers; i++ {
		rh, err := parser.AnswerHeader()
		if err != nil {
			break
		}
		switch rh.Type {
		case dnsmessage.TypeA:
			r, err := parser.AResource()
			if err != nil {
				i = dnsMaxAnswers
				continue
			}
			x.DNS.Answers = append(x.DNS.Answers, netip.AddrFrom4(r.A))
		case dnsmessage.TypeAAAA:
			r, err := parser.AAAAResource()
			if err != nil {
				i = dnsMaxAnswers
				continue
			}
			x.DNS.Answers = append(x.DNS.Answers, netip.AddrFrom16(r.AAAA))
		case dnsmessage.TypeCNAME:
			r, err := parser.CNAMEResource()
			if err != nil {
				i = dnsMaxAnswers
				continue
			}
			x.DNS.CNAMEs = append(x.DNS.CNAMEs, strings.TrimSuffix(r.CNAME.String(), "."))
		default:
			if err := parser.SkipAnswer(); err != nil {
				i = dnsMaxAnswers
			}
		}
	}
	c.emit(x)
}

// blindQuery records a TCP query of which only the length prefix was captured.
func (p *dnsParser) blindQuery(c *conn, ev *capture.DataEvent, seq uint32, at time.Time) {
	if len(p.blind) >= maxDNSPending {
		p.blind = p.blind[1:]
		c.t.counters.PendingDropped++
	}
	x := c.exchange(ProtocolDNS, ev.Direction, at, ev.Socket)
	x.RequestSeq = seq
	x.DNS = &DNS{RCode: -1}
	p.blind = append(p.blind, x)
}

func (p *dnsParser) drop(k dnsKey) {
	delete(p.pending, k)
	for i, o := range p.order {
		if o == k {
			p.order = append(p.order[:i], p.order[i+1:]...)
			break
		}
	}
}

func (p *dnsParser) fail(c *conn, f Failure, at time.Time) {
	for _, k := range p.order {
		x := p.pending[k].x
		x.End = at
		x.Failure = f
		c.emit(x)
	}
	p.order = nil
	clear(p.pending)
	for _, x := range p.blind {
		x.End = at
		x.Failure = f
		c.emit(x)
	}
	p.blind = nil
}

func (p *dnsParser) expire(c *conn, deadline, now time.Time) {
	for len(p.blind) > 0 && p.blind[0].Start.Before(deadline) {
		x := p.blind[0]
		p.blind = p.blind[1:]
		x.End = now
		x.Failure = FailureTimeout
		c.t.counters.Timeouts++
		c.emit(x)
	}
	for len(p.order) > 0 {
		k := p.order[0]
		x := p.pending[k].x
		if !x.Start.Before(deadline) {
			return
		}
		p.drop(k)
		x.End = now
		x.Failure = FailureTimeout
		c.t.counters.Timeouts++
		c.emit(x)
	}
}

func typeName(t dnsmessage.Type) string {
	return strings.TrimPrefix(t.String(), "Type")
}

func rcodeName(r dnsmessage.RCode) string {
	switch r {
	case dnsmessage.RCodeSuccess:
		return "NOERROR"
	case dnsmessage.RCodeFormatError:
		return "FORMERR"
	case dnsmessage.RCodeServerFailure:
		return "SERVFAIL"
	case dnsmessage.RCodeNameError:
		return "NXDOMAIN"
	case dnsmessage.RCodeNotImplemented:
		return "NOTIMP"
	case dnsmessage.RCodeRefused:
		return "REFUSED"
	}
	return "RCODE" + strconv.Itoa(int(r))
}
