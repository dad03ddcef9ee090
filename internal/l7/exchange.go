// Package l7 detects application protocols in captured socket data and pairs requests with
// their responses (or failures) into Exchanges.
package l7

import (
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// Protocol is an application protocol l7 understands.
type Protocol uint8

const (
	ProtocolUnknown Protocol = iota
	ProtocolHTTP1
	ProtocolHTTP2
	ProtocolGRPC
	ProtocolDNS
	ProtocolTLS
)

func (p Protocol) String() string {
	switch p {
	case ProtocolHTTP1, ProtocolHTTP2:
		return "http"
	case ProtocolGRPC:
		return "grpc"
	case ProtocolDNS:
		return "dns"
	case ProtocolTLS:
		return "tls"
	}
	return "unknown"
}

// Failure is how an exchange ended when it did not end with a response.
type Failure uint8

const (
	FailureNone    Failure = iota
	FailureReset           // the connection was reset before the response
	FailureClosed          // the connection closed before the response
	FailureTimeout         // no response within the timeout
	FailureRefused         // the connection was refused (no request ever went out)
	// FailureAbandoned: the client closed the connection before the response came (a load
	// generator stopping, a caller's timeout). Not the server's failure: no error.
	FailureAbandoned
	// FailureUnknown: the outcome was not observed. Capture lost events on the connection
	// (a sequence gap) while the request was outstanding, so its response may have been among
	// them; pairing it with a later response would be a guess. Nobody's error, no duration
	// (End == Start), no status.
	FailureUnknown
)

func (f Failure) String() string {
	switch f {
	case FailureReset:
		return "connection_reset"
	case FailureClosed:
		return "connection_closed"
	case FailureTimeout:
		return "timeout"
	case FailureRefused:
		return "connection_refused"
	case FailureAbandoned:
		return "client_abandoned"
	case FailureUnknown:
		return "unknown"
	}
	return ""
}

// Endpoint is one end of an exchange.
type Endpoint struct {
	Addr    netip.AddrPort
	Process capture.Process // zero when the end is not a local process observed here
}

// Side is which end of the connection the observing socket was.
type Side uint8

const (
	SideClient Side = iota + 1 // observed on the socket that sent the request
	SideServer                 // observed on the socket that received the request
)

func (s Side) String() string {
	if s == SideServer {
		return "server"
	}
	return "client"
}

// HTTP holds the fields of an HTTP/1.x or HTTP/2 request and response.
type HTTP struct {
	Method string
	Path   string // target path without the query string
	// Route is the route template of Path ("/users/{id}"), set once per exchange by the
	// receiver's pipeline from what internal/route learned for the server, before intel and
	// otlp see the exchange; empty until then.
	Route       string
	Query       string // never exported by default (privacy)
	Version     string // "1.0", "1.1", "2"
	Host        string // Host header or :authority
	UserAgent   string
	ContentType string
	Status      int    // 0 when no response was seen
	Reason      string // HTTP/1 reason phrase
	Partial     bool   // headers were cut by the payload limit or an unknown HPACK reference
}

// GRPC holds the call's identity and result (carried over HTTP/2).
type GRPC struct {
	Service    string // "helloworld.Greeter"
	Method     string // "SayHello"
	Status     int    // grpc-status; -1 when the trailers were not seen
	StatusName string // "OK", "NOT_FOUND", ...
	Message    string // grpc-message
}

// DNS holds one query and its answer.
type DNS struct {
	ID        uint16
	Name      string // question name, without the trailing dot
	Type      string // "A", "AAAA", ...
	RCode     int    // -1 when unanswered
	RCodeName string // "NOERROR", "NXDOMAIN", ...
	Answers   []netip.Addr
	CNAMEs    []string
}

// TLS holds handshake metadata; nothing is decrypted.
type TLS struct {
	SNI       string
	ALPN      []string // offered by the client, or the one the server chose
	Version   string   // "1.2", "1.3"
	Handshake time.Duration
}

// Exchange is one request with its response, or with the failure that ended it, as observed
// on one socket. When both ends are local, each end yields its own Exchange (Side tells which);
// they share ClientISN, ServerISN, RequestSeq and StreamID, which is their identity.
type Exchange struct {
	Protocol  Protocol
	Transport capture.Transport
	Side      Side
	Client    Endpoint
	Server    Endpoint
	Cookie    uint64 // the observing socket

	Start time.Time // first byte of the request observed
	End   time.Time // first byte of the response observed (or when the failure was seen)

	// Identity (DESIGN §4). Zero for UDP.
	ClientISN  uint32
	ServerISN  uint32
	RequestSeq uint32
	StreamID   uint32 // HTTP/2 stream id

	HTTP *HTTP
	GRPC *GRPC
	DNS  *DNS
	TLS  *TLS

	Failure Failure

	// HTTP/1 judged in the kernel: its route key, and why it was sent (first of its key,
	// error, slow, sampled). Zero for exchanges parsed from raw bytes.
	KernelRoute uint64
	Sent        capture.HTTP1Reasons

	// Paired: a server side whose client is on this node too and was left quiet by the kernel,
	// which judges such a connection once, on the server's socket. The client's side is
	// ClientTwin, derived from this one.
	Paired bool
}

// ClientTwin is the client's side of a Paired exchange: the same request, response, timing and
// identity, observed at the server's socket (on this node the two ends differ by the loopback's
// transit). Nil for any other exchange.
func (e *Exchange) ClientTwin() *Exchange {
	if !e.Paired || e.Side != SideServer {
		return nil
	}
	twin := *e
	twin.Side = SideClient
	twin.Paired = false
	if e.HTTP != nil {
		h := *e.HTTP
		twin.HTTP = &h
	}
	if e.GRPC != nil {
		g := *e.GRPC
		twin.GRPC = &g
	}
	if e.TLS != nil {
		l := *e.TLS
		twin.TLS = &l
	}
	return &twin
}

// Duration is the time from the request's first byte to the response's first byte.
func (e *Exchange) Duration() time.Duration {
	if e.End.Before(e.Start) {
		return 0
	}
	return e.End.Sub(e.Start)
}

// sanitize makes every string taken from the wire valid UTF-8 (invalid bytes become U+FFFD):
// they end up in OTLP string fields, which protobuf requires to be UTF-8, and a backend may
// refuse a whole batch for one bad byte in a path or a user agent.
func (e *Exchange) sanitize() {
	if h := e.HTTP; h != nil {
		for _, s := range []*string{&h.Method, &h.Path, &h.Query, &h.Host, &h.UserAgent, &h.ContentType, &h.Reason} {
			*s = validUTF8(*s)
		}
	}
	if g := e.GRPC; g != nil {
		for _, s := range []*string{&g.Service, &g.Method, &g.Message} {
			*s = validUTF8(*s)
		}
	}
	if d := e.DNS; d != nil {
		d.Name = validUTF8(d.Name)
		for i := range d.CNAMEs {
			d.CNAMEs[i] = validUTF8(d.CNAMEs[i])
		}
	}
	if t := e.TLS; t != nil {
		t.SNI = validUTF8(t.SNI)
		for i := range t.ALPN {
			t.ALPN[i] = validUTF8(t.ALPN[i])
		}
	}
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
