package intel

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
	"github.com/netintel/netintelreceiver/internal/route"
)

// Engine routes exchanges, kernel-counted aggregates, connection events and byte transfers
// to one detector per finding type, collects what they find, and decides which exchanges
// become spans. Not safe for concurrent use: the pipeline feeds it from one goroutine and
// calls Findings about once a second from the same one.
type Engine struct {
	opts Options
	c    Counters

	dedup     dedupSet
	exemplars exemplars

	graph     *graph            // service_dependency, unauthorized_communication
	errors    *errorPatterns    // error_pattern and cascades
	latency   *latencyDetector  // latency_anomaly
	security  *securityDetector // security_concern from requests and port probes
	segments  *segmentation     // security_concern segmentation_violation
	connFails *connFailures     // connection_failure
	retries   *retryDetector    // retry_storm
	chatty    *chattyDetector   // chatty_communication
	pool      *poolDetector     // connection_pool_exhaustion
	exfil     *exfilDetector    // data_exfiltration

	winStart  time.Time // the current flush window
	latest    time.Time // the latest event time seen
	immediate []Finding
}

// Counters are the engine's cumulative totals and current table sizes.
type Counters struct {
	Exchanges         uint64 // exchanges counted (each once, whichever half came first)
	Deduplicated      uint64 // second halves of exchanges already counted
	DedupForgotten    uint64 // ids forgotten before a second half came (normal for remote peers)
	Aggregated        uint64 // exchanges counted from kernel aggregates
	AggregatesSkipped uint64 // client-side aggregates of local servers (the server's side counts them)
	ConnEvents        uint64 // connection events that fed a finding type
	Transfers         uint64 // byte transfers judged for exfiltration

	Edges, Baselines, FailingEdges, Clients, ScanSources, Concerns, Scanners uint64 // current entries
	ExfilDestinations, Episodes, RecentConnects                              uint64 // current entries

	EdgesEvicted, BaselinesEvicted, FailingEdgesEvicted                  uint64
	ClientsEvicted, ScanSourcesEvicted, ConcernsEvicted, ScannersEvicted uint64
	ExfilDestinationsEvicted, EpisodesEvicted, RecentConnectsEvicted     uint64

	// Groups refused because a window's table was full; their errors still count on the edge.
	ErrorGroupsDropped, ConnFailureGroupsDropped, RetryGroupsDropped uint64
	PoolGroupsDropped                                                uint64 // pool table full
	RetryCallsDropped                                                uint64 // identical calls not tracked (a group's table full)

	ErrorSpansSampled     uint64 // errors beyond their group's exemplars: sampled, not forced into spans
	AnomaliesSuppressed   uint64 // slow-request anomalies inside a route's rate limit
	ConcernsSuppressed    uint64 // security concerns already reported for (type, source) this window
	ConnFailuresFromScans uint64 // connection failure groups not reported: a port scanner's, to closed ports
	ErrorsFromScanners    uint64 // errors of clients seen scanning, kept out of error patterns and baselines
	HealthProbes          uint64 // requests of health-check agents, never a security concern
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
		dedup:     newDedupSet(opts.DedupCapacity),
		exemplars: newExemplars(opts.ErrorSpanExemplars, opts.MaxRoutes),
	}
	e.graph = newGraph(e)
	e.errors = newErrorPatterns(e)
	e.latency = newLatencyDetector(e)
	e.security = newSecurityDetector(e)
	e.segments = newSegmentation(e)
	e.connFails = newConnFailures(e)
	e.retries = newRetryDetector(e)
	e.chatty = newChattyDetector(e)
	e.pool = newPoolDetector(e)
	e.exfil = newExfilDetector(e)
	return e
}

// Counters reports the engine's totals and table sizes.
func (e *Engine) Counters() Counters {
	c := e.c
	c.Edges, c.EdgesEvicted = uint64(e.graph.edges.Len()), e.graph.edges.Evicted()
	c.Baselines, c.BaselinesEvicted = uint64(e.latency.routes.Len()), e.latency.routes.Evicted()
	c.FailingEdges, c.FailingEdgesEvicted = uint64(e.errors.failing.Len()), e.errors.failing.Evicted()
	s := e.security
	c.Clients, c.ClientsEvicted = uint64(s.clients.Len()), s.clients.Evicted()
	c.ScanSources, c.ScanSourcesEvicted = uint64(s.sources.Len()), s.sources.Evicted()
	c.Concerns, c.ConcernsEvicted = uint64(s.concerns.Len()), s.concerns.Evicted()
	c.Scanners, c.ScannersEvicted = uint64(s.scanners.Len()), s.scanners.Evicted()
	c.ExfilDestinations, c.ExfilDestinationsEvicted = uint64(e.exfil.dests.Len()), e.exfil.dests.Evicted()
	c.RecentConnects, c.RecentConnectsEvicted = uint64(e.pool.answered.Len()), e.pool.answered.Evicted()
	for _, ep := range []*episodes{e.chatty.reported, e.pool.reported, e.retries.reported, e.segments.reported} {
		c.Episodes += uint64(ep.seen.Len())
		c.EpisodesEvicted += ep.seen.Evicted()
	}
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

// observation is one exchange as the detectors see it, named and classified once.
type observation struct {
	x              *l7.Exchange
	id             [16]byte
	out            outcome
	key            EdgeKey
	client, server identity.Service
	clientIP       netip.Addr
	t              time.Time
	edge           *edge
	scanning       bool // the client was seen scanning: its errors are the scan's
}

func (ob *observation) example() *ExchangeRef { return exampleOf(ob.x, ob.id, ob.server) }

// lazyRef keeps what an example's span id is derived from, so a detector that keeps one
// candidate example per window hashes only the one it reports.
type lazyRef struct {
	id         [16]byte
	x          l7.Exchange // the identity fields only (DESIGN §4)
	serverSpan bool
}

func (ob *observation) lazyRef() lazyRef {
	x := ob.x
	return lazyRef{
		id: ob.id, serverSpan: x.Side == l7.SideServer || ob.server.Local,
		x: l7.Exchange{
			Client: l7.Endpoint{Addr: x.Client.Addr}, Server: l7.Endpoint{Addr: x.Server.Addr}, Start: x.Start,
			ClientISN: x.ClientISN, ServerISN: x.ServerISN, RequestSeq: x.RequestSeq, StreamID: x.StreamID,
		},
	}
}

func (r *lazyRef) ref() *ExchangeRef {
	ref := &ExchangeRef{TraceID: r.id}
	if r.serverSpan {
		ref.SpanID = r.x.ServerSpanID()
	} else {
		ref.SpanID = r.x.ClientSpanID()
	}
	return ref
}

func (ob *observation) group() groupKey {
	return groupKey{dest: ob.key.Dest, method: ob.out.method, route: ob.out.route, status: ob.out.status}
}

// batch is one kernel aggregate as the detectors see it.
type batch struct {
	a              *l7.Aggregate
	out            outcome
	key            EdgeKey
	client, server identity.Service
	clientIP       netip.Addr
	t              time.Time
	edge           *edge
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
		o.route = x.HTTP.Route
		if o.route == "" {
			o.route = route.Static(x.HTTP.Path)
		}
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

// Exchange counts one exchange (once, even when both halves are observed) and hands it to
// every detector, then decides whether it becomes a span. Both halves of one exchange get the
// same Decision.
func (e *Engine) Exchange(x *l7.Exchange, client, server identity.Service) Decision {
	id := x.TraceID()
	if d, ok := e.dedup.take(id, x.Side); ok {
		e.c.Deduplicated++
		return d
	}
	e.c.Exchanges++
	t := exchangeTime(x)
	e.tick(t)
	ob := &observation{x: x, id: id, out: e.classify(x), client: client, server: server, t: t,
		clientIP: x.Client.Addr.Addr().Unmap()}
	ob.key = EdgeKey{Source: client.Name, Dest: server.Name, Protocol: x.Protocol.String(), Port: x.Server.Addr.Port()}
	ob.edge = e.graph.exchange(ob)

	forced := false
	found := func(yes bool) {
		if yes {
			forced = true
			ob.edge.hotUntil = t.Add(e.opts.HotEdgeDuration)
		}
	}
	found(e.graph.unauthorized(ob))
	found(e.security.exchange(ob))
	found(e.segments.exchange(ob))
	// A scanner's requests are its own story (told by the security concern): they must not
	// raise error patterns or retry storms, nor flood the baselines with made-up routes.
	ob.scanning = e.security.isScanning(ob.clientIP, client.Name, t)
	switch {
	case ob.out.isErr:
		ob.edge.errors++
		if e.exemplars.take(ob.group()) {
			forced = true
		} else {
			e.c.ErrorSpansSampled++
		}
		if ob.scanning {
			e.c.ErrorsFromScanners++
			break
		}
		ob.edge.hotUntil = t.Add(e.opts.HotEdgeDuration)
		e.errors.exchange(ob)
		e.retries.failure(ob)
	case ob.out.hasResponse:
		e.retries.success(ob)
	}
	if ob.out.hasResponse && ob.out.route != "" {
		ob.edge.latency.add(x.Duration())
		// 404 routes are whatever a client made up: unbounded, and no service's latency.
		if !ob.scanning && ob.out.code != httpNotFound {
			found(e.latency.exchange(ob))
		}
	}
	e.pool.exchange(ob)

	p := e.opts.SpanSampling
	if t.Before(ob.edge.hotUntil) {
		p = max(p, ob.edge.hotProbability(t, e.opts.HotEdgeSpansPerSecond))
	}
	d := e.decide(id, forced, p)
	e.dedup.put(id, x.Side, d)
	return d
}

// Aggregate counts a batch of exchanges the kernel judged healthy and counted without
// sending them (l7.Aggregate) wherever single exchanges count: the graph's request counts,
// error windows when the batch's status is an error, latency baselines and windows, retry
// ratios, chatty-call ratios, connection reuse and zone flows. When both ends are on this
// node the kernel counts on both sockets: the client side's batch of a local server is
// skipped, as the server's side counts the same exchanges (the rule the service-graph
// metrics follow).
func (e *Engine) Aggregate(a *l7.Aggregate, client, server identity.Service) {
	if a == nil || a.Count == 0 {
		return
	}
	if a.Side == l7.SideClient && server.Local {
		e.c.AggregatesSkipped += a.Count
		return
	}
	e.c.Aggregated += a.Count
	t := a.End
	if t.IsZero() {
		t = a.Start
	}
	e.tick(t)
	b := &batch{a: a, client: client, server: server, t: t, clientIP: a.Client.Addr.Addr().Unmap()}
	b.out = outcome{method: a.Method, route: a.Route, code: a.StatusCode, hasResponse: a.StatusCode > 0}
	if b.out.route == "" {
		b.out.route = "/"
	}
	if a.StatusCode >= e.opts.ErrorStatusThreshold {
		b.out.isErr, b.out.status = true, strconv.Itoa(a.StatusCode)
	}
	b.key = EdgeKey{Source: client.Name, Dest: server.Name, Protocol: a.Protocol.String(), Port: a.Server.Addr.Port()}
	b.edge = e.graph.aggregate(b)
	b.edge.latency.addHistogram(&a.Latency)
	if b.out.isErr {
		b.edge.errors += a.Count
		e.errors.aggregate(b)
		e.retries.failures(b)
	} else {
		e.retries.successes(b)
		if b.out.code != httpNotFound {
			e.latency.aggregate(b)
		}
	}
	e.pool.aggregate(b)
	unauthorized := e.graph.unauthorizedBatch(b)
	if e.segments.aggregate(b) || unauthorized {
		b.edge.hotUntil = t.Add(e.opts.HotEdgeDuration)
	}
}

// Conn feeds connection events: failures (connection_failure, retries, port scans, pool
// exhaustion), resets, opens (connection reuse, zone flows), handshake retransmits (accept
// queues) and closes (bytes sent, for exfiltration). client and server name the two ends
// (identity.Resolver.ConnEnds).
func (e *Engine) Conn(ev *capture.ConnEvent, client, server identity.Service) {
	s := ev.Socket
	switch ev.Kind {
	case capture.ConnFailed:
		e.tick(ev.Time)
		e.c.ConnEvents++
		if ev.Reason == capture.FailureAddrNotAvail {
			// No local port left: the pool's story, not the destination's failure.
			e.pool.addrNotAvailable(ev, client, server)
			return
		}
		if unansweredConnect(ev) {
			e.pool.unanswered(ev, client, server)
		}
		reason := ev.Reason.String()
		if reason == "" {
			reason = capture.FailureOther.String()
		}
		e.connFails.failure(client, server, s.Local.Addr(), s.Remote, reason, ev.Time)
		if ev.Reason == capture.FailureRefused || ev.Reason == capture.FailureReset {
			e.security.portProbe(s.Local.Addr(), s.Remote, client, server, ev.Time)
		}
	case capture.ConnResetReceived:
		e.tick(ev.Time)
		// A client whose server reset it; a server reset by its client is the client's choice.
		if s.Role == capture.RoleClient {
			e.c.ConnEvents++
			e.connFails.failure(client, server, s.Local.Addr(), s.Remote, capture.FailureReset.String(), ev.Time)
		}
	case capture.ConnResetSent:
		e.tick(ev.Time)
		// The kernel answers a SYN to a closed port with a RST that belongs to no socket (so no
		// role): the peer is probing us. A socket resetting its own connection is not a probe.
		if s.Role == capture.RoleUnknown && s.Remote.IsValid() {
			e.c.ConnEvents++
			e.security.portProbe(s.Remote.Addr(), s.Local, client, server, ev.Time)
		}
	case capture.ConnOpened:
		e.tick(ev.Time)
		e.c.ConnEvents++
		e.pool.opened(ev, client, server)
		e.retries.connected(ev, client, server)
		e.segments.conn(ev, client, server)
	case capture.ConnHandshakeRetransmit:
		e.tick(ev.Time)
		e.c.ConnEvents++
		e.pool.unanswered(ev, client, server)
	case capture.ConnClosed:
		if s.Role == capture.RoleClient && ev.BytesSent > 0 {
			e.c.ConnEvents++
			e.Transfer(Transfer{Source: client, Dest: server, DestAddr: s.Remote, Bytes: ev.BytesSent, Time: ev.Time})
		}
	}
}

// unansweredConnect: a connect that timed out, or that its caller gave up on while the SYN
// was still unanswered (the socket closed in SYN_SENT with no error).
func unansweredConnect(ev *capture.ConnEvent) bool {
	return ev.Reason == capture.FailureTimedOut || (ev.Reason == capture.FailureOther && ev.Errno == 0)
}

func (e *Engine) tick(t time.Time) {
	if t.After(e.latest) {
		e.latest = t
	}
}

// clock is the events' clock: the wall clock when capturing live, the recording's when
// replaying. Windows close on the wall clock; what ages (cascades, scanners) ages on this one.
func (e *Engine) clock(now time.Time) time.Time {
	if e.latest.IsZero() {
		return now
	}
	return e.latest
}

// WindowDue says whether the next Findings call closes the window: what the kernel counted
// (aggregates) must be fed before it, so that the window holds it.
func (e *Engine) WindowDue(now time.Time) bool {
	return !e.winStart.IsZero() && e.windowOver(now)
}

// windowSlack is how early a call may close the window: the caller's ticks come late by a
// varying few microseconds to milliseconds, so the tick meant to close a window can read a
// hair less than FlushInterval after the one that opened it. Without the slack such a window
// would run one tick longer, at random (2 or 3 s windows on 1 s ticks).
const windowSlack = 100 * time.Millisecond

func (e *Engine) windowOver(now time.Time) bool {
	return now.Sub(e.winStart) >= e.opts.FlushInterval-min(windowSlack, e.opts.FlushInterval/10)
}

// Findings returns the findings made since the last call: immediate ones (dependencies,
// security concerns, slow requests, exfiltration) and, when the flush window has closed, the
// windowed ones (error patterns and cascades, latency shifts, connection failures, retry
// storms, chatty pairs, pool exhaustion).
func (e *Engine) Findings(now time.Time) []Finding {
	return e.findings(now, false)
}

// Last is Findings at shutdown: the window open now closes early, so that what it holds is
// judged (a window shorter than FlushInterval can only hold fewer samples and errors).
func (e *Engine) Last(now time.Time) []Finding {
	return e.findings(now, true)
}

func (e *Engine) findings(now time.Time, last bool) []Finding {
	out := e.graph.findings()
	out = append(out, e.immediate...)
	e.immediate = e.immediate[:0]

	if e.winStart.IsZero() {
		e.winStart = now
	} else if e.windowOver(now) || (last && now.After(e.winStart)) {
		out = append(out, e.flush(now)...)
		e.winStart = now
	}
	e.c.Findings += uint64(len(out))
	return out
}

// flush closes the window: each windowed detector reports and resets. Pool exhaustion goes
// before connection failures, which leave out what it explained.
func (e *Engine) flush(now time.Time) []Finding {
	w := window{start: e.winStart, end: now, clock: e.clock(now)}
	e.chatty.collect() // the window's requests per service, which retry storms also weigh
	var out []Finding
	out = append(out, e.errors.flush(w)...)
	out = append(out, e.latency.flush(w)...)
	out = append(out, e.pool.flush(w)...)
	out = append(out, e.connFails.flush(w)...)
	out = append(out, e.retries.flush(w)...)
	out = append(out, e.chatty.flush(w)...)
	e.exemplars.reset()
	return out
}

// window is a closing flush window.
type window struct {
	start, end time.Time
	clock      time.Time // the events' clock at the close
}

func (w window) length() time.Duration { return w.end.Sub(w.start) }

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
	out := make([]EdgeStats, 0, e.graph.edges.Len())
	for _, ed := range e.graph.edges.All() {
		out = append(out, EdgeStats{
			Key: ed.key, Client: ed.client, Server: ed.server, FirstSeen: ed.firstSeen, LastSeen: ed.lastSeen,
			Requests: ed.requests, Errors: ed.errors, Latency: ed.latency, External: ed.external,
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
