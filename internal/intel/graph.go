package intel

import (
	"time"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// edge is one dependency of the graph.
type edge struct {
	key                 EdgeKey
	client, server      identity.Service
	firstSeen, lastSeen time.Time
	requests, errors    uint64
	latency             LatencySummary
	hotUntil            time.Time // sampling is raised on the edge until then
	rate                edgeRate  // requests per second, for the raised sampling
	unauthorized        bool      // outside allowed_dependencies
}

// LatencySummary summarizes the latencies of an edge since it was first seen.
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

// EdgeStats is a snapshot of one edge of the dependency graph.
type EdgeStats struct {
	Key                 EdgeKey
	Client, Server      identity.Service
	FirstSeen, LastSeen time.Time
	Requests, Errors    uint64
	Latency             LatencySummary
}

// observeEdge returns the edge of key, creating it; a new edge, or one back after
// DependencyTTL of silence, is reported as a service_dependency at the next Findings call.
func (e *Engine) observeEdge(key EdgeKey, client, server identity.Service, t time.Time) *edge {
	ed, ok := e.edges.Get(key)
	switch {
	case !ok:
		ed = &edge{key: key, client: client, server: server, firstSeen: t, lastSeen: t, unauthorized: !e.allowedEdge(key)}
		e.edges.Put(key, ed)
		e.reportEdge(ed)
	case t.Sub(ed.lastSeen) > e.opts.DependencyTTL:
		e.reportEdge(ed)
	}
	if t.After(ed.lastSeen) {
		ed.lastSeen = t
	}
	return ed
}

func (e *Engine) reportEdge(ed *edge) {
	if len(e.newEdges) >= e.opts.MaxEdges {
		e.c.FindingsDropped++
		return
	}
	e.newEdges = append(e.newEdges, ed)
}

// allowedEdge reports whether an edge is in allowed_dependencies (always, when unset).
func (e *Engine) allowedEdge(key EdgeKey) bool {
	return !e.restrict || e.anyAllowed || key.Source == key.Dest ||
		e.allowed[[2]string{key.Source, key.Dest}] ||
		e.allowed[[2]string{key.Source, "*"}] || e.allowed[[2]string{"*", key.Dest}]
}

// reportUnauthorized reports traffic on an edge outside allowed_dependencies, once per source
// per scan window for as long as it goes on.
func (e *Engine) reportUnauthorized(ed *edge, x *l7.Exchange, id [16]byte, t time.Time) bool {
	return e.concern(concernKey{typ: ConcernUnauthorized, source: ed.key.Source}, t, Finding{
		Kind: KindSecurityConcern, Time: t, Severity: SeverityHigh, Subject: ed.client, Example: exampleOf(x, id, ed.server),
		SecurityConcern: &SecurityConcern{
			Type: ConcernUnauthorized, SourceIP: x.Client.Addr.Addr().Unmap(), SourceService: ed.key.Source,
			DestService: ed.key.Dest, DestAddr: x.Server.Addr, Count: ed.requests,
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
