package intel

import (
	"github.com/netintel/netintelreceiver/internal/lru"

	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// Engine holds the dependency graph, baselines and windows, and turns exchanges and
// connection events into findings. Not safe for concurrent use: the pipeline feeds it from one
// goroutine and calls Findings about once a second from the same one.
type Engine struct {
	opts Options

	allowed              map[[2]string]bool // AllowedDependencies, with "*" entries
	uaPatterns           []string           // lower case
	endpointPatterns     []string           // lower case
	uaCache              map[string]string  // user agent → matched pattern ("" for none)
	anyAllowed, restrict bool

	dedup     dedupSet
	edges     *lru.Cache[EdgeKey, *edge]
	baselines *lru.Cache[routeKey, *baseline]

	// Windowed state, reset at each flush.
	winStart  time.Time
	errGroups map[groupKey]*errGroup
	connFails map[connFailKey]*connFailGroup
	retries   map[retryKey]*retryGroup

	failing  *lru.Cache[servicePair, *failingEdge] // edges with recent errors, for cascades
	clients  *lru.Cache[netip.Addr, *scanState]    // 404 paths per client (enumeration)
	sources  *lru.Cache[netip.Addr, *scanState]    // refused/reset ports per source (port scan)
	concerns *lru.Cache[concernKey, time.Time]     // last report per (type, source)
	scanners *lru.Cache[scannerKey, time.Time]     // clients seen scanning, when

	latest    time.Time // the latest event time seen
	immediate []Finding
	newEdges  []*edge // dependency findings waiting for the next Findings call

	c Counters
}

// Counters are the engine's cumulative totals and current table sizes.
type Counters struct {
	Exchanges      uint64 // exchanges counted (each once, whichever half came first)
	Deduplicated   uint64 // second halves of exchanges already counted
	DedupForgotten uint64 // ids forgotten before a second half came (normal for remote peers)
	ConnEvents     uint64 // connection events that fed a finding type

	Edges, Baselines, FailingEdges, Clients, ScanSources, Concerns, Scanners uint64 // current entries

	EdgesEvicted, BaselinesEvicted, FailingEdgesEvicted                  uint64
	ClientsEvicted, ScanSourcesEvicted, ConcernsEvicted, ScannersEvicted uint64

	// Groups refused because a window's table was full; their errors still count on the edge.
	ErrorGroupsDropped, ConnFailureGroupsDropped, RetryGroupsDropped uint64

	AnomaliesSuppressed   uint64 // latency anomalies inside a route's rate limit
	ConcernsSuppressed    uint64 // security concerns already reported for (type, source) this window
	ConnFailuresFromScans uint64 // connection failure groups not reported: a port scanner's, to closed ports
	ErrorsFromScanners    uint64 // errors of clients seen scanning, kept out of error patterns and baselines
	Findings              uint64 // findings returned by Findings
	FindingsDropped       uint64 // immediate findings dropped: more than MaxEdges between two Findings calls
}

// Decision is whether an exchange becomes a span, and with what sampling probability, so
// downstream counts can be corrected (OTel probability sampling).
type Decision struct {
	Export      bool
	Probability float64 // the probability applied; 1 when the span is kept unconditionally
}

// New builds an Engine; zero or invalid bounds take DefaultOptions values.
func New(opts Options) *Engine {
	opts = opts.withDefaults()
	e := &Engine{
		opts:      opts,
		uaCache:   make(map[string]string),
		dedup:     newDedupSet(opts.DedupCapacity),
		edges:     lru.New[EdgeKey, *edge](opts.MaxEdges),
		baselines: lru.New[routeKey, *baseline](opts.MaxRoutes),
		errGroups: make(map[groupKey]*errGroup),
		connFails: make(map[connFailKey]*connFailGroup),
		retries:   make(map[retryKey]*retryGroup),
		failing:   lru.New[servicePair, *failingEdge](opts.MaxEdges),
		clients:   lru.New[netip.Addr, *scanState](opts.MaxClients),
		sources:   lru.New[netip.Addr, *scanState](opts.MaxClients),
		concerns:  lru.New[concernKey, time.Time](opts.MaxClients),
		scanners:  lru.New[scannerKey, time.Time](opts.MaxClients),
	}
	for _, p := range opts.SuspiciousUserAgents {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			e.uaPatterns = append(e.uaPatterns, p)
		}
	}
	for _, p := range opts.SuspiciousEndpoints {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			e.endpointPatterns = append(e.endpointPatterns, p)
		}
	}
	if len(opts.AllowedDependencies) > 0 {
		e.restrict = true
		e.allowed = make(map[[2]string]bool, len(opts.AllowedDependencies))
		for _, d := range opts.AllowedDependencies {
			if d[0] == "*" && d[1] == "*" {
				e.anyAllowed = true
			}
			e.allowed[d] = true
		}
	}
	return e
}

// Counters reports the engine's totals and table sizes.
func (e *Engine) Counters() Counters {
	c := e.c
	c.Edges, c.EdgesEvicted = uint64(e.edges.Len()), e.edges.Evicted()
	c.Baselines, c.BaselinesEvicted = uint64(e.baselines.Len()), e.baselines.Evicted()
	c.FailingEdges, c.FailingEdgesEvicted = uint64(e.failing.Len()), e.failing.Evicted()
	c.Clients, c.ClientsEvicted = uint64(e.clients.Len()), e.clients.Evicted()
	c.ScanSources, c.ScanSourcesEvicted = uint64(e.sources.Len()), e.sources.Evicted()
	c.Concerns, c.ConcernsEvicted = uint64(e.concerns.Len()), e.concerns.Evicted()
	c.Scanners, c.ScannersEvicted = uint64(e.scanners.Len()), e.scanners.Evicted()
	c.DedupForgotten = e.dedup.forgotten
	return c
}

// outcome is what an exchange says about its call: its route and whether it failed.
type outcome struct {
	method, route string
	code          int    // HTTP status, gRPC status, DNS rcode
	status        string // set for errors
	isErr         bool
	hasResponse   bool // a latency sample
}

func (e *Engine) classify(x *l7.Exchange) outcome {
	var o outcome
	switch {
	case x.GRPC != nil:
		o.route = x.GRPC.Service + "/" + x.GRPC.Method
		o.code = x.GRPC.Status
		o.hasResponse = x.GRPC.Status >= 0
		if x.GRPC.Status > 0 {
			o.isErr = true
			o.status = x.GRPC.StatusName
			if o.status == "" {
				o.status = strconv.Itoa(x.GRPC.Status)
			}
		}
	case x.HTTP != nil:
		o.method = x.HTTP.Method
		o.route = Route(x.HTTP.Path)
		o.code = x.HTTP.Status
		o.hasResponse = x.HTTP.Status > 0
		if x.HTTP.Status >= e.opts.ErrorStatusThreshold {
			o.isErr = true
			o.status = strconv.Itoa(x.HTTP.Status)
		}
	case x.DNS != nil:
		o.method = x.DNS.Type
		o.route = strings.ToLower(x.DNS.Name)
		o.code = x.DNS.RCode
		o.hasResponse = x.DNS.RCode >= 0
		if x.DNS.RCode > 0 {
			o.isErr = true
			o.status = x.DNS.RCodeName
			if o.status == "" {
				o.status = "RCODE" + strconv.Itoa(x.DNS.RCode)
			}
		}
	}
	switch x.Failure {
	case l7.FailureNone:
	case l7.FailureAbandoned, l7.FailureUnknown:
		// The client hung up before the answer, or capture lost the answer: no latency
		// sample, and not the server's error.
		o.isErr, o.hasResponse = false, false
	default:
		o.isErr, o.hasResponse, o.code, o.status = true, false, 0, x.Failure.String()
	}
	return o
}

func exchangeTime(x *l7.Exchange) time.Time {
	if !x.End.IsZero() {
		return x.End
	}
	return x.Start
}

// exampleOf links a finding to the span of x: the server's when it is (or will be) observed
// here, as ExchangeRef documents.
func exampleOf(x *l7.Exchange, id [16]byte, server identity.Service) *ExchangeRef {
	ref := &ExchangeRef{TraceID: id}
	if x.Side == l7.SideServer || server.Local {
		ref.SpanID = x.ServerSpanID()
	} else {
		ref.SpanID = x.ClientSpanID()
	}
	return ref
}

// Exchange counts one exchange (once, even when both halves are observed) into the graph,
// error windows, baselines and security checks, and decides whether it becomes a span. Both
// halves of one exchange get the same Decision.
func (e *Engine) Exchange(x *l7.Exchange, client, server identity.Service) Decision {
	id := x.TraceID()
	if d, ok := e.dedup.take(id, x.Side); ok {
		e.c.Deduplicated++
		return d
	}
	e.c.Exchanges++
	t := exchangeTime(x)
	e.tick(t)
	o := e.classify(x)
	key := EdgeKey{Source: client.Name, Dest: server.Name, Protocol: x.Protocol.String(), Port: x.Server.Addr.Port()}

	ed := e.observeEdge(key, client, server, t)
	ed.requests++
	ed.rate.observe(t)
	forced := false
	if ed.unauthorized && e.reportUnauthorized(ed, x, id, t) {
		forced = true
		ed.hotUntil = t.Add(e.opts.HotEdgeDuration)
	}
	if e.checkSecurity(x, id, &o, key, client, server, t) {
		forced = true
		ed.hotUntil = t.Add(e.opts.HotEdgeDuration)
	}
	// A scanner's requests are its own story (told by the security concern): they must not
	// raise error patterns or retry storms, nor flood the baselines with made-up routes.
	scanning := e.isScanning(x.Client.Addr.Addr().Unmap(), client.Name, t)
	if o.isErr {
		ed.errors++
		forced = true
		if scanning {
			e.c.ErrorsFromScanners++
		} else {
			e.recordError(x, id, &o, key, client, server, t)
			ed.hotUntil = t.Add(e.opts.HotEdgeDuration)
		}
	}
	if o.hasResponse && o.route != "" {
		d := x.Duration()
		ed.latency.add(d)
		// 404 routes are whatever a client made up: unbounded, and no service's latency.
		if !scanning && o.code != httpNotFound && e.observeLatency(x, id, &o, key, server, d, t) {
			forced = true
			ed.hotUntil = t.Add(e.opts.HotEdgeDuration)
		}
	}
	p := e.opts.SpanSampling
	if t.Before(ed.hotUntil) {
		p = max(p, ed.hotProbability(t, e.opts.HotEdgeSpansPerSecond))
	}
	d := e.decide(id, forced, p)
	e.dedup.put(id, x.Side, d)
	return d
}

// Conn feeds connection failures, resets and port-scan evidence. client and server name the
// two ends (identity.Resolver.ConnEnds).
func (e *Engine) Conn(ev *capture.ConnEvent, client, server identity.Service) {
	s := ev.Socket
	switch ev.Kind {
	case capture.ConnFailed, capture.ConnResetReceived, capture.ConnResetSent:
		e.tick(ev.Time)
	}
	switch ev.Kind {
	case capture.ConnFailed:
		e.c.ConnEvents++
		reason := ev.Reason.String()
		if reason == "" {
			reason = capture.FailureOther.String()
		}
		e.connFailure(client, server, s.Local.Addr(), s.Remote, reason, ev.Time)
		if ev.Reason == capture.FailureRefused || ev.Reason == capture.FailureReset {
			e.portProbe(s.Local.Addr(), s.Remote, client, server, ev.Time)
		}
	case capture.ConnResetReceived:
		// A client whose server reset it; a server reset by its client is the client's choice.
		if s.Role == capture.RoleClient {
			e.c.ConnEvents++
			e.connFailure(client, server, s.Local.Addr(), s.Remote, capture.FailureReset.String(), ev.Time)
		}
	case capture.ConnResetSent:
		// The kernel answers a SYN to a closed port with a RST that belongs to no socket (so no
		// role): the peer is probing us. A socket resetting its own connection is not a probe.
		if s.Role == capture.RoleUnknown && s.Remote.IsValid() {
			e.c.ConnEvents++
			e.portProbe(s.Remote.Addr(), s.Local, client, server, ev.Time)
		}
	}
}

func (e *Engine) tick(t time.Time) {
	if t.After(e.latest) {
		e.latest = t
	}
}

// Findings returns the findings made since the last call: immediate ones (dependencies,
// security concerns, latency anomalies) and, when the flush window has closed, the windowed
// ones (error patterns and cascades, connection failures, retry storms).
func (e *Engine) Findings(now time.Time) []Finding {
	var out []Finding
	for _, ed := range e.newEdges {
		out = append(out, Finding{
			Kind: KindServiceDependency, Time: ed.lastSeen, Severity: SeverityInfo, Subject: ed.client,
			Dependency: &Dependency{Edge: ed.key, FirstSeen: ed.firstSeen, RequestCount: ed.requests},
		})
	}
	e.newEdges = e.newEdges[:0]
	out = append(out, e.immediate...)
	e.immediate = e.immediate[:0]

	if e.winStart.IsZero() {
		e.winStart = now
	} else if now.Sub(e.winStart) >= e.opts.FlushInterval {
		out = append(out, e.flush(now)...)
		e.winStart = now
	}
	e.c.Findings += uint64(len(out))
	return out
}

// emit queues an immediate finding for the next Findings call. The queue is bounded: a
// flood between two calls (a scanner, a million new clients) drops the excess, counted.
func (e *Engine) emit(f Finding) {
	if len(e.immediate) >= e.opts.MaxEdges {
		e.c.FindingsDropped++
		return
	}
	e.immediate = append(e.immediate, f)
}

// Edges is a snapshot of the dependency graph.
func (e *Engine) Edges() []EdgeStats {
	out := make([]EdgeStats, 0, e.edges.Len())
	for _, ed := range e.edges.All() {
		out = append(out, EdgeStats{
			Key: ed.key, Client: ed.client, Server: ed.server, FirstSeen: ed.firstSeen, LastSeen: ed.lastSeen,
			Requests: ed.requests, Errors: ed.errors, Latency: ed.latency,
		})
	}
	slices.SortFunc(out, func(a, b EdgeStats) int { return compareEdgeKeys(a.Key, b.Key) })
	return out
}

func compareEdgeKeys(a, b EdgeKey) int {
	if c := strings.Compare(a.Source, b.Source); c != 0 {
		return c
	}
	if c := strings.Compare(a.Dest, b.Dest); c != 0 {
		return c
	}
	if c := strings.Compare(a.Protocol, b.Protocol); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}
