package otlp

import (
	"math"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// Metric names. The HTTP, RPC and DNS ones are the semantic conventions'; the service-graph
// ones are those of the contrib servicegraph connector, so dashboards built for it work.
const (
	MetricHTTPServerDuration = "http.server.request.duration"
	MetricHTTPClientDuration = "http.client.request.duration"
	MetricRPCServerDuration  = "rpc.server.call.duration"
	MetricRPCClientDuration  = "rpc.client.call.duration"
	MetricDNSLookupDuration  = "dns.lookup.duration"

	MetricServiceGraphTotal  = "traces_service_graph_request_total"
	MetricServiceGraphFailed = "traces_service_graph_request_failed_total"
	MetricServiceGraphServer = "traces_service_graph_request_server_seconds"
	MetricServiceGraphClient = "traces_service_graph_request_client_seconds"

	MetricTCPOpened      = "netintel.tcp.connections.opened"
	MetricTCPFailed      = "netintel.tcp.connections.failed"
	MetricTCPResets      = "netintel.tcp.resets"
	MetricTCPRetransmits = "netintel.tcp.retransmits"
	MetricTCPRTT         = "netintel.tcp.rtt"
)

// Edge attribute keys of the service-graph and TCP metrics (servicegraph connector names).
const (
	attrSGClient         = "client"
	attrSGServer         = "server"
	attrSGConnectionType = "connection_type"
	attrReason           = "reason"

	connectionVirtualNode = "virtual_node"
)

// Default histogram boundaries, in seconds.
var (
	// DefaultDurationBounds are the semantic conventions' advisory boundaries for
	// http.*.request.duration (also used for RPC and DNS).
	DefaultDurationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	// DefaultServiceGraphBounds are the servicegraph connector's default latency buckets.
	DefaultServiceGraphBounds = []float64{0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 1.4, 2, 5, 10, 15}
	// DefaultRTTBounds cover loopback (tens of µs) to intercontinental round trips.
	DefaultRTTBounds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
)

// DefaultMaxSeriesPerMetric bounds each metric's series; the rest folds into overflow series.
const DefaultMaxSeriesPerMetric = 2000

// Defaults of MetricsOptions.
const (
	DefaultStaleAfter       = 5 * time.Minute
	DefaultServiceGraphHold = 2 * time.Second
	// maxOverflowServices bounds the per-service overflow series of one metric.
	maxOverflowServices = 64
	// maxHalves bounds the request identities remembered to pair a CLIENT half with the
	// SERVER half of the same request, each way.
	maxHalves = 1 << 16
)

// MetricsOptions configures the aggregator. Zero values take the defaults.
type MetricsOptions struct {
	// Start is the start timestamp of every cumulative series (the receiver's start).
	Start time.Time
	// Host is the resource of the service-graph, TCP, overflow and receiver metrics.
	Host identity.Resource
	// MaxSeriesPerMetric caps the series of each metric. Records of series beyond the cap
	// are aggregated into one series per service with otel.metric.overflow=true (their
	// service keeps its name; past maxOverflowServices services, the Host resource) and
	// counted (Overflowed).
	MaxSeriesPerMetric int
	// StaleAfter expires a series that received nothing for this long: it is emitted once
	// more flagged "no recorded value" (the OTLP staleness marker), then dropped; if it
	// comes back it starts afresh with a new start time. Default DefaultStaleAfter.
	StaleAfter time.Duration
	// ServiceGraphHold is how long a CLIENT half whose server looks remote waits for the
	// SERVER half of the same request (same ISNs and request sequence number) before it
	// counts as a request to a virtual node: under DNAT the client dialled a virtual address
	// of a server that is local after all. Default DefaultServiceGraphHold.
	ServiceGraphHold   time.Duration
	DurationBounds     []float64 // seconds; RED histograms
	ServiceGraphBounds []float64 // seconds; service-graph latency histograms
	RTTBounds          []float64 // seconds; netintel.tcp.rtt
}

// SelfSum is one of the receiver's own metrics (drops, evictions, truncations by reason), for
// the copy that goes down the data pipeline when the user asks for it. Their primary place is
// the collector's internal telemetry; the receiver builds both from one table.
type SelfSum struct {
	Name, Unit, Description string
	AttrKey                 string // attribute of the points; "" for a single unlabelled point
	Gauge                   bool   // a current value, not a monotonic total
	Points                  []NamedCount
}

// NamedCount is one labelled running total.
type NamedCount struct {
	Name  string
	Value uint64
}

// Metrics aggregates every exchange and connection event (sampled or not) into cumulative
// metrics, so RED and service-graph numbers stay exact while spans are sampled. It is safe
// for concurrent use: the pipeline feeds it while the flush timer calls Emit.
type Metrics struct {
	mu         sync.Mutex
	start      pcommon.Timestamp
	host       identity.Resource
	staleAfter time.Duration
	families   [famCount]family
	// edges resolves an edge's four service-graph series with one small lookup instead of
	// four of the full series key (the hot path: every exchange). Bounded like a family.
	edges    map[edgeKey]*edgeSeries
	maxEdges int
	// halves pairs the two halves of a request seen on this node (DNAT).
	halves halves
	// lastEmit is the start time of series created from now on: nothing was counted in
	// them before it (a series that expired and comes back restarts).
	lastEmit pcommon.Timestamp
}

type edgeKey struct{ client, server, connType string }

// edgeSeries holds an edge's famSGTotal, famSGFailed, famSGServer and famSGClient series.
type edgeSeries struct {
	key    edgeKey
	series [4]*series
}

// family ids, in emission order.
const (
	famHTTPServer = iota
	famHTTPClient
	famRPCServer
	famRPCClient
	famDNS
	famSGTotal
	famSGFailed
	famSGServer
	famSGClient
	famTCPOpened
	famTCPFailed
	famTCPResets
	famTCPRetransmits
	famTCPRTT
	famCount
)

const (
	maxStrAttrs = 6
	maxIntAttrs = 2
)

type familyDef struct {
	name, unit, desc string
	histogram        bool
	strKeys          []string
	intKeys          []string
	keepEmpty        bool // emit empty string attributes (servicegraph's connection_type)
}

var familyDefs = [famCount]familyDef{
	famHTTPServer: {name: MetricHTTPServerDuration, unit: "s", desc: "Duration of HTTP server requests.", histogram: true,
		strKeys: []string{attrHTTPMethod, attrHTTPRoute, attrURLScheme, attrProtocolVersion, attrErrorType},
		intKeys: []string{attrHTTPStatus}},
	famHTTPClient: {name: MetricHTTPClientDuration, unit: "s", desc: "Duration of HTTP client requests.", histogram: true,
		strKeys: []string{attrHTTPMethod, attrURLTemplate, attrServerAddress, attrURLScheme, attrProtocolVersion, attrErrorType},
		intKeys: []string{attrHTTPStatus, attrServerPort}},
	famRPCServer: {name: MetricRPCServerDuration, unit: "s", desc: "Measures the duration of inbound remote procedure calls.", histogram: true,
		strKeys: []string{attrRPCSystemName, attrRPCMethod, attrRPCResponseStatus, attrErrorType}},
	famRPCClient: {name: MetricRPCClientDuration, unit: "s", desc: "Measures the duration of outbound remote procedure calls.", histogram: true,
		strKeys: []string{attrRPCSystemName, attrRPCMethod, attrRPCResponseStatus, attrServerAddress, attrErrorType},
		intKeys: []string{attrServerPort}},
	famDNS: {name: MetricDNSLookupDuration, unit: "s", desc: "Measures the time taken to perform a DNS lookup.", histogram: true,
		strKeys: []string{attrDNSQuestionName, attrNIDNSQuestionType, attrNIDNSResponseCode, attrErrorType}},
	famSGTotal: {name: MetricServiceGraphTotal, unit: "{request}", desc: "Requests between two nodes of the service graph.",
		strKeys: []string{attrSGClient, attrSGServer, attrSGConnectionType}, keepEmpty: true},
	famSGFailed: {name: MetricServiceGraphFailed, unit: "{request}", desc: "Failed requests between two nodes of the service graph.",
		strKeys: []string{attrSGClient, attrSGServer, attrSGConnectionType}, keepEmpty: true},
	famSGServer: {name: MetricServiceGraphServer, unit: "s", desc: "Request duration as seen by the server.", histogram: true,
		strKeys: []string{attrSGClient, attrSGServer, attrSGConnectionType}, keepEmpty: true},
	famSGClient: {name: MetricServiceGraphClient, unit: "s", desc: "Request duration as seen by the client.", histogram: true,
		strKeys: []string{attrSGClient, attrSGServer, attrSGConnectionType}, keepEmpty: true},
	famTCPOpened: {name: MetricTCPOpened, unit: "{connection}", desc: "TCP connections established on an edge.",
		strKeys: []string{attrSGClient, attrSGServer}, intKeys: []string{attrServerPort}},
	famTCPFailed: {name: MetricTCPFailed, unit: "{connection}", desc: "TCP connects that failed on an edge, by reason.",
		strKeys: []string{attrSGClient, attrSGServer, attrReason}, intKeys: []string{attrServerPort}},
	famTCPResets: {name: MetricTCPResets, unit: "{reset}", desc: "TCP resets on an edge (each reset counted once).",
		strKeys: []string{attrSGClient, attrSGServer}, intKeys: []string{attrServerPort}},
	famTCPRetransmits: {name: MetricTCPRetransmits, unit: "{segment}", desc: "TCP segments retransmitted on an edge.",
		strKeys: []string{attrSGClient, attrSGServer}, intKeys: []string{attrServerPort}},
	famTCPRTT: {name: MetricTCPRTT, unit: "s", desc: "Smoothed TCP round-trip time readings on an edge.", histogram: true,
		strKeys: []string{attrSGClient, attrSGServer}, intKeys: []string{attrServerPort}},
}

type seriesKey struct {
	res  identity.Resource
	strs [maxStrAttrs]string
	ints [maxIntAttrs]int64
}

type series struct {
	key      seriesKey
	start    pcommon.Timestamp // when the series (re)started
	value    uint64            // sums
	count    uint64            // histograms
	sum      float64
	min, max float64
	buckets  []uint64

	dirty    bool      // updated since the last Emit
	active   time.Time // the last Emit that found it updated
	expired  bool      // dropped for staleness: holders must take a new one
	overflow bool      // an overflow series (otel.metric.overflow=true)
}

func (s *series) observe(bounds []float64, v float64) {
	s.dirty = true
	if s.count == 0 || v < s.min {
		s.min = v
	}
	if s.count == 0 || v > s.max {
		s.max = v
	}
	s.count++
	s.sum += v
	s.buckets[sort.SearchFloat64s(bounds, v)]++
}

// observeHistogram adds a histogram of samples. On the series' own bounds (the kernel counts on
// the metric bounds) each bucket is added exactly; on other bounds each bucket's samples are
// placed at their bucket's geometric middle, so counts and sums stay exact and only the bucket a
// sample lands in near a bound is approximate.
func (s *series) observeHistogram(bounds []float64, h l7.Histogram) {
	if h.Count == 0 {
		return
	}
	s.dirty = true
	exact := len(h.Bounds) == len(bounds)
	for i := 0; exact && i < len(bounds); i++ {
		if d := h.Bounds[i].Seconds() - bounds[i]; d > 1e-9 || d < -1e-9 {
			exact = false
		}
	}
	lo, hi := -1, -1
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		if lo < 0 {
			lo = i
		}
		hi = i
		if exact {
			s.buckets[i] += c
			continue
		}
		s.buckets[sort.SearchFloat64s(bounds, bucketMiddle(h.Bounds, i))] += c
	}
	if lo < 0 {
		return
	}
	low, high := bucketEdge(h.Bounds, lo, false), bucketEdge(h.Bounds, hi, true)
	if s.count == 0 || low < s.min {
		s.min = low
	}
	if s.count == 0 || high > s.max {
		s.max = high
	}
	s.count += h.Count
	s.sum += h.Sum.Seconds()
}

// bucketMiddle is a value inside bucket i of bounds: its geometric middle.
func bucketMiddle(bounds []time.Duration, i int) float64 {
	lo, hi := bucketEdge(bounds, i, false), bucketEdge(bounds, i, true)
	if lo <= 0 {
		return hi / 2
	}
	return math.Sqrt(lo * hi)
}

// bucketEdge is bucket i's lower or upper edge, in seconds; the last bucket's upper edge is taken
// a quarter above its lower one.
func bucketEdge(bounds []time.Duration, i int, upper bool) float64 {
	if !upper {
		if i == 0 {
			return 0
		}
		return bounds[i-1].Seconds()
	}
	if i < len(bounds) {
		return bounds[i].Seconds()
	}
	if len(bounds) == 0 {
		return 0
	}
	return bounds[len(bounds)-1].Seconds() * 1.25
}

func (s *series) inc(n uint64) {
	s.dirty = true
	s.value += n
}

type family struct {
	def        *familyDef
	bounds     []float64
	max        int
	index      map[seriesKey]*series
	list       []*series
	overflow   map[identity.Resource]*series // per service, at most maxOverflowServices + the host's
	overflows  []*series                     // in creation order
	overflowed uint64
}

// get returns the series of k, or its service's overflow series once the family is full.
func (f *family) get(k *seriesKey, host identity.Resource, now pcommon.Timestamp) *series {
	if s, ok := f.index[*k]; ok {
		return s
	}
	if len(f.list) >= f.max {
		f.overflowed++
		res := k.res
		if _, ok := f.overflow[res]; !ok && len(f.overflow) >= maxOverflowServices {
			res = host
		}
		s, ok := f.overflow[res]
		if !ok {
			s = f.newSeries(seriesKey{res: res}, now)
			s.overflow = true
			f.overflow[res] = s
			f.overflows = append(f.overflows, s)
		}
		return s
	}
	s := f.newSeries(*k, now)
	f.index[*k] = s
	f.list = append(f.list, s)
	return s
}

func (f *family) newSeries(k seriesKey, start pcommon.Timestamp) *series {
	s := &series{key: k, start: start}
	if f.def.histogram {
		s.buckets = make([]uint64, len(f.bounds)+1)
	}
	return s
}

// serviceResource is the resource a service's metric series are keyed by: its identity
// without the pid, so the processes of one service (workers, restarts) share their series.
func serviceResource(r identity.Resource) identity.Resource {
	r.PID = 0
	return r
}

// NewMetrics returns an empty aggregator.
func NewMetrics(opts MetricsOptions) *Metrics {
	if opts.Start.IsZero() {
		opts.Start = time.Now()
	}
	if opts.MaxSeriesPerMetric <= 0 {
		opts.MaxSeriesPerMetric = DefaultMaxSeriesPerMetric
	}
	if len(opts.DurationBounds) == 0 {
		opts.DurationBounds = DefaultDurationBounds
	}
	if len(opts.ServiceGraphBounds) == 0 {
		opts.ServiceGraphBounds = DefaultServiceGraphBounds
	}
	if len(opts.RTTBounds) == 0 {
		opts.RTTBounds = DefaultRTTBounds
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	if opts.ServiceGraphHold <= 0 {
		opts.ServiceGraphHold = DefaultServiceGraphHold
	}
	m := &Metrics{start: pcommon.NewTimestampFromTime(opts.Start), host: opts.Host, staleAfter: opts.StaleAfter,
		edges: make(map[edgeKey]*edgeSeries), maxEdges: opts.MaxSeriesPerMetric}
	m.halves.init(opts.ServiceGraphHold)
	m.lastEmit = m.start
	for i := range m.families {
		f := &m.families[i]
		f.def = &familyDefs[i]
		f.max = opts.MaxSeriesPerMetric
		f.index = make(map[seriesKey]*series)
		f.overflow = make(map[identity.Resource]*series)
		switch i {
		case famSGServer, famSGClient:
			f.bounds = opts.ServiceGraphBounds
		case famTCPRTT:
			f.bounds = opts.RTTBounds
		default:
			f.bounds = opts.DurationBounds
		}
	}
	return m
}

func (m *Metrics) observe(fam int, k *seriesKey, v float64) {
	f := &m.families[fam]
	f.get(k, m.host, m.lastEmit).observe(f.bounds, v)
}

func (m *Metrics) add(fam int, k *seriesKey, n uint64) {
	m.families[fam].get(k, m.host, m.lastEmit).inc(n)
}

// Exchange records one exchange, sampled or not, from the side it was observed on.
//
// The service graph counts each request once per node: a SERVER half always counts (with
// the server's view of failure); a CLIENT half counts only when its server is not observed
// here (then the server is a virtual node). "Observed here" is decided by the request's
// identity, not by the address the client dialled: under DNAT a client dials a virtual
// address (a ClusterIP) of a server that is local after all, and the two halves share
// (client ISN, server ISN, request sequence number). A CLIENT half whose server looks remote
// waits ServiceGraphHold for its SERVER half; if one comes, the request counts once on the
// server half's edge, with the client's latency; if not, it counts on the virtual node.
// Latency goes to _server_seconds from SERVER halves and to _client_seconds from CLIENT
// halves; an edge with one remote end takes both from the half it has, as the servicegraph
// connector does for virtual nodes.
func (m *Metrics) Exchange(x *l7.Exchange, client, server identity.Service) {
	d := x.Duration().Seconds()
	o := judge(x, x.Side)
	isServer := x.Side == l7.SideServer
	var local identity.Resource
	if isServer {
		local = resourceOf(server)
	} else {
		local = resourceOf(client)
	}
	// An outcome capture did not observe has no duration: it counts as a request in the
	// service graph, not as a latency sample.
	timed := x.Failure != l7.FailureUnknown

	fam, k := redSeries(x, isServer, o, local)

	m.mu.Lock()
	defer m.mu.Unlock()
	if fam >= 0 && timed {
		m.observe(fam, &k, d)
	}

	// Service graph.
	ek := edgeKey{client: serviceName(client), server: serviceName(server)}
	if !client.Local || !server.Local {
		ek.connType = connectionVirtualNode
	}
	id, hasID := requestID(x)
	h := half{edge: ek, seconds: d, timed: timed, failed: o.failed(), at: exchangeEnd(x)}
	if isServer {
		m.countServerHalf(h, !client.Local)
		if hasID && client.Local {
			if c, ok := m.halves.serverSeen(id, ek); ok && c.timed {
				// The CLIENT half came first and was waiting: its latency joins this edge.
				m.edgeSeries(m.edge(ek), famSGClient).observe(m.families[famSGClient].bounds, c.seconds)
			}
		}
		return
	}
	m.commitHeld(h.at)
	if server.Local {
		if timed {
			m.edgeSeries(m.edge(ek), famSGClient).observe(m.families[famSGClient].bounds, d)
		}
		return // the server half counts this request
	}
	if hasID {
		if real, ok := m.halves.clientSeen(id, h, m.countVirtual); ok {
			// The SERVER half was seen here: the request is counted on its edge.
			if timed {
				m.edgeSeries(m.edge(real), famSGClient).observe(m.families[famSGClient].bounds, d)
			}
		}
		return // held until its SERVER half comes, or counted on the virtual node at expiry
	}
	m.countVirtual(h)
}

// countServerHalf counts a request from its SERVER half (and the client's latency too when
// the client is not a local process: nobody else will).
func (m *Metrics) countServerHalf(h half, remoteClient bool) {
	es := m.edge(h.edge)
	if h.timed {
		m.edgeSeries(es, famSGServer).observe(m.families[famSGServer].bounds, h.seconds)
		if remoteClient {
			m.edgeSeries(es, famSGClient).observe(m.families[famSGClient].bounds, h.seconds)
		}
	}
	m.edgeSeries(es, famSGTotal).inc(1)
	if h.failed {
		m.edgeSeries(es, famSGFailed).inc(1)
	}
}

// countVirtual counts a request from a CLIENT half whose server is not observed here.
func (m *Metrics) countVirtual(h half) {
	es := m.edge(h.edge)
	if h.timed {
		m.edgeSeries(es, famSGClient).observe(m.families[famSGClient].bounds, h.seconds)
		m.edgeSeries(es, famSGServer).observe(m.families[famSGServer].bounds, h.seconds)
	}
	m.edgeSeries(es, famSGTotal).inc(1)
	if h.failed {
		m.edgeSeries(es, famSGFailed).inc(1)
	}
}

// commitHeld counts, on their virtual nodes, the CLIENT halves whose SERVER half did not come
// within the hold.
func (m *Metrics) commitHeld(now time.Time) {
	m.halves.expire(now, m.countVirtual)
}

func exchangeEnd(x *l7.Exchange) time.Time {
	if x.End.IsZero() {
		return x.Start
	}
	return x.End
}

// requestID is what both halves of one TCP request share (DESIGN §4).
func requestID(x *l7.Exchange) (reqID, bool) {
	if x.ClientISN == 0 && x.ServerISN == 0 {
		return reqID{}, false
	}
	return reqID{x.ClientISN, x.ServerISN, x.RequestSeq, x.StreamID}, true
}

type reqID struct{ clientISN, serverISN, seq, stream uint32 }

// half is what the service graph needs of one observed half.
type half struct {
	edge    edgeKey
	seconds float64
	timed   bool
	failed  bool
	at      time.Time
}

// halves remembers, bounded, the SERVER halves seen (their edge) and the CLIENT halves that
// wait for one, so the two halves of a request on this node count once.
type halves struct {
	hold time.Duration

	served     map[reqID]edgeKey
	servedRing []reqID
	servedNext int

	held      map[reqID]half
	heldOrder []reqID // FIFO; ids no longer held are skipped
}

func (hs *halves) init(hold time.Duration) {
	hs.hold = hold
	hs.served = make(map[reqID]edgeKey)
	hs.held = make(map[reqID]half)
}

// serverSeen records a SERVER half and returns the CLIENT half that waited for it, if any.
func (hs *halves) serverSeen(id reqID, e edgeKey) (half, bool) {
	if len(hs.servedRing) < maxHalves {
		hs.servedRing = append(hs.servedRing, id)
	} else {
		delete(hs.served, hs.servedRing[hs.servedNext])
		hs.servedRing[hs.servedNext] = id
		hs.servedNext = (hs.servedNext + 1) % maxHalves
	}
	hs.served[id] = e
	c, ok := hs.held[id]
	if ok {
		delete(hs.held, id)
	}
	return c, ok
}

// clientSeen returns the edge of the SERVER half of the same request when it was seen;
// otherwise it holds the CLIENT half (ok false). When too many wait, the oldest stops
// waiting and is counted at once.
func (hs *halves) clientSeen(id reqID, h half, count func(half)) (edgeKey, bool) {
	if e, ok := hs.served[id]; ok {
		return e, true
	}
	if len(hs.held) >= maxHalves {
		hs.expire(time.Time{}, count)
	}
	hs.held[id] = h
	hs.heldOrder = append(hs.heldOrder, id)
	return edgeKey{}, false
}

// expire hands to count the held halves that waited the hold by now (zero now: only the
// oldest one, to make room).
func (hs *halves) expire(now time.Time, count func(half)) {
	for len(hs.heldOrder) > 0 {
		id := hs.heldOrder[0]
		h, ok := hs.held[id]
		if ok && !now.IsZero() && now.Sub(h.at) < hs.hold {
			break
		}
		hs.heldOrder[0] = reqID{}
		hs.heldOrder = hs.heldOrder[1:]
		if !ok {
			continue
		}
		delete(hs.held, id)
		count(h)
		if now.IsZero() {
			return
		}
	}
	if cap(hs.heldOrder) > 2*maxHalves && len(hs.heldOrder) < cap(hs.heldOrder)/4 {
		hs.heldOrder = append([]reqID(nil), hs.heldOrder...)
	}
}

// redSeries is the RED duration series an exchange (or the exchanges of an aggregate) counts in:
// its family (-1: none) and key.
func redSeries(x *l7.Exchange, isServer bool, o outcome, local identity.Resource) (fam int, k seriesKey) {
	k.res = serviceResource(local)
	fam = -1
	switch {
	case x.GRPC != nil:
		k.strs[0] = grpcSystem
		k.strs[1] = grpcFullMethod(x.GRPC)
		if x.GRPC.Status >= 0 {
			k.strs[2] = grpcCodeName(x.GRPC)
		}
		if isServer {
			fam = famRPCServer
			k.strs[3] = o.errType
		} else {
			fam = famRPCClient
			k.strs[3] = serverAddress(x)
			k.strs[4] = o.errType
			k.ints[0] = int64(serverPort(x))
		}
	case x.HTTP != nil:
		k.strs[0] = normalizeMethod(x.HTTP.Method)
		if x.HTTP.Path != "" {
			k.strs[1] = routeOf(x.HTTP)
		}
		k.ints[0] = int64(x.HTTP.Status)
		if isServer {
			fam = famHTTPServer
			k.strs[2] = "http"
			k.strs[3] = x.HTTP.Version
			k.strs[4] = o.errType
		} else {
			fam = famHTTPClient
			k.strs[2] = serverAddress(x)
			k.strs[3] = "http"
			k.strs[4] = x.HTTP.Version
			k.strs[5] = o.errType
			k.ints[1] = int64(serverPort(x))
		}
	case x.DNS != nil:
		if !isServer { // a lookup is the client's; a local DNS server shows in the service graph
			fam = famDNS
			k.strs[0] = x.DNS.Name
			k.strs[1] = x.DNS.Type
			if x.DNS.RCode >= 0 {
				k.strs[2] = rcodeName(x.DNS)
			}
			k.strs[3] = o.errType
		}
	}

	return fam, k
}

// Aggregate records exchanges the kernel counted (healthy HTTP/1: judged in the kernel, never
// sent): the same duration series as Exchange, fed by their bucket counts, and the service graph
// by the same rule — the server's side counts a request when the client is remote or the server
// half is this node's only view, the client's side only when its server has no local process.
func (m *Metrics) Aggregate(a *l7.Aggregate, client, server identity.Service) {
	if a == nil || a.Count == 0 {
		return
	}
	isServer := a.Side == l7.SideServer
	x := &l7.Exchange{Protocol: l7.ProtocolHTTP1, Transport: capture.TransportTCP, Side: a.Side, Client: a.Client, Server: a.Server,
		HTTP: &l7.HTTP{Method: a.Method, Path: a.Route, Route: a.Route, Version: a.Version, Status: a.StatusCode, Host: a.Host}}
	o := judge(x, a.Side)
	local := resourceOf(client)
	if isServer {
		local = resourceOf(server)
	}
	fam, k := redSeries(x, isServer, o, local)
	hist := a.Explicit
	if len(hist.Counts) == 0 {
		hist = a.Latency
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if fam >= 0 {
		f := &m.families[fam]
		f.get(&k, m.host, m.lastEmit).observeHistogram(f.bounds, hist)
	}
	ek := edgeKey{client: serviceName(client), server: serviceName(server)}
	if !client.Local || !server.Local {
		ek.connType = connectionVirtualNode
	}
	if !isServer && server.Local {
		// The server half counts these requests; the client's latency joins the edge.
		m.edgeSeries(m.edge(ek), famSGClient).observeHistogram(m.families[famSGClient].bounds, a.Latency)
		return
	}
	es := m.edge(ek)
	if isServer {
		m.edgeSeries(es, famSGServer).observeHistogram(m.families[famSGServer].bounds, a.Latency)
		if !client.Local {
			m.edgeSeries(es, famSGClient).observeHistogram(m.families[famSGClient].bounds, a.Latency)
		}
	} else {
		m.edgeSeries(es, famSGClient).observeHistogram(m.families[famSGClient].bounds, a.Latency)
		m.edgeSeries(es, famSGServer).observeHistogram(m.families[famSGServer].bounds, a.Latency)
	}
	m.edgeSeries(es, famSGTotal).inc(a.Count)
	if o.failed() {
		m.edgeSeries(es, famSGFailed).inc(a.Count)
	}
}

// edge returns the cached service-graph series of an edge.
func (m *Metrics) edge(ek edgeKey) *edgeSeries {
	if es, ok := m.edges[ek]; ok {
		return es
	}
	es := &edgeSeries{key: ek}
	if len(m.edges) < m.maxEdges {
		m.edges[ek] = es
	}
	return es
}

// edgeSeries takes an edge's series of a family at its first use, so the family's cap and
// overflow apply exactly as for any other series, and an edge has no empty series.
func (m *Metrics) edgeSeries(es *edgeSeries, fam int) *series {
	s := es.series[fam-famSGTotal]
	if s == nil || s.expired {
		var k seriesKey
		k.res = m.host
		k.strs[0], k.strs[1], k.strs[2] = es.key.client, es.key.server, es.key.connType
		s = m.families[fam].get(&k, m.host, m.lastEmit)
		es.series[fam-famSGTotal] = s
	} else if s.overflow {
		m.families[fam].overflowed++ // get counted the first one
	}
	return s
}

// Conn records a TCP connection event on the edge client → server.
//
// Events both ends report are counted once: an open counts from the accepting side, or from
// the connecting side when the server has no local process; a reset counts where it was
// sent, or where it was received when the sender is not local.
func (m *Metrics) Conn(ev *capture.ConnEvent, client, server identity.Service) {
	var k seriesKey
	k.res = m.host
	k.strs[0] = serviceName(client)
	k.strs[1] = serviceName(server)
	role := ev.Socket.Role
	if role == capture.RoleServer {
		k.ints[0] = int64(ev.Socket.Local.Port())
	} else {
		k.ints[0] = int64(ev.Socket.Remote.Port())
	}
	peerLocal := false
	switch role {
	case capture.RoleClient:
		peerLocal = server.Local
	case capture.RoleServer:
		peerLocal = client.Local
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	switch ev.Kind {
	case capture.ConnOpened:
		if role != capture.RoleClient || !peerLocal {
			m.add(famTCPOpened, &k, 1)
		}
	case capture.ConnFailed:
		k.strs[2] = ev.Reason.String()
		if k.strs[2] == "" {
			k.strs[2] = capture.FailureOther.String()
		}
		m.add(famTCPFailed, &k, 1)
	case capture.ConnResetSent:
		m.add(famTCPResets, &k, 1)
	case capture.ConnResetReceived:
		if !peerLocal {
			m.add(famTCPResets, &k, 1)
		}
	case capture.ConnRetransmit:
		m.add(famTCPRetransmits, &k, 1)
	case capture.ConnRTT, capture.ConnClosed:
		if ev.SRTT > 0 {
			m.observe(famTCPRTT, &k, ev.SRTT.Seconds())
		}
	}
}

// Overflowed returns, per metric name, the measurements folded into its overflow series.
func (m *Metrics) Overflowed() []NamedCount {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []NamedCount
	for i := range m.families {
		if f := &m.families[i]; f.overflowed > 0 {
			out = append(out, NamedCount{Name: f.def.name, Value: f.overflowed})
		}
	}
	return out
}

// Emit returns every series as cumulative metrics at time now, plus the receiver's own
// metrics given in self (in the Host resource; nil for none). The aggregates are kept: the
// next Emit continues them.
func (m *Metrics) Emit(now time.Time, self []SelfSum) pmetric.Metrics {
	md := pmetric.NewMetrics()
	ts := pcommon.NewTimestampFromTime(now)
	scopes := make(map[identity.Resource]pmetric.MetricSlice)
	scopeOf := func(r identity.Resource) pmetric.MetricSlice {
		if ms, ok := scopes[r]; ok {
			return ms
		}
		rm := md.ResourceMetrics().AppendEmpty()
		putResource(rm.Resource().Attributes(), r)
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(ScopeName)
		scopes[r] = sm.Metrics()
		return sm.Metrics()
	}

	m.mu.Lock()
	m.commitHeld(now)
	expired := false
	for i := range m.families {
		f := &m.families[i]
		metricOf := make(map[identity.Resource]pmetric.Metric)
		// emit writes s, and reports whether it went stale: then this is its last point,
		// flagged "no recorded value", and it is dropped.
		emit := func(s *series) (stale bool) {
			if s.dirty || s.active.IsZero() {
				s.dirty, s.active = false, now
			} else if now.Sub(s.active) >= m.staleAfter {
				stale = true
			}
			mt, ok := metricOf[s.key.res]
			if !ok {
				mt = newMetric(scopeOf(s.key.res), f.def)
				metricOf[s.key.res] = mt
			}
			var attrs pcommon.Map
			if f.def.histogram {
				dp := mt.Histogram().DataPoints().AppendEmpty()
				dp.SetStartTimestamp(s.start)
				dp.SetTimestamp(ts)
				dp.SetCount(s.count)
				dp.SetSum(s.sum)
				if s.count > 0 {
					dp.SetMin(s.min)
					dp.SetMax(s.max)
				}
				dp.ExplicitBounds().FromRaw(f.bounds)
				dp.BucketCounts().FromRaw(s.buckets)
				if stale {
					dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
				}
				attrs = dp.Attributes()
			} else {
				dp := mt.Sum().DataPoints().AppendEmpty()
				dp.SetStartTimestamp(s.start)
				dp.SetTimestamp(ts)
				dp.SetIntValue(int64(s.value))
				if stale {
					dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
				}
				attrs = dp.Attributes()
			}
			if s.overflow {
				attrs.PutBool(attrOverflow, true)
			} else {
				putSeriesAttributes(attrs, f.def, &s.key)
			}
			return stale
		}
		live := f.list[:0]
		for _, s := range f.list {
			if emit(s) {
				s.expired, expired = true, true
				delete(f.index, s.key)
				continue
			}
			live = append(live, s)
		}
		clear(f.list[len(live):])
		f.list = live
		liveOver := f.overflows[:0]
		for _, s := range f.overflows {
			if emit(s) {
				s.expired, expired = true, true
				delete(f.overflow, s.key.res)
				continue
			}
			liveOver = append(liveOver, s)
		}
		clear(f.overflows[len(liveOver):])
		f.overflows = liveOver
	}
	if expired {
		for k, es := range m.edges {
			if es.series[0] != nil && es.series[0].expired || es.series[1] != nil && es.series[1].expired ||
				es.series[2] != nil && es.series[2].expired || es.series[3] != nil && es.series[3].expired {
				delete(m.edges, k)
			}
		}
	}
	m.lastEmit = ts
	m.mu.Unlock()

	if len(self) > 0 {
		host := scopeOf(m.host)
		for _, ss := range self {
			putSelf(host, m.start, ts, ss)
		}
	}
	return md
}

func newMetric(ms pmetric.MetricSlice, def *familyDef) pmetric.Metric {
	mt := ms.AppendEmpty()
	mt.SetName(def.name)
	mt.SetUnit(def.unit)
	mt.SetDescription(def.desc)
	if def.histogram {
		mt.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	} else {
		sum := mt.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	}
	return mt
}

func putSeriesAttributes(attrs pcommon.Map, def *familyDef, k *seriesKey) {
	attrs.EnsureCapacity(len(def.strKeys) + len(def.intKeys))
	for i, key := range def.strKeys {
		if v := k.strs[i]; v != "" || def.keepEmpty {
			attrs.PutStr(key, v)
		}
	}
	for i, key := range def.intKeys {
		if v := k.ints[i]; v != 0 {
			attrs.PutInt(key, v)
		}
	}
}

// putSelf writes one of the receiver's own metrics: a monotonic cumulative sum (or a gauge)
// with one point per named value; an empty attribute key makes a single unlabelled point.
func putSelf(ms pmetric.MetricSlice, start, ts pcommon.Timestamp, ss SelfSum) {
	if len(ss.Points) == 0 {
		return
	}
	mt := ms.AppendEmpty()
	mt.SetName(ss.Name)
	mt.SetUnit(ss.Unit)
	mt.SetDescription(ss.Description)
	var dps pmetric.NumberDataPointSlice
	if ss.Gauge {
		dps = mt.SetEmptyGauge().DataPoints()
	} else {
		sum := mt.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dps = sum.DataPoints()
	}
	for _, v := range ss.Points {
		dp := dps.AppendEmpty()
		if !ss.Gauge {
			dp.SetStartTimestamp(start)
		}
		dp.SetTimestamp(ts)
		dp.SetIntValue(int64(v.Value))
		if ss.AttrKey != "" {
			dp.Attributes().PutStr(ss.AttrKey, v.Name)
		}
	}
}
