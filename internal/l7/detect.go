package l7

import (
	"bytes"
	"slices"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// detect picks the protocol of a socket from its first captured bytes. Ports only order the
// checks; every protocol is recognised on any port.
func (t *Tracker) detect(c *conn, ev *capture.DataEvent) bool {
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
	case port(t.opts.DNSPorts) && looksLikeDNSOverTCP(p):
		proto = ProtocolDNS
	case looksLikeH2Frames(p):
		proto = ProtocolHTTP2
	case looksLikeDNSOverTCP(p):
		proto = ProtocolDNS
	}
	if proto == ProtocolUnknown {
		c.attempts++
		if c.attempts >= maxDetectAttempts {
			c.done = true
			t.counters.Unclassified++
		}
		return false
	}
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
		c.done = true
		return false
	}
	return true
}
