package intel

import (
	"net/netip"
	"slices"
	"strings"

	"time"

	"github.com/netintel/netintelreceiver/internal/identity"
)

// connFailures is the connection_failure detector: refused, timed-out, unreachable and reset
// connections per (edge, reason) and window. A failing connect is also a server failure for
// cascades and an attempt for retry storms. Failures a port scanner caused, and timeouts the
// pool detector explained as a full accept queue, are left out.
type connFailures struct {
	e      *Engine
	groups map[connFailKey]*connFailGroup
}

type connFailKey struct {
	edge   EdgeKey
	reason string
}

type connFailGroup struct {
	client   identity.Service
	sourceIP netip.Addr
	unnamed  bool // the destination has no name but its address: nothing known listens there
	count    uint64
}

func newConnFailures(e *Engine) *connFailures {
	return &connFailures{e: e, groups: make(map[connFailKey]*connFailGroup)}
}

func (c *connFailures) failure(client, server identity.Service, src netip.Addr, dst netip.AddrPort, reason string, t time.Time) {
	key := EdgeKey{Source: client.Name, Dest: server.Name, Protocol: "tcp", Port: dst.Port()}
	k := connFailKey{edge: key, reason: reason}
	g, ok := c.groups[k]
	if !ok {
		if len(c.groups) >= c.e.opts.MaxEdges {
			c.e.c.ConnFailureGroupsDropped++
		} else {
			g = &connFailGroup{client: client, sourceIP: src, unnamed: server.Name == dst.String()}
			c.groups[k] = g
		}
	}
	if g != nil {
		g.count++
	}
	gk := groupKey{dest: key.Dest, status: "connection_" + reason}
	c.e.errors.markFailing(key, server, gk, 0, nil, t, 1)
	c.e.retries.connectFailed(client, server, src, dst, key, t)
	if ed, ok := c.e.graph.edges.Peek(key); ok {
		ed.hotUntil = t.Add(c.e.opts.HotEdgeDuration)
	}
}

func (c *connFailures) flush(w window) []Finding {
	var out []Finding
	for k, g := range c.groups {
		if g.unnamed && c.e.security.isPortScanner(g.sourceIP, w.clock) {
			c.e.c.ConnFailuresFromScans++
			continue
		}
		if (k.reason == "timed_out" || k.reason == "other") && c.e.pool.explained(PoolAcceptQueueFull, k.edge, w.clock) {
			continue // the accept queue's story, told by connection_pool_exhaustion
		}
		out = append(out, Finding{
			Kind: KindConnectionFailure, Time: w.end, Severity: SeverityMedium, Subject: g.client,
			ConnectionFailure: &ConnectionFailure{Edge: k.edge, Reason: k.reason, Count: g.count},
		})
	}
	slices.SortFunc(out, func(a, b Finding) int {
		if c := compareEdgeKeys(a.ConnectionFailure.Edge, b.ConnectionFailure.Edge); c != 0 {
			return c
		}
		return strings.Compare(a.ConnectionFailure.Reason, b.ConnectionFailure.Reason)
	})
	clear(c.groups)
	return out
}
