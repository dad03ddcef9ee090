package intel

import (
	"slices"
	"strings"
	"time"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/lru"
)

// errorPatterns is the error_pattern detector: errors grouped by (dest service, method,
// route, status) per window, and cascades — failing callees whose errors started no later
// than those of the failing edges that lead to them, overlapping within CascadeWindow.
type errorPatterns struct {
	e       *Engine
	groups  map[groupKey]*errGroup                // this window's
	failing *lru.Cache[servicePair, *failingEdge] // edges with recent server failures
}

// groupKey is what one error_pattern counts: DESIGN §6 groups by the failing service and what
// failed, whoever called.
type groupKey struct {
	dest, method, route, status string
}

type errGroup struct {
	edge    EdgeKey // the first edge the group was seen on
	server  identity.Service
	code    int
	count   uint64
	example *ExchangeRef
}

// servicePair is an edge of the service graph, whatever the protocol and port.
type servicePair struct{ source, dest string }

// failingEdge is an edge with recent errors; cascades are made of these.
type failingEdge struct {
	key          EdgeKey
	server       identity.Service
	first, last  time.Time // errors within the cascade window
	windowErrors uint64    // errors in the current flush window
	group        groupKey  // the most recent error's group, describes the edge in a cascade
	code         int
	example      *ExchangeRef
}

func newErrorPatterns(e *Engine) *errorPatterns {
	return &errorPatterns{e: e, groups: make(map[groupKey]*errGroup), failing: lru.New[servicePair, *failingEdge](e.opts.MaxEdges)}
}

func (p *errorPatterns) exchange(ob *observation) {
	ex := ob.example()
	p.count(ob.group(), ob.key, ob.server, ob.out.code, 1, ex)
	if serverFailure(ob.key.Protocol, ob.out.code) {
		p.markFailing(ob.key, ob.server, ob.group(), ob.out.code, ex, ob.t, 1)
	}
}

// aggregate counts a kernel batch whose status is an error (the kernel sends errors one by
// one today; a batch of them still counts exactly, without an example).
func (p *errorPatterns) aggregate(b *batch) {
	gk := groupKey{dest: b.key.Dest, method: b.out.method, route: b.out.route, status: b.out.status}
	p.count(gk, b.key, b.server, b.out.code, b.a.Count, nil)
	if serverFailure(b.key.Protocol, b.out.code) {
		p.markFailing(b.key, b.server, gk, b.out.code, nil, b.t, b.a.Count)
	}
}

func (p *errorPatterns) count(gk groupKey, key EdgeKey, server identity.Service, code int, n uint64, ex *ExchangeRef) {
	g, ok := p.groups[gk]
	if !ok {
		if len(p.groups) >= p.e.opts.MaxRoutes {
			p.e.c.ErrorGroupsDropped++
			return
		}
		g = &errGroup{edge: key, server: server, code: code, example: ex}
		p.groups[gk] = g
	}
	g.count += n
	if g.example == nil {
		g.example = ex
	}
}

func (p *errorPatterns) markFailing(key EdgeKey, server identity.Service, gk groupKey, code int, ex *ExchangeRef, t time.Time, n uint64) {
	if key.Source == key.Dest {
		return // a service calling itself is no chain
	}
	sp := servicePair{key.Source, key.Dest}
	f, ok := p.failing.Get(sp)
	if !ok || t.Sub(f.last) > p.e.opts.CascadeWindow {
		f = &failingEdge{key: key, server: server, first: t}
		p.failing.Put(sp, f)
	}
	if t.After(f.last) {
		f.last = t
	}
	if t.Before(f.first) {
		f.first = t
	}
	f.windowErrors += n
	f.group, f.code = gk, code
	if ex != nil {
		f.example = ex
	}
}

// cascade is a failing callee and every failing edge that leads to it.
type cascade struct {
	root     string
	affected []string       // root first, then callers, breadth first
	path     []*failingEdge // edges, nearest the root first
	depth    int
}

// cascades finds, among edges with errors in the last CascadeWindow, each failing callee that
// calls nothing failing (the root cause) and has a chain of at least two failing edges
// leading to it, each caller's errors starting no earlier than those of the callee it calls.
// Edges of unconnected services, callers that were failing before their callee, and fan-in
// without a chain are no cascade.
func (p *errorPatterns) cascades(clock time.Time) []cascade {
	in := make(map[string][]*failingEdge)
	out := make(map[string]int)
	for _, f := range p.failing.All() {
		if clock.Sub(f.last) > p.e.opts.CascadeWindow {
			continue
		}
		in[f.key.Dest] = append(in[f.key.Dest], f)
		out[f.key.Source]++
	}
	var sinks []string
	for dest, edges := range in {
		if out[dest] == 0 {
			sinks = append(sinks, dest)
		}
		slices.SortFunc(edges, func(a, b *failingEdge) int { return strings.Compare(a.key.Source, b.key.Source) })
	}
	slices.Sort(sinks)

	var result []cascade
	for _, root := range sinks {
		c := cascade{root: root, affected: []string{root}}
		depth := map[string]int{root: 0}
		// since[s] is when s started failing towards the part of the chain it was reached
		// through: its callers' errors must not start before it.
		since := map[string]time.Time{}
		fresh := false
		for i := 0; i < len(c.affected); i++ {
			callee := c.affected[i]
			for _, f := range in[callee] {
				if s, ok := since[callee]; ok && f.first.Before(s) {
					continue // the caller was failing before its callee: not this cascade
				}
				c.path = append(c.path, f)
				fresh = fresh || f.windowErrors > 0
				if _, seen := depth[f.key.Source]; !seen {
					depth[f.key.Source] = depth[callee] + 1
					since[f.key.Source] = f.first
					c.depth = max(c.depth, depth[f.key.Source])
					c.affected = append(c.affected, f.key.Source)
				}
			}
		}
		if c.depth >= 2 && fresh {
			result = append(result, c)
		}
	}
	return result
}

// flush closes the window: one finding per cascade, naming the endpoint at its root cause
// with that endpoint's errors and the per-edge counts beside it, then one per error group
// outside cascades.
func (p *errorPatterns) flush(w window) []Finding {
	var out []Finding
	inCascade := make(map[string]bool) // callees of a cascade: their server failures are told there
	for _, c := range p.cascades(w.clock) {
		var rootEdge *failingEdge
		hops := make([]CascadeHop, 0, len(c.path))
		for _, f := range c.path {
			hops = append(hops, CascadeHop{Edge: f.key, Errors: f.windowErrors})
			inCascade[f.key.Dest] = true
			if f.key.Dest == c.root && (rootEdge == nil || f.windowErrors > rootEdge.windowErrors) {
				rootEdge = f
			}
		}
		ep := &ErrorPattern{
			Edge: rootEdge.key, Method: rootEdge.group.method, Route: rootEdge.group.route,
			StatusCode: rootEdge.code, Status: rootEdge.group.status,
			WindowStart: w.start, WindowEnd: w.end,
			IsCascade: true, RootCause: c.root, AffectedServices: c.affected, Path: hops,
		}
		example := rootEdge.example
		if gk, g := p.busiestGroup(c.root); g != nil {
			ep.Method, ep.Route, ep.Status, ep.StatusCode, ep.ErrorCount = gk.method, gk.route, gk.status, g.code, g.count
			if g.example != nil {
				example = g.example
			}
		}
		sev := SeverityHigh
		if len(c.affected) >= 4 {
			sev = SeverityCritical
		}
		out = append(out, Finding{Kind: KindErrorPattern, Time: w.end, Severity: sev, Subject: rootEdge.server, Example: example, ErrorPattern: ep})
	}

	var groups []Finding
	for k, g := range p.groups {
		if inCascade[k.dest] && serverFailure(g.edge.Protocol, g.code) {
			continue // told by the cascade finding
		}
		groups = append(groups, Finding{
			Kind: KindErrorPattern, Time: w.end, Severity: errorSeverity(g.edge.Protocol, g.code, k.status),
			Subject: g.server, Example: g.example,
			ErrorPattern: &ErrorPattern{
				Edge: g.edge, Method: k.method, Route: k.route, StatusCode: g.code, Status: k.status,
				ErrorCount: g.count, WindowStart: w.start, WindowEnd: w.end,
			},
		})
	}
	slices.SortFunc(groups, func(a, b Finding) int {
		pa, pb := a.ErrorPattern, b.ErrorPattern
		if c := compareEdgeKeys(pa.Edge, pb.Edge); c != 0 {
			return c
		}
		if c := strings.Compare(pa.Route, pb.Route); c != 0 {
			return c
		}
		if c := strings.Compare(pa.Method, pb.Method); c != 0 {
			return c
		}
		return strings.Compare(pa.Status, pb.Status)
	})
	out = append(out, groups...)

	clear(p.groups)
	var stale []servicePair
	for k, f := range p.failing.All() {
		f.windowErrors = 0
		if w.clock.Sub(f.last) > p.e.opts.CascadeWindow {
			stale = append(stale, k)
		}
	}
	for _, sp := range stale {
		p.failing.Remove(sp)
	}
	return out
}

// busiestGroup is the server-failure group of dest with the most errors this window (the
// endpoint a cascade names), ties broken by key so the choice is deterministic.
func (p *errorPatterns) busiestGroup(dest string) (groupKey, *errGroup) {
	var bestKey groupKey
	var best *errGroup
	for k, g := range p.groups {
		if k.dest != dest || !serverFailure(g.edge.Protocol, g.code) {
			continue
		}
		if best == nil || g.count > best.count || (g.count == best.count && compareGroupKeys(k, bestKey) < 0) {
			bestKey, best = k, g
		}
	}
	return bestKey, best
}

func compareGroupKeys(a, b groupKey) int {
	if c := strings.Compare(a.route, b.route); c != 0 {
		return c
	}
	if c := strings.Compare(a.method, b.method); c != 0 {
		return c
	}
	return strings.Compare(a.status, b.status)
}

// Status codes that say the server failed, not that the client asked for something wrong.
const (
	httpRequestTimeout  = 408
	httpTooManyRequests = 429
	httpServerError     = 500

	grpcUnknown           = 2
	grpcDeadlineExceeded  = 4
	grpcResourceExhausted = 8
	grpcAborted           = 10
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcDataLoss          = 15

	dnsServFail = 2
	dnsRefused  = 5
)

// serverFailure reports whether an error is evidence that the callee is failing, which is
// what a cascade is made of. A 404, an NXDOMAIN (Kubernetes search domains make many) or an
// invalid argument are errors of the caller's request: reported as error patterns, but they
// do not make every error upstream of them a cascade.
func serverFailure(protocol string, code int) bool {
	if code == 0 {
		return true // reset, timeout, refused
	}
	switch protocol {
	case "http":
		return code >= httpServerError || code == httpRequestTimeout || code == httpTooManyRequests
	case "grpc":
		switch code {
		case grpcUnknown, grpcDeadlineExceeded, grpcResourceExhausted, grpcAborted, grpcInternal, grpcUnavailable, grpcDataLoss:
			return true
		}
		return false
	case "dns":
		return code == dnsServFail || code == dnsRefused
	}
	return true
}

// errorSeverity: server-side failures matter more than a client asking for what is not there.
func errorSeverity(protocol string, code int, status string) Severity {
	switch {
	case code == 0: // reset, timeout, refused
		return SeverityHigh
	case protocol == "http" && code < 500:
		return SeverityLow
	case protocol == "dns" && status == "NXDOMAIN":
		return SeverityLow
	}
	return SeverityMedium
}
