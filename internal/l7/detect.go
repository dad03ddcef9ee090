package l7

import (
	"bytes"
	"slices"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// detect picks the protocol of a socket from its first captured bytes. Ports only order the
// checks; every protocol is recognised on any port.
//
// A first read/write too short to judge (a client writing a request in pieces) is held back
// and joined with the bytes that follow it; detect returns the event to parse.
func (t *Tracker) detect(c *conn, ev *capture.DataEvent) (*capture.DataEvent, bool) {
	ev = c.joinShort(ev)
	p := ev.Payload
	proto := ProtocolUnknown
	udp := ev.Socket.Transport == capture.TransportUDP
	port := func(ports []uint16) bool {
		return slices.Contains(ports, c.sock.Local.Port()) || slices.Contains(ports, ev.Socket.Remote.Port())
	}
	switch {
	case udp:
		if looksLikeDNS(p) {
			proto = ProtocolDNS
		}
	case bytes.HasPrefix(p, []byte(h2Preface)) || (len(p) < len(h2Preface) && len(p) >= 4 && bytes.HasPrefix([]byte(h2Preface), p)):
		proto = ProtocolHTTP2
	case looksLikeHTTP1Request(p) || looksLikeHTTP1Response(p):
		proto = ProtocolHTTP1
	case looksLikeTLS(p):
		proto = ProtocolTLS
	case port(t.opts.DNSPorts) && (looksLikeDNSOverTCP(p) || dnsLengthOnly(ev)):
		proto = ProtocolDNS
	case looksLikeH2Frames(p):
		proto = ProtocolHTTP2
	case looksLikeDNSOverTCP(p):
		proto = ProtocolDNS
	}
	if proto == ProtocolUnknown {
		if c.holdShort(ev) {
			return nil, false
		}
		c.attempts++
		if c.attempts >= maxDetectAttempts {
			c.giveUp()
			t.counters.Unclassified++
		}
		return nil, false
	}
	c.short = nil
	c.proto = proto
	switch proto {
	case ProtocolHTTP1:
		c.parser = newHTTP1()
	case ProtocolHTTP2:
		c.parser = newHTTP2()
	case ProtocolDNS:
		c.parser = newDNS(udp)
	case ProtocolTLS:
		c.parser = &tlsParser{}
	}
	// A disabled protocol keeps its (cheap) parser off: the socket is recognised and ignored.
	if !t.enabled(proto) && !(proto == ProtocolHTTP2 && t.opts.GRPC) {
		c.giveUp()
		return nil, false
	}
	return ev, true
}

// minDetectBytes is how many bytes detection wants before it gives up on a read/write.
const minDetectBytes = 24

// holdShort keeps a short, complete, first TCP read/write to join it with the next.
func (c *conn) holdShort(ev *capture.DataEvent) bool {
	if ev.Socket.Transport == capture.TransportUDP || ev.Truncated || len(ev.Payload) >= minDetectBytes || !hasSeq(ev) {
		c.short = nil
		return false
	}
	held := *ev
	held.Payload = append([]byte(nil), ev.Payload...)
	c.short = &held
	return true
}

// joinShort prepends the held bytes when ev continues them.
func (c *conn) joinShort(ev *capture.DataEvent) *capture.DataEvent {
	h := c.short
	if h == nil || h.Direction != ev.Direction || h.Seq+uint32(h.Size) != ev.Seq {
		return ev
	}
	j := *ev
	j.Time, j.Seq = h.Time, h.Seq
	j.Size = h.Size + ev.Size
	j.Payload = append(append([]byte(nil), h.Payload...), ev.Payload...)
	return &j
}
