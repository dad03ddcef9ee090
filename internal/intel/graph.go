package intel

import (
	"net/netip"
	"time"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
	"github.com/netintel/netintelreceiver/internal/lru"
)

// graph is the service_dependency detector: the dependency graph, each edge reported when
// first seen and again after DependencyTTL of silence, external destinations flagged; and
// the unauthorized_communication concern of edges outside allowed_dependencies.
type graph struct {
	e     *Engine
	edges *lru.Cache[EdgeKey, *edge]
	fresh []*edge // dependency findings waiting for the next Findings call

	allowed              map[[2]string]bool // AllowedDependencies, with "*" entries
	anyAllowed, restrict bool
}

// edge is one dependency of the graph.
type edge struct {
	key                 EdgeKey
	client, server      identity.Service
	destAddr            netip.AddrPort // the address of the first exchange
	external            bool           // destAddr is outside the internal networks
	firstSeen, lastSeen time.Time
	requests, errors    uint64
	window              uint64 // requests in the current flush window (chatty calls per request)
	latency             LatencySummary
	hotUntil            time.Time // sampling is raised on the edge until then
	rate                edgeRate  // requests per second, for the raised sampling
	unauthorized        bool      // outside allowed_dependencies
}

// LatencySummary summarizes the latencies of an edge since it was first seen. Max counts
// kernel aggregates at the upper bound of their highest non-empty bucket.
type LatencySummary struct {
	Count uint64
	Sum   time.Duration
	Max   time.Duration
}

func (l *LatencySummary) add(d time.Duration) {
	l.Count++
	l.Sum += d
	if d > l.Max {
		l.Max = d
	}
}

func (l *LatencySummary) addHistogram(h *l7.Histogram) {
	l.Count += h.Count
	l.Sum += h.Sum
	for i := len(h.Counts) - 1; i >= 0; i-- {
		if h.Counts[i] == 0 {
			continue
		}
		if i < len(h.Bounds) {
			l.Max = max(l.Max, h.Bounds[i])
		} else if len(h.Bounds) > 0 {
			l.Max = max(l.Max, h.Bounds[len(h.Bounds)-1])
		}
		break
	}
}

// EdgeStats is a snapshot of one edge of the dependency graph.
type EdgeStats struct {
	Key                 EdgeKey
	Client, Server      identity.Service
	FirstSeen, LastSeen time.Time
	Requests, Errors    uint64
	Latency             LatencySummary
	External            bool
}

func newGraph(e *Engine) *graph {
	g := &graph{e: e, edges: lru.New[EdgeKey, *edge](e.opts.MaxEdges)}
	if len(e.opts.AllowedDependencies) > 0 {
		g.restrict = true
		g.allowed = make(map[[2]string]bool, len(e.opts.AllowedDependencies))
		for _, d := range e.opts.AllowedDependencies {
			if d[0] == "*" && d[1] == "*" {
				g.anyAllowed = true
			}
			g.allowed[d] = true
		}
	}
	return g
}

func (g *graph) exchange(ob *observation) *edge {
	ed := g.observe(ob.key, ob.client, ob.server, ob.x.Server.Addr, ob.t)
	ed.requests++
	ed.window++
	ed.rate.observe(ob.t, 1)
	return ed
}

func (g *graph) aggregate(b *batch) *edge {
	ed := g.observe(b.key, b.client, b.server, b.a.Server.Addr, b.t)
	ed.requests += b.a.Count
	ed.window += b.a.Count
	ed.rate.observe(b.t, b.a.Count)
	return ed
}

// observe returns the edge of key, creating it; a new edge, or one back after DependencyTTL
// of silence, is reported as a service_dependency at the next Findings call.
func (g *graph) observe(key EdgeKey, client, server identity.Service, dest netip.AddrPort, t time.Time) *edge {
	ed, ok := g.edges.Get(key)
	switch {
	case !ok:
		dest = netip.AddrPortFrom(dest.Addr().Unmap(), dest.Port())
		ed = &edge{key: key, client: client, server: server, destAddr: dest, external: g.e.external(dest.Addr()),
			firstSeen: t, lastSeen: t, unauthorized: !g.allowedEdge(key)}
		g.edges.Put(key, ed)
		g.report(ed)
	case t.Sub(ed.lastSeen) > g.e.opts.DependencyTTL:
		g.report(ed)
	}
	if t.After(ed.lastSeen) {
		ed.lastSeen = t
	}
	return ed
}

func (g *graph) report(ed *edge) {
	if len(g.fresh) >= g.e.opts.MaxEdges {
		g.e.c.FindingsDropped++
		return
	}
	g.fresh = append(g.fresh, ed)
}

func (g *graph) findings() []Finding {
	var out []Finding
	for _, ed := range g.fresh {
		d := &Dependency{Edge: ed.key, FirstSeen: ed.firstSeen, RequestCount: ed.requests, External: ed.external}
		if ed.external {
			d.DestAddr = ed.destAddr
		}
		out = append(out, Finding{Kind: KindServiceDependency, Time: ed.lastSeen, Severity: SeverityInfo, Subject: ed.client, Dependency: d})
	}
	g.fresh = g.fresh[:0]
	return out
}

// external reports whether an address is outside the internal networks.
func (e *Engine) external(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range e.opts.InternalNetworks {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// allowedEdge reports whether an edge is in allowed_dependencies (always, when unset).
func (g *graph) allowedEdge(key EdgeKey) bool {
	return !g.restrict || g.anyAllowed || key.Source == key.Dest ||
		g.allowed[[2]string{key.Source, key.Dest}] ||
		g.allowed[[2]string{key.Source, "*"}] || g.allowed[[2]string{"*", key.Dest}]
}

// unauthorized reports traffic on an edge outside allowed_dependencies, once per source per
// scan window for as long as it goes on. It reports whether a finding was emitted.
func (g *graph) unauthorized(ob *observation) bool {
	ed := ob.edge
	if !ed.unauthorized {
		return false
	}
	return g.e.security.concern(concernKey{typ: ConcernUnauthorized, source: ed.key.Source}, ob.t, Finding{
		Kind: KindSecurityConcern, Time: ob.t, Severity: SeverityHigh, Subject: ed.client, Example: ob.example(),
		SecurityConcern: &SecurityConcern{
			Type: ConcernUnauthorized, SourceIP: ob.clientIP, SourceService: ed.key.Source,
			DestService: ed.key.Dest, DestAddr: ob.x.Server.Addr, Count: ed.requests,
		},
	})
}

// dedupSet remembers recent exchange ids with the decision made for them, so the second half
// of an exchange observed at both ends is not counted again and gets the same decision.
type dedupSet struct {
	m         map[[16]byte]dedupEntry
	ring      [][16]byte
	next      int
	forgotten uint64
}

type dedupEntry struct {
	side     uint8
	slot     int32
	decision Decision
}

func newDedupSet(capacity int) dedupSet {
	return dedupSet{m: make(map[[16]byte]dedupEntry, capacity), ring: make([][16]byte, capacity)}
}

// take returns the decision of the other half of id and forgets it. An entry from the same
// side is not the other half (ids can collide when capture lacks the sequence numbers).
func (s *dedupSet) take(id [16]byte, side l7.Side) (Decision, bool) {
	en, ok := s.m[id]
	if !ok || en.side == sideCode(side) {
		return Decision{}, false
	}
	delete(s.m, id)
	return en.decision, true
}

func (s *dedupSet) put(id [16]byte, side l7.Side, d Decision) {
	old := s.ring[s.next]
	if en, ok := s.m[old]; ok && int(en.slot) == s.next {
		delete(s.m, old)
		s.forgotten++
	}
	s.ring[s.next] = id
	s.m[id] = dedupEntry{side: sideCode(side), slot: int32(s.next), decision: d}
	s.next++
	if s.next == len(s.ring) {
		s.next = 0
	}
}

func sideCode(side l7.Side) uint8 { return uint8(side) }

func (s *dedupSet) len() int { return len(s.m) }

// unauthorizedBatch is unauthorized for kernel batches: traffic that goes on only as counts
// is still reported once per scan window.
func (g *graph) unauthorizedBatch(b *batch) bool {
	ed := b.edge
	if !ed.unauthorized {
		return false
	}
	return g.e.security.concern(concernKey{typ: ConcernUnauthorized, source: ed.key.Source}, b.t, Finding{
		Kind: KindSecurityConcern, Time: b.t, Severity: SeverityHigh, Subject: ed.client,
		SecurityConcern: &SecurityConcern{
			Type: ConcernUnauthorized, SourceIP: b.clientIP, SourceService: ed.key.Source,
			DestService: ed.key.Dest, DestAddr: b.a.Server.Addr, Count: ed.requests,
		},
	})
}
