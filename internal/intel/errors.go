package intel

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

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

// retryStormMinSpan is how long failing attempts must go on before they are a storm.
const retryStormMinSpan = time.Second

// retryKey is one client repeating one call.
type retryKey struct {
	client, dest, method, route string
}

type retryGroup struct {
	edge        EdgeKey
	client      identity.Service
	first, last time.Time
	attempts    uint64
	example     *ExchangeRef
}

func (e *Engine) recordError(x *l7.Exchange, id [16]byte, o *outcome, key EdgeKey, client, server identity.Service, t time.Time) {
	ex := exampleOf(x, id, server)
	gk := groupKey{dest: key.Dest, method: o.method, route: o.route, status: o.status}
	g, ok := e.errGroups[gk]
	if !ok {
		if len(e.errGroups) >= e.opts.MaxRoutes {
			e.c.ErrorGroupsDropped++
		} else {
			g = &errGroup{edge: key, server: server, code: o.code, example: ex}
			e.errGroups[gk] = g
		}
	}
	if g != nil {
		g.count++
	}
	if serverFailure(key.Protocol, o.code) {
		e.markFailing(key, server, gk, o.code, ex, t)
	}
	e.retry(retryKey{client: client.Name, dest: key.Dest, method: o.method, route: o.route}, key, client, ex, t)
}

func (e *Engine) markFailing(key EdgeKey, server identity.Service, gk groupKey, code int, ex *ExchangeRef, t time.Time) {
	if key.Source == key.Dest {
		return // a service calling itself is no chain
	}
	p := servicePair{key.Source, key.Dest}
	f, ok := e.failing.Get(p)
	if !ok || t.Sub(f.last) > e.opts.CascadeWindow {
		f = &failingEdge{key: key, server: server, first: t}
		e.failing.Put(p, f)
	}
	if t.After(f.last) {
		f.last = t
	}
	f.windowErrors++
	f.group, f.code, f.example = gk, code, ex
}

func (e *Engine) retry(k retryKey, key EdgeKey, client identity.Service, ex *ExchangeRef, t time.Time) {
	r, ok := e.retries[k]
	if !ok {
		if len(e.retries) >= e.opts.MaxRoutes {
			e.c.RetryGroupsDropped++
			return
		}
		r = &retryGroup{edge: key, client: client, first: t, example: ex}
		e.retries[k] = r
	}
	r.attempts++
	if t.Before(r.first) {
		r.first = t
	}
	if t.After(r.last) {
		r.last = t
	}
}

func (e *Engine) connFailure(client, server identity.Service, src netip.Addr, dst netip.AddrPort, reason string, t time.Time) {
	key := EdgeKey{Source: client.Name, Dest: server.Name, Protocol: "tcp", Port: dst.Port()}
	k := connFailKey{edge: key, reason: reason}
	g, ok := e.connFails[k]
	if !ok {
		if len(e.connFails) >= e.opts.MaxEdges {
			e.c.ConnFailureGroupsDropped++
		} else {
			g = &connFailGroup{client: client, sourceIP: src, unnamed: server.Name == dst.String()}
			e.connFails[k] = g
		}
	}
	if g != nil {
		g.count++
	}
	gk := groupKey{dest: key.Dest, status: "connection_" + reason}
	e.markFailing(key, server, gk, 0, nil, t)
	e.retry(retryKey{client: client.Name, dest: key.Dest, route: "connect:" + reason}, key, client, nil, t)
	if ed, ok := e.edges.Peek(key); ok {
		ed.hotUntil = t.Add(e.opts.HotEdgeDuration)
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
// leading to it. Edges of unconnected services, and fan-in without a chain, are no cascade.
func (e *Engine) cascades(now time.Time) []cascade {
	in := make(map[string][]*failingEdge)
	out := make(map[string]int)
	for _, f := range e.failing.All() {
		if now.Sub(f.last) > e.opts.CascadeWindow {
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
		fresh := false
		for i := 0; i < len(c.affected); i++ {
			callee := c.affected[i]
			for _, f := range in[callee] {
				c.path = append(c.path, f)
				fresh = fresh || f.windowErrors > 0
				if _, seen := depth[f.key.Source]; !seen {
					depth[f.key.Source] = depth[callee] + 1
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

// flush closes the window: one finding per cascade, per error group outside cascades, per
// connection failure group, per retry storm.
func (e *Engine) flush(now time.Time) []Finding {
	var out []Finding
	start := e.winStart
	// Cascades and scanners are judged on the events' clock, which is the wall clock when
	// capturing live and the recording's when replaying.
	clock := now
	if !e.latest.IsZero() {
		clock = e.latest
	}

	// Cascades first: the failures of their callees are reported inside the cascade finding.
	inCascade := make(map[string]bool) // callees of a cascade
	for _, c := range e.cascades(clock) {
		var rootEdge *failingEdge
		var total uint64
		path := make([]EdgeKey, 0, len(c.path))
		for _, f := range c.path {
			total += f.windowErrors
			path = append(path, f.key)
			if f.key.Dest == c.root && (rootEdge == nil || f.windowErrors > rootEdge.windowErrors) {
				rootEdge = f
			}
		}
		for _, f := range c.path {
			inCascade[f.key.Dest] = true
		}
		sev := SeverityHigh
		if len(c.affected) >= 4 {
			sev = SeverityCritical
		}
		out = append(out, Finding{
			Kind: KindErrorPattern, Time: now, Severity: sev, Subject: rootEdge.server, Example: rootEdge.example,
			ErrorPattern: &ErrorPattern{
				Edge: rootEdge.key, Method: rootEdge.group.method, Route: rootEdge.group.route,
				StatusCode: rootEdge.code, Status: rootEdge.group.status, ErrorCount: total,
				WindowStart: start, WindowEnd: now,
				IsCascade: true, RootCause: c.root, AffectedServices: c.affected, Path: path,
			},
		})
	}

	var groups []Finding
	for k, g := range e.errGroups {
		if inCascade[k.dest] && serverFailure(g.edge.Protocol, g.code) {
			continue // told by the cascade finding
		}
		groups = append(groups, Finding{
			Kind: KindErrorPattern, Time: now, Severity: errorSeverity(g.edge.Protocol, g.code, k.status),
			Subject: g.server, Example: g.example,
			ErrorPattern: &ErrorPattern{
				Edge: g.edge, Method: k.method, Route: k.route, StatusCode: g.code, Status: k.status,
				ErrorCount: g.count, WindowStart: start, WindowEnd: now,
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

	var fails []Finding
	for k, g := range e.connFails {
		if g.unnamed && e.isPortScanner(g.sourceIP, clock) {
			e.c.ConnFailuresFromScans++
			continue
		}
		fails = append(fails, Finding{
			Kind: KindConnectionFailure, Time: now, Severity: SeverityMedium, Subject: g.client,
			ConnectionFailure: &ConnectionFailure{Edge: k.edge, Reason: k.reason, Count: g.count},
		})
	}
	slices.SortFunc(fails, func(a, b Finding) int {
		if c := compareEdgeKeys(a.ConnectionFailure.Edge, b.ConnectionFailure.Edge); c != 0 {
			return c
		}
		return strings.Compare(a.ConnectionFailure.Reason, b.ConnectionFailure.Reason)
	})
	out = append(out, fails...)

	var storms []Finding
	for k, r := range e.retries {
		if r.attempts < uint64(e.opts.RetryStormMinAttempts) {
			continue
		}
		span := r.last.Sub(r.first)
		if span < retryStormMinSpan {
			// Attempts that all fail at one instant are one event (many connections closed
			// together), not a client retrying.
			continue
		}
		rate := float64(r.attempts) / span.Seconds()
		if rate < e.opts.RetryStormRate {
			continue
		}
		route := k.route
		if strings.HasPrefix(route, "connect:") {
			route = ""
		}
		storms = append(storms, Finding{
			Kind: KindRetryStorm, Time: now, Severity: SeverityHigh, Subject: r.client, Example: r.example,
			RetryStorm: &RetryStorm{Edge: r.edge, Method: k.method, Route: route, Attempts: r.attempts, Window: span, RatePerSec: rate},
		})
	}
	slices.SortFunc(storms, func(a, b Finding) int {
		if c := compareEdgeKeys(a.RetryStorm.Edge, b.RetryStorm.Edge); c != 0 {
			return c
		}
		return strings.Compare(a.RetryStorm.Route, b.RetryStorm.Route)
	})
	out = append(out, storms...)

	clear(e.errGroups)
	clear(e.connFails)
	clear(e.retries)
	var stale []servicePair
	for k, f := range e.failing.All() {
		f.windowErrors = 0
		if clock.Sub(f.last) > e.opts.CascadeWindow {
			stale = append(stale, k)
		}
	}
	for _, p := range stale {
		e.failing.Remove(p)
	}
	return out
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
