package intel

import (
	"slices"

	"github.com/netintel/netintelreceiver/internal/identity"
)

// chattyMinRequests: a source must serve at least this many requests in a window for its
// calls per request to mean something (a single request at start-up proves nothing).
const chattyMinRequests = 5

// chattyDetector is the chatty_communication detector (the N+1 pattern): per window, the
// requests each service served and the calls it made to each dependency, summed from the
// edges' window counters at the close (nothing per exchange beyond the edge's counter); a
// service making at least ChattyCallsPerRequest calls to one dependency per request it
// served is reported, once per episode.
type chattyDetector struct {
	e        *Engine
	requests map[string]uint64           // requests served, by server service
	calls    map[servicePair]*chattyPair // calls made, by (client, server)
	reported *episodes
}

type chattyPair struct {
	edge   EdgeKey // the busiest edge of the pair
	busy   uint64  // its calls
	client identity.Service
	calls  uint64
}

func newChattyDetector(e *Engine) *chattyDetector {
	return &chattyDetector{e: e, requests: make(map[string]uint64), calls: make(map[servicePair]*chattyPair),
		reported: newEpisodes(e.opts.ReportAgainAfter, e.opts.MaxEdges)}
}

// served is how many requests a service served in the window being closed (after collect).
func (c *chattyDetector) served(service string) uint64 { return c.requests[service] }

// collect sums the window's traffic from the edges and resets their counters.
func (c *chattyDetector) collect() {
	clear(c.requests)
	clear(c.calls)
	for _, ed := range c.e.graph.edges.All() {
		n := ed.window
		if n == 0 {
			continue
		}
		ed.window = 0
		k := ed.key
		if k.Source == k.Dest {
			continue // a service calling itself serves no one by it
		}
		c.requests[k.Dest] += n
		sp := servicePair{k.Source, k.Dest}
		p, ok := c.calls[sp]
		if !ok {
			p = &chattyPair{client: ed.client}
			c.calls[sp] = p
		}
		p.calls += n
		if n > p.busy || (n == p.busy && compareEdgeKeys(k, p.edge) < 0) {
			p.edge, p.busy = k, n
		}
	}
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
