package intel

import (
	"hash/maphash"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// The retry_storm detector tells retries from an error rate. One client (service and
// address) on one route is a storm in a window when all of these hold:
//   - its failed attempts are at least RetryStormMinAttempts, spread over at least
//     retryStormMinSpan, at RetryStormRate a second or more;
//   - most of its attempts fail (retryMinFailureRatio): a 1% error rate is no storm;
//   - failed calls are repeated: the same call (same path and query, same DNS question, same
//     destination for a connect) comes again within RetryGap of its failure, so that a logical
//     call takes retryMinAttemptsPerCall attempts or more on average; a caller that serves
//     requests must also make that many calls per request it serves, so a proxy passing on
//     its callers' failures one for one is no storm.
const (
	retryStormMinSpan       = time.Second
	retryMinFailureRatio    = 0.5
	retryMinAttemptsPerCall = 2.0
	// maxRetryCalls bounds the distinct calls followed per client and route at once; a call
	// whose last failure is more than RetryGap old can no longer be retried and makes room.
	// Beyond it each failure counts as a call of its own (which can only hide a storm).
	maxRetryCalls = 1024
)

// connectRoute is the route of connection attempts in the retry tables.
const connectRoute = "connect"

type retryDetector struct {
	e        *Engine
	groups   map[retryKey]*retryGroup
	reported *episodes
}

// retryKey is one client repeating calls on one route.
type retryKey struct {
	client              string
	ip                  netip.Addr
	dest, method, route string
}

type retryGroup struct {
	edge                EdgeKey
	client              identity.Service
	first, last         time.Time
	failures, successes uint64
	calls, attempts     uint64               // logical calls that failed, and their attempts (of the failures sent whole)
	counted             uint64               // failures the kernel counted in batches (among failures)
	open                map[uint64]time.Time // a call's last failure while it has not succeeded
	swept               time.Time            // when open was last cleared of calls past RetryGap
	example             *ExchangeRef
}

var callSeed = maphash.MakeSeed()

func newRetryDetector(e *Engine) *retryDetector {
	return &retryDetector{e: e, groups: make(map[retryKey]*retryGroup), reported: newEpisodes(e.opts.ReportAgainAfter, e.opts.MaxRoutes)}
}

// callOf identifies the logical call of an exchange: what a client repeats when it retries.
func callOf(x *l7.Exchange) uint64 {
	switch {
	case x.GRPC != nil:
		return maphash.String(callSeed, x.GRPC.Service+"/"+x.GRPC.Method)
	case x.HTTP != nil:
		return maphash.String(callSeed, x.HTTP.Method+" "+x.HTTP.Path+"?"+x.HTTP.Query)
	case x.DNS != nil:
		return maphash.String(callSeed, x.DNS.Type+" "+strings.ToLower(x.DNS.Name))
	}
	return 0
}

func (r *retryDetector) key(client identity.Service, ip netip.Addr, dest, method, route string) retryKey {
	return retryKey{client: client.Name, ip: ip, dest: dest, method: method, route: route}
}

func (r *retryDetector) failure(ob *observation) {
	k := r.key(ob.client, ob.clientIP, ob.key.Dest, ob.out.method, ob.out.route)
	r.failed(k, ob.key, ob.client, callOf(ob.x), ob.example(), ob.t)
}

func (r *retryDetector) success(ob *observation) {
	if len(r.groups) == 0 {
		return
	}
	g, ok := r.groups[r.key(ob.client, ob.clientIP, ob.key.Dest, ob.out.method, ob.out.route)]
	if !ok {
		return
	}
	g.successes++
	call := callOf(ob.x)
	if last, open := g.open[call]; open {
		// The attempt that succeeded belongs to the failed call it repeats.
		if ob.t.Sub(last) <= r.e.opts.RetryGap {
			g.attempts++
		}
		delete(g.open, call)
	}
}

// successes counts a kernel batch of healthy exchanges towards the failure ratio of the
// client's route (the batch cannot say which calls they were).
func (r *retryDetector) successes(b *batch) {
	if len(r.groups) == 0 {
		return
	}
	if g, ok := r.groups[r.key(b.client, b.clientIP, b.key.Dest, b.out.method, b.out.route)]; ok {
		g.successes += b.a.Count
	}
}

// failures counts a kernel batch of errors towards the rate and failure ratio of the client's
// route. The kernel sends a key's first errors of each drain whole and counts the rest: the
// whole ones made the group and tell how often a call is repeated (attempts per call); the
// counted ones are failed attempts of the same pattern.
func (r *retryDetector) failures(b *batch) {
	if len(r.groups) == 0 {
		return
	}
	if g, ok := r.groups[r.key(b.client, b.clientIP, b.key.Dest, b.out.method, b.out.route)]; ok {
		g.failures += b.a.Count
		g.counted += b.a.Count
		if b.t.After(g.last) {
			g.last = b.t
		}
	}
}

// connectFailed counts a failed connect as an attempt to the destination.
func (r *retryDetector) connectFailed(client, server identity.Service, src netip.Addr, dst netip.AddrPort, key EdgeKey, t time.Time) {
	k := r.key(client, src.Unmap(), key.Dest, "", connectRoute)
	r.failed(k, key, client, uint64(dst.Port())<<32|uint64(addrHash(dst.Addr())), nil, t)
}

// connected counts a completed connect of a local client as a success of its connects.
func (r *retryDetector) connected(ev *capture.ConnEvent, client, server identity.Service) {
	if len(r.groups) == 0 || ev.Socket.Role != capture.RoleClient {
		return
	}
	k := r.key(client, ev.Socket.Local.Addr().Unmap(), server.Name, "", connectRoute)
	if g, ok := r.groups[k]; ok {
		g.successes++
		dst := ev.Socket.Remote
		delete(g.open, uint64(dst.Port())<<32|uint64(addrHash(dst.Addr())))
	}
}

func addrHash(a netip.Addr) uint32 {
	b := a.Unmap().As16()
	var h uint32 = 2166136261
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

func (r *retryDetector) failed(k retryKey, edge EdgeKey, client identity.Service, call uint64, ex *ExchangeRef, t time.Time) {
	g, ok := r.groups[k]
	if !ok {
		if len(r.groups) >= r.e.opts.MaxRoutes {
			r.e.c.RetryGroupsDropped++
			return
		}
		g = &retryGroup{edge: edge, client: client, first: t, last: t, example: ex, open: make(map[uint64]time.Time)}
		r.groups[k] = g
	}
	g.failures++
	g.attempts++
	if t.Before(g.first) {
		g.first = t
	}
	if t.After(g.last) {
		g.last = t
	}
	if g.example == nil {
		g.example = ex
	}
	if last, open := g.open[call]; open && t.Sub(last) <= r.e.opts.RetryGap && !t.Before(last) {
		g.open[call] = t // another attempt of the same failing call
		return
	}
	g.calls++
	if len(g.open) >= maxRetryCalls {
		g.sweep(t, r.e.opts.RetryGap)
	}
	if len(g.open) < maxRetryCalls {
		g.open[call] = t
	} else {
		r.e.c.RetryCallsDropped++
	}
}

// sweep forgets the calls whose last failure is more than gap before t: a later attempt of
// one would be a new call anyway. A full table is swept at most once per quarter gap, so
// failures of more distinct calls than it holds within one gap do not sweep it each time.
func (g *retryGroup) sweep(t time.Time, gap time.Duration) {
	if !g.swept.IsZero() && t.Sub(g.swept) < gap/4 {
		return
	}
	g.swept = t
	for call, last := range g.open {
		if t.Sub(last) > gap {
			delete(g.open, call)
		}
	}
}

func (r *retryDetector) flush(w window) []Finding {
	var out []Finding
	for k, g := range r.groups {
		if g.failures < uint64(r.e.opts.RetryStormMinAttempts) {
			continue
		}
		span := g.last.Sub(g.first)
		if span < retryStormMinSpan {
			// Attempts that all fail at one instant are one event (many connections closed
			// together), not a client retrying.
			continue
		}
		rate := float64(g.failures) / span.Seconds()
		ratio := float64(g.failures) / float64(g.failures+g.successes)
		perCall := float64(g.attempts) / float64(max(g.calls, 1)) // of the failures sent whole
		if rate < r.e.opts.RetryStormRate || ratio < retryMinFailureRatio || perCall < retryMinAttemptsPerCall {
			continue
		}
		if served := r.e.chatty.served(k.client); served > 0 {
			// A service that serves requests: its attempts per request it served.
			if float64(g.failures+g.successes)/float64(served) < retryMinAttemptsPerCall {
				continue
			}
		}
		if !r.reported.fresh(episodeKey(k.client, k.ip.String(), k.dest, k.method, k.route), w.clock) {
			continue
		}
		// The counted failures are calls at the rate the whole ones repeat them.
		calls := g.calls + uint64(math.Round(float64(g.counted)/perCall))
		route := k.route
		if route == connectRoute {
			route = ""
		}
		out = append(out, Finding{
			Kind: KindRetryStorm, Time: w.end, Severity: SeverityHigh, Subject: g.client, Example: g.example,
			RetryStorm: &RetryStorm{
				Edge: g.edge, Method: k.method, Route: route, Attempts: g.failures, Calls: calls,
				AttemptsPerCall: perCall, FailureRatio: ratio, Window: span, RatePerSec: rate,
			},
		})
	}
	slices.SortFunc(out, func(a, b Finding) int {
		if c := compareEdgeKeys(a.RetryStorm.Edge, b.RetryStorm.Edge); c != 0 {
			return c
		}
		return strings.Compare(a.RetryStorm.Route, b.RetryStorm.Route)
	})
	clear(r.groups)
	return out
}
