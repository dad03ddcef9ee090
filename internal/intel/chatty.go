package intel

import (
	"slices"

	"github.com/netintel/netintelreceiver/internal/identity"
)

// chattyMinRequests: a source must serve at least this many requests in a window for its
// calls per request to mean something (a single request at start-up proves nothing).
const chattyMinRequests = 5

// chattyDetector is the chatty_communication detector (the N+1 pattern): per window, the
// requests each service served and the calls it made to each dependency; a service making at
// least ChattyCallsPerRequest calls to one dependency per request it served is reported, once
// per episode.
type chattyDetector struct {
	e        *Engine
	requests map[string]uint64           // requests served, by server service
	calls    map[servicePair]*chattyPair // calls made, by (client, server)
	reported *episodes
}

type chattyPair struct {
	edge   EdgeKey // the first edge the calls were seen on
	client identity.Service
	calls  uint64
}

func newChattyDetector(e *Engine) *chattyDetector {
	return &chattyDetector{e: e, requests: make(map[string]uint64), calls: make(map[servicePair]*chattyPair),
		reported: newEpisodes(e.opts.ReportAgainAfter, e.opts.MaxEdges)}
}

// served is how many requests a service served in the current window.
func (c *chattyDetector) served(service string) uint64 { return c.requests[service] }

func (c *chattyDetector) exchange(ob *observation) { c.count(ob.key, ob.client, 1) }

func (c *chattyDetector) aggregate(b *batch) { c.count(b.key, b.client, b.a.Count) }

func (c *chattyDetector) count(key EdgeKey, client identity.Service, n uint64) {
	if key.Source == key.Dest {
		return // a service calling itself serves no one by it
	}
	if _, ok := c.requests[key.Dest]; ok || len(c.requests) < c.e.opts.MaxEdges {
		c.requests[key.Dest] += n
	} else {
		c.e.c.TrafficPairsDropped++
	}
	sp := servicePair{key.Source, key.Dest}
	p, ok := c.calls[sp]
	if !ok {
		if len(c.calls) >= c.e.opts.MaxEdges {
			c.e.c.TrafficPairsDropped++
			return
		}
		p = &chattyPair{edge: key, client: client}
		c.calls[sp] = p
	}
	p.calls += n
}

func (c *chattyDetector) flush(w window) []Finding {
	var out []Finding
	for sp, p := range c.calls {
		served := c.requests[sp.source]
		if served < chattyMinRequests {
			continue
		}
		per := float64(p.calls) / float64(served)
		if per < c.e.opts.ChattyCallsPerRequest {
			continue
		}
		if !c.reported.fresh(episodeKey(sp.source, sp.dest), w.clock) {
			continue
		}
		out = append(out, Finding{
			Kind: KindChattyCommunication, Time: w.end, Severity: SeverityMedium, Subject: p.client,
			Chatty: &ChattyCommunication{Edge: p.edge, CallsPerRequest: per, RequestCount: served, CallCount: p.calls, Window: w.length()},
		})
	}
	slices.SortFunc(out, func(a, b Finding) int { return compareEdgeKeys(a.Chatty.Edge, b.Chatty.Edge) })
	clear(c.requests)
	clear(c.calls)
	return out
}
