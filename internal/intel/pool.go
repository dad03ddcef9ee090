package intel

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/lru"
)

// noReuseShare: "about one connection per request" — at least this many new connections per
// request carried on the edge.
const noReuseShare = 0.8

// poolDetector is the connection_pool_exhaustion detector, per edge (client, server, port)
// and window:
//   - no_connection_reuse: at least NewConnectionsPerSecond connections opened, about one per
//     request;
//   - accept_queue_full: at least UnansweredHandshakes handshakes retransmitted, or connects
//     timed out or abandoned with their SYN unanswered, towards a listener known to be alive
//     (a local server, one that retransmitted its SYN-ACK, or one a connect completed to
//     within CascadeWindow) — a dead host answers nothing, a full accept queue answers some;
//   - ephemeral_ports_exhausted: connects that failed with EADDRNOTAVAIL.
//
// Each (reason, edge) is reported once per episode.
type poolDetector struct {
	e        *Engine
	edges    map[EdgeKey]*poolEdge
	answered *lru.Cache[netip.AddrPort, time.Time] // destinations a connect completed to, when
	reported *episodes
	told     map[poolTold]bool // what this window's findings explained (connection failures leave it out)
}

type poolTold struct {
	reason PoolReason
	edge   EdgeKey
}

type poolEdge struct {
	client, server identity.Service
	dest           netip.AddrPort
	opens          uint64
	requests       uint64
	unanswered     uint64
	synAckResent   bool // the listener itself retransmitted a SYN-ACK: it is alive and full
	addrNotAvail   uint64
}

func newPoolDetector(e *Engine) *poolDetector {
	return &poolDetector{
		e: e, edges: make(map[EdgeKey]*poolEdge), told: make(map[poolTold]bool),
		answered: lru.New[netip.AddrPort, time.Time](e.opts.MaxEdges),
		reported: newEpisodes(e.opts.ReportAgainAfter, e.opts.MaxEdges),
	}
}

func (p *poolDetector) edge(key EdgeKey, client, server identity.Service, dest netip.AddrPort) *poolEdge {
	pe, ok := p.edges[key]
	if !ok {
		if len(p.edges) >= p.e.opts.MaxEdges {
			p.e.c.PoolGroupsDropped++
			return nil
		}
		pe = &poolEdge{client: client, server: server, dest: dest}
		p.edges[key] = pe
	}
	return pe
}

// tcpKey is the edge of a connection: the names of both ends and the server's port.
func tcpKey(client, server identity.Service, port uint16) EdgeKey {
	return EdgeKey{Source: client.Name, Dest: server.Name, Protocol: "tcp", Port: port}
}

// serverAddr is the server's address of a connection event, from either side.
func serverAddr(s capture.Socket) netip.AddrPort {
	ap := s.Remote
	if s.Role == capture.RoleServer {
		ap = s.Local
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// requests are counted per edge only where connections are counted: the window map holds
// edges that opened a connection in it.
func (p *poolDetector) exchange(ob *observation) { p.carried(ob.client, ob.server, ob.key.Port, 1) }

func (p *poolDetector) aggregate(b *batch) { p.carried(b.client, b.server, b.key.Port, b.a.Count) }

func (p *poolDetector) carried(client, server identity.Service, port uint16, n uint64) {
	if len(p.edges) == 0 {
		return
	}
	if pe, ok := p.edges[tcpKey(client, server, port)]; ok {
		pe.requests += n
	}
}

// opened counts a new connection: the accepting side's always, the connecting side's only
// when its server is not local (then no accept is seen here), so a connection between two
// local processes counts once. A connect that completed also proves its listener alive.
func (p *poolDetector) opened(ev *capture.ConnEvent, client, server identity.Service) {
	s := ev.Socket
	dest := serverAddr(s)
	if s.Role == capture.RoleClient {
		p.answered.Put(dest, ev.Time)
		if server.Local {
			return
		}
	} else if s.Role != capture.RoleServer {
		return
	}
	if pe := p.edge(tcpKey(client, server, dest.Port()), client, server, dest); pe != nil {
		pe.opens++
	}
}

// unanswered counts a handshake retransmit (SYN by a client, SYN-ACK by a listener) or a
// connect that timed out or was abandoned in SYN_SENT.
func (p *poolDetector) unanswered(ev *capture.ConnEvent, client, server identity.Service) {
	dest := serverAddr(ev.Socket)
	if pe := p.edge(tcpKey(client, server, dest.Port()), client, server, dest); pe != nil {
		pe.unanswered++
		if ev.Kind == capture.ConnHandshakeRetransmit && ev.Socket.Role == capture.RoleServer {
			pe.synAckResent = true
		}
	}
}

func (p *poolDetector) addrNotAvailable(ev *capture.ConnEvent, client, server identity.Service) {
	dest := serverAddr(ev.Socket)
	if pe := p.edge(tcpKey(client, server, dest.Port()), client, server, dest); pe != nil {
		pe.addrNotAvail++
	}
}

// explained reports whether pool findings tell the story of an edge: found in this window,
// or an episode of it still going on (seen within CascadeWindow of the events' clock).
func (p *poolDetector) explained(reason PoolReason, edge EdgeKey, clock time.Time) bool {
	if p.told[poolTold{reason, edge}] {
		return true
	}
	last, ok := p.reported.seen.Peek(poolEpisode(reason, edge))
	return ok && clock.Sub(last) <= p.e.opts.CascadeWindow
}

func poolEpisode(reason PoolReason, key EdgeKey) string {
	return episodeKey(string(reason), key.Source, key.Dest, strconv.Itoa(int(key.Port)))
}

func (p *poolDetector) flush(w window) []Finding {
	clear(p.told)
	secs := w.length().Seconds()
	var out []Finding
	report := func(reason PoolReason, key EdgeKey, pe *poolEdge, sev Severity) {
		p.told[poolTold{reason, key}] = true
		if !p.reported.fresh(poolEpisode(reason, key), w.clock) {
			return
		}
		pf := &ConnectionPoolExhaustion{
			Reason: reason, Edge: key, Connections: pe.opens, Requests: pe.requests,
			Unanswered: pe.unanswered, Failures: pe.addrNotAvail, Window: w.length(),
		}
		if secs > 0 {
			pf.RatePerSec = float64(pe.opens) / secs
		}
		out = append(out, Finding{Kind: KindConnectionPoolExhaustion, Time: w.end, Severity: sev, Subject: pe.client, PoolExhaustion: pf})
	}
	for key, pe := range p.edges {
		if pe.addrNotAvail > 0 {
			report(PoolEphemeralPortsExhausted, key, pe, SeverityHigh)
		}
		if pe.unanswered >= uint64(p.e.opts.UnansweredHandshakes) && p.alive(pe, w.clock) {
			report(PoolAcceptQueueFull, key, pe, SeverityHigh)
		}
		if secs > 0 && pe.requests > 0 && float64(pe.opens)/secs >= p.e.opts.NewConnectionsPerSecond &&
			float64(pe.opens) >= noReuseShare*float64(pe.requests) {
			report(PoolNoReuse, key, pe, SeverityMedium)
		}
	}
	slices.SortFunc(out, func(a, b Finding) int {
		if c := compareEdgeKeys(a.PoolExhaustion.Edge, b.PoolExhaustion.Edge); c != 0 {
			return c
		}
		return strings.Compare(string(a.PoolExhaustion.Reason), string(b.PoolExhaustion.Reason))
	})
	clear(p.edges)
	return out
}

// alive: the listener behind an edge answers some handshakes, so the unanswered ones queue.
func (p *poolDetector) alive(pe *poolEdge, clock time.Time) bool {
	if pe.server.Local || pe.synAckResent {
		return true
	}
	last, ok := p.answered.Peek(pe.dest)
	return ok && clock.Sub(last) <= p.e.opts.CascadeWindow
}
