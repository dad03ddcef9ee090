package intel

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

var t0 = time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)

func svc(name string) identity.Service {
	return identity.Service{Name: name, Local: true, Resource: identity.Resource{ServiceName: name}}
}

// stream builds exchanges with distinct identities, as capture would.
type stream struct{ seq uint32 }

func (s *stream) next() uint32 { s.seq += 1000; return s.seq }

func (s *stream) http(client, server, method, path string, status int, start time.Time, d time.Duration) *l7.Exchange {
	return &l7.Exchange{
		Protocol: l7.ProtocolHTTP1, Transport: capture.TransportTCP, Side: l7.SideClient,
		Client: l7.Endpoint{Addr: netip.MustParseAddrPort(client)}, Server: l7.Endpoint{Addr: netip.MustParseAddrPort(server)},
		Start: start, End: start.Add(d),
		ClientISN: 1, ServerISN: 2, RequestSeq: s.next(),
		HTTP: &l7.HTTP{Method: method, Path: path, Status: status, UserAgent: "curl/8.5.0"},
	}
}

// call is one request between two named services.
type call struct {
	from, to string
	path     string
	status   int
	at       time.Duration // since t0
	latency  time.Duration
}

func (s *stream) feed(e *Engine, calls ...call) {
	for _, c := range calls {
		lat := c.latency
		if lat == 0 {
			lat = 10 * time.Millisecond
		}
		x := s.http("127.0.0.1:40000", "127.0.0.2:8080", "GET", c.path, c.status, t0.Add(c.at), lat)
		e.Exchange(x, svc(c.from), svc(c.to))
	}
}

func kinds(fs []Finding, k Kind) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

func concerns(fs []Finding, typ ConcernType) []Finding {
	var out []Finding
	for _, f := range kinds(fs, KindSecurityConcern) {
		if f.SecurityConcern.Type == typ {
			out = append(out, f)
		}
	}
	return out
}

// flushAll closes the current window: one call opens it, the next (FlushInterval later) closes it.
func flushAll(e *Engine, now time.Time) []Finding {
	out := e.Findings(now)
	return append(out, e.Findings(now.Add(e.opts.FlushInterval))...)
}

func testEngine(mod func(*Options)) *Engine {
	o := DefaultOptions()
	if mod != nil {
		mod(&o)
	}
	return New(o)
}

func requireLen(t *testing.T, what string, fs []Finding, n int) {
	t.Helper()
	if len(fs) != n {
		t.Fatalf("%s: got %d findings, want %d: %+v", what, len(fs), n, fs)
	}
}
