package receiver

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/intel"
	"github.com/netintel/netintelreceiver/internal/l7"
	"github.com/netintel/netintelreceiver/internal/otlp"
	"github.com/netintel/netintelreceiver/internal/route"
)

// The receiver's own telemetry: every drop, eviction and truncation of every stage, kernel
// and user space, as instruments of the collector's MeterProvider (TelemetrySettings), so
// they reach the collector's own metrics endpoint (:8888) whatever the pipelines are. A copy
// can also go down the user's metrics pipeline (Settings.PipelineSelfMetrics).
//
// Each instrument has a `reason` attribute; selfCounts says which running total of which
// stage each (instrument, reason) pair reads. Counting something new — a kernel counter in
// capture.Counters, say — is one line there.

// Instruments.
const (
	MetricDropped     = "netintel.receiver.dropped"
	MetricEvicted     = "netintel.receiver.evicted"
	MetricTruncated   = "netintel.receiver.truncated"
	MetricUnanswered  = "netintel.receiver.unanswered"
	MetricIgnored     = "netintel.receiver.ignored"
	MetricEventsRead  = "netintel.receiver.events_read"
	MetricRingbuf     = "netintel.receiver.ringbuf_bytes"
	MetricExchanges   = "netintel.receiver.exchanges"
	MetricOverflow    = "netintel.receiver.metric_overflow"
	MetricStateBytes  = "netintel.receiver.l7.state_bytes"
	MetricConnections = "netintel.receiver.l7.connections"
	MetricKernel      = "netintel.receiver.kernel"
	// The capability gauge (netintel.receiver.capability{name,state}) is registered beside
	// these, from the source's capability report (capabilities.go).
)

// attrReason is the attribute that tells the reasons of one instrument apart.
const attrReason = "reason"

type selfInstrument struct {
	unit, desc string
	gauge      bool
	attr       string // attribute key of the points ("" for one unlabelled point)
}

var selfInstruments = map[string]selfInstrument{
	MetricDropped:     {unit: "{item}", desc: "Events, records, requests or batches lost, by reason.", attr: attrReason},
	MetricEvicted:     {unit: "{entry}", desc: "Entries evicted from bounded tables, by table.", attr: attrReason},
	MetricTruncated:   {unit: "{item}", desc: "Payloads and headers seen only in part, by reason.", attr: attrReason},
	MetricUnanswered:  {unit: "{request}", desc: "Requests closed without an observed response, by reason.", attr: attrReason},
	MetricIgnored:     {unit: "{item}", desc: "Connections and reads/writes deliberately not parsed, by reason.", attr: attrReason},
	MetricEventsRead:  {unit: "{event}", desc: "Events decoded from the kernel."},
	MetricRingbuf:     {unit: "By", desc: "Ring-buffer space taken by the kernel's records (headers included)."},
	MetricExchanges:   {unit: "{exchange}", desc: "Exchanges (a request with its response or failure) produced."},
	MetricOverflow:    {unit: "{measurement}", desc: "Measurements folded into a metric's overflow series (otel.metric.overflow=true), by metric.", attr: "metric"},
	MetricStateBytes:  {unit: "By", desc: "Estimated memory held by protocol parser state (bounded by l7.max_state_bytes).", gauge: true},
	MetricConnections: {unit: "{connection}", desc: "Sockets with protocol parser state.", gauge: true},
	MetricKernel:      {unit: "{item}", desc: "What the kernel did with traffic: exchanges counted in place or sent, work handed to user space, by reason.", attr: attrReason},
}

// selfSnapshot is every stage's running totals at one moment, published by the pipeline.
type selfSnapshot struct {
	capture  capture.Counters
	l7       l7.Counters
	intel    intel.Counters
	identity identity.Counters
	routes   route.Counters
	steering steeringCounters
	output   outputCounters
	overflow []otlp.NamedCount // per metric name
}

type outputCounters struct {
	logs, spans, metrics, refused uint64
}

type selfCount struct {
	metric, reason string
	value          func(*selfSnapshot) uint64
}

func parseFailures(p l7.Protocol) func(*selfSnapshot) uint64 {
	return func(s *selfSnapshot) uint64 { return s.l7.ParseFailure(p) }
}

// selfCounts: one line per (instrument, reason). documentation.md lists them.
var selfCounts = append([]selfCount{
	// The ring-buffer reader (capture.Counters); the kernel's own counters follow the table
	// (kernelCounts).
	{MetricDropped, "decode_error", func(s *selfSnapshot) uint64 { return s.capture.ReadErrors }},
	{MetricDropped, "capture_queue_full", func(s *selfSnapshot) uint64 { return s.capture.QueueDropped }},
	{MetricEventsRead, "", func(s *selfSnapshot) uint64 { return s.capture.EventsRead }},
	{MetricEvicted, "fds_of_exited_processes", func(s *selfSnapshot) uint64 { return s.capture.ExitedFDs }},
	{MetricDropped, "fd_table_full_at_start", func(s *selfSnapshot) uint64 { return s.capture.SeedFDTableFull }},
	{MetricDropped, "program_runs_missed", func(s *selfSnapshot) uint64 { return s.capture.ProgramRunsMissed }},

	// Protocol parsing and pairing (l7.Counters).
	{MetricDropped, "sequence_gap", func(s *selfSnapshot) uint64 { return s.l7.SequenceGaps }},
	{MetricDropped, "resync", func(s *selfSnapshot) uint64 { return s.l7.Resyncs }},
	{MetricDropped, "unmatched_response", func(s *selfSnapshot) uint64 { return s.l7.UnmatchedResponses }},
	{MetricDropped, "l7_pending_full", func(s *selfSnapshot) uint64 { return s.l7.PendingDropped }},
	{MetricDropped, "parse_failure_http1", parseFailures(l7.ProtocolHTTP1)},
	{MetricDropped, "parse_failure_http2", parseFailures(l7.ProtocolHTTP2)},
	{MetricDropped, "parse_failure_grpc", parseFailures(l7.ProtocolGRPC)},
	{MetricDropped, "parse_failure_dns", parseFailures(l7.ProtocolDNS)},
	{MetricDropped, "parse_failure_tls", parseFailures(l7.ProtocolTLS)},
	{MetricEvicted, "l7_connections", func(s *selfSnapshot) uint64 { return s.l7.Evictions }},
	{MetricEvicted, "l7_idle_connections", func(s *selfSnapshot) uint64 { return s.l7.IdleEvictions }},
	{MetricEvicted, "l7_memory_budget", func(s *selfSnapshot) uint64 { return s.l7.MemoryShed }},
	{MetricTruncated, "partial_headers", func(s *selfSnapshot) uint64 { return s.l7.PartialHeaders }},
	{MetricTruncated, "hpack_unknown_index", func(s *selfSnapshot) uint64 { return s.l7.HPACKUnknownIndex }},
	{MetricUnanswered, "timeout", func(s *selfSnapshot) uint64 { return s.l7.Timeouts }},
	{MetricUnanswered, "capture_gap", func(s *selfSnapshot) uint64 { return s.l7.GapClosed }},
	{MetricUnanswered, "released", func(s *selfSnapshot) uint64 { return s.l7.Released }},
	{MetricIgnored, "l7_unclassified", func(s *selfSnapshot) uint64 { return s.l7.Unclassified }},
	{MetricIgnored, "duplicate_bytes", func(s *selfSnapshot) uint64 { return s.l7.Overlaps }},
	{MetricExchanges, "", func(s *selfSnapshot) uint64 { return s.l7.Exchanges }},

	// Findings (intel.Counters).
	{MetricDropped, "findings_overflow", func(s *selfSnapshot) uint64 { return s.intel.FindingsDropped }},
	{MetricDropped, "error_groups_full", func(s *selfSnapshot) uint64 { return s.intel.ErrorGroupsDropped }},
	{MetricDropped, "connection_failure_groups_full", func(s *selfSnapshot) uint64 { return s.intel.ConnFailureGroupsDropped }},
	{MetricDropped, "retry_groups_full", func(s *selfSnapshot) uint64 { return s.intel.RetryGroupsDropped }},
	{MetricEvicted, "edges", func(s *selfSnapshot) uint64 { return s.intel.EdgesEvicted }},
	{MetricEvicted, "baselines", func(s *selfSnapshot) uint64 { return s.intel.BaselinesEvicted }},
	{MetricEvicted, "failing_edges", func(s *selfSnapshot) uint64 { return s.intel.FailingEdgesEvicted }},
	{MetricEvicted, "clients", func(s *selfSnapshot) uint64 { return s.intel.ClientsEvicted }},
	{MetricEvicted, "scan_sources", func(s *selfSnapshot) uint64 { return s.intel.ScanSourcesEvicted }},
	{MetricEvicted, "concerns", func(s *selfSnapshot) uint64 { return s.intel.ConcernsEvicted }},
	{MetricEvicted, "scanners", func(s *selfSnapshot) uint64 { return s.intel.ScannersEvicted }},
	{MetricEvicted, "exfiltration_destinations", func(s *selfSnapshot) uint64 { return s.intel.ExfilDestinationsEvicted }},
	{MetricEvicted, "recent_connects", func(s *selfSnapshot) uint64 { return s.intel.RecentConnectsEvicted }},
	{MetricEvicted, "episodes", func(s *selfSnapshot) uint64 { return s.intel.EpisodesEvicted }},
	{MetricDropped, "retry_calls_full", func(s *selfSnapshot) uint64 { return s.intel.RetryCallsDropped }},
	{MetricDropped, "pool_groups_full", func(s *selfSnapshot) uint64 { return s.intel.PoolGroupsDropped }},
	{MetricEvicted, "routes", func(s *selfSnapshot) uint64 { return s.routes.Evicted }},

	// The kernel's aggregates named in user space (receiver/steering.go).
	{MetricTruncated, "kernel_route_unknown", func(s *selfSnapshot) uint64 { return s.steering.unknown }},
	{MetricDropped, "steering_table_full", func(s *selfSnapshot) uint64 { return s.steering.full }},

	// Names (identity.Counters).
	{MetricEvicted, "processes", func(s *selfSnapshot) uint64 { return s.identity.ProcessesEvicted }},
	{MetricEvicted, "listeners", func(s *selfSnapshot) uint64 { return s.identity.ListenersEvicted }},
	{MetricEvicted, "sockets", func(s *selfSnapshot) uint64 { return s.identity.SocketsEvicted }},
	{MetricEvicted, "dns_names", func(s *selfSnapshot) uint64 { return s.identity.DNSNamesEvicted }},
	{MetricEvicted, "sni_names", func(s *selfSnapshot) uint64 { return s.identity.SNINamesEvicted }},
	{MetricEvicted, "cgroups", func(s *selfSnapshot) uint64 { return s.identity.CgroupsEvicted }},
	{MetricEvicted, "containers", func(s *selfSnapshot) uint64 { return s.identity.ContainersEvicted }},
	{MetricEvicted, "hosts", func(s *selfSnapshot) uint64 { return s.identity.HostsEvicted }},
	{MetricEvicted, "virtual_addresses", func(s *selfSnapshot) uint64 { return s.identity.VirtualsEvicted }},
	{MetricEvicted, "closed_sockets_before_drain", func(s *selfSnapshot) uint64 { return s.identity.SettledEarly }},
	// Names that could not be found: the process is named by less (its comm, unit or executable).
	{MetricTruncated, "naming_process_gone", func(s *selfSnapshot) uint64 { return s.identity.ProcessesGone }},
	{MetricTruncated, "naming_cgroup_miss", func(s *selfSnapshot) uint64 { return s.identity.CgroupMisses }},
	{MetricTruncated, "naming_container_miss", func(s *selfSnapshot) uint64 { return s.identity.ContainerMisses }},

	// The hand-off to the consumers (receiver/output.go).
	{MetricDropped, "export_queue_logs", func(s *selfSnapshot) uint64 { return s.output.logs }},
	{MetricDropped, "export_queue_traces", func(s *selfSnapshot) uint64 { return s.output.spans }},
	{MetricDropped, "export_queue_metrics", func(s *selfSnapshot) uint64 { return s.output.metrics }},
	{MetricDropped, "consumer_refused", func(s *selfSnapshot) uint64 { return s.output.refused }},
}, kernelCounts()...)

// kernelCounts: every kernel counter (capture.KernelCounters), under the instrument of its kind:
// dropped, truncated, or what the kernel did (counted, sent, handed to user space). The ring
// buffer's bytes have their own instrument, and unclassified connections are ignored traffic.
func kernelCounts() []selfCount {
	var out []selfCount
	for i, kc := range capture.KernelCounters {
		metric, reason := MetricKernel, kc.Name
		switch {
		case kc.Name == "ringbuf_bytes":
			metric, reason = MetricRingbuf, ""
		case kc.Name == "unclassified":
			metric, reason = MetricIgnored, "kernel_unclassified"
		case kc.Kind == "dropped":
			metric = MetricDropped
		case kc.Kind == "truncated":
			metric = MetricTruncated
		}
		out = append(out, selfCount{metric, reason, func(s *selfSnapshot) uint64 { return s.capture.Kernel[i] }})
	}
	return out
}

// selfGauge is a current value, not a total (not carried across runs). A gauge with several
// points (the capability gauge: one per {name, state}) returns them all from points.
type selfGauge struct {
	metric string
	points func(*selfSnapshot) []gaugePoint
}

type gaugePoint struct {
	attrs attribute.Set
	value int64
}

func single(v func(*selfSnapshot) int64) func(*selfSnapshot) []gaugePoint {
	return func(s *selfSnapshot) []gaugePoint { return []gaugePoint{{attrs: *attribute.EmptySet(), value: v(s)}} }
}

var selfGauges = []selfGauge{
	{MetricStateBytes, single(func(s *selfSnapshot) int64 { return s.l7.StateBytes })},
	{MetricConnections, single(func(s *selfSnapshot) int64 { return int64(s.l7.Connections) })},
}

// telemetry publishes the snapshots of a session's runs to the collector's MeterProvider.
// Totals continue across runs of the session (a pipeline restart does not reset them).
type telemetry struct {
	meter metric.Meter

	latest atomic.Pointer[selfSnapshot] // the running run's last snapshot; nil between runs

	mu       sync.Mutex
	base     map[string]uint64 // totals of runs that ended, by instrument|reason
	overBase map[string]uint64 // overflow totals of runs that ended, by metric
	reg      metric.Registration

	counters map[string]metric.Int64ObservableCounter
	gauges   map[string]metric.Int64ObservableGauge
	attrs    []attribute.Set // per selfCounts entry
}

func newTelemetry(mp metric.MeterProvider, scope string) *telemetry {
	t := &telemetry{
		base:     map[string]uint64{},
		overBase: map[string]uint64{},
		counters: map[string]metric.Int64ObservableCounter{},
		gauges:   map[string]metric.Int64ObservableGauge{},
	}
	if mp != nil {
		t.meter = mp.Meter(scope)
	}
	for _, c := range selfCounts {
		if c.reason != "" {
			t.attrs = append(t.attrs, attribute.NewSet(attribute.String(attrReason, c.reason)))
		} else {
			t.attrs = append(t.attrs, *attribute.EmptySet())
		}
	}
	return t
}

func countKey(c selfCount) string { return c.metric + "|" + c.reason }

// start registers the instruments for a new run.
func (t *telemetry) start() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.meter == nil || t.reg != nil {
		return nil
	}
	var obs []metric.Observable
	names := make([]string, 0, len(selfInstruments))
	for n := range selfInstruments {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		def := selfInstruments[n]
		if def.gauge {
			g, err := t.meter.Int64ObservableGauge(n, metric.WithUnit(def.unit), metric.WithDescription(def.desc))
			if err != nil {
				return err
			}
			t.gauges[n] = g
			obs = append(obs, g)
			continue
		}
		c, err := t.meter.Int64ObservableCounter(n, metric.WithUnit(def.unit), metric.WithDescription(def.desc))
		if err != nil {
			return err
		}
		t.counters[n] = c
		obs = append(obs, c)
	}
	reg, err := t.meter.RegisterCallback(t.observe, obs...)
	if err != nil {
		return err
	}
	t.reg = reg
	return nil
}

// publish makes s the current run's totals.
func (t *telemetry) publish(s *selfSnapshot) { t.latest.Store(s) }

// stop folds the ending run's totals into the base and unregisters the instruments.
func (t *telemetry) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.latest.Swap(nil); s != nil {
		for _, c := range selfCounts {
			t.base[countKey(c)] += c.value(s)
		}
		for _, o := range s.overflow {
			t.overBase[o.Name] += o.Value
		}
	}
	if t.reg != nil {
		_ = t.reg.Unregister()
		t.reg = nil
	}
}

// sums returns every counter's total (past runs and the running one), in pipeline form.
func (t *telemetry) sums() []otlp.SelfSum {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.latest.Load()
	byName := map[string]*otlp.SelfSum{}
	var out []*otlp.SelfSum
	sum := func(name string) *otlp.SelfSum {
		if ss, ok := byName[name]; ok {
			return ss
		}
		def := selfInstruments[name]
		ss := &otlp.SelfSum{Name: name, Unit: def.unit, Description: def.desc, AttrKey: def.attr, Gauge: def.gauge}
		byName[name] = ss
		out = append(out, ss)
		return ss
	}
	for _, c := range selfCounts {
		v := t.base[countKey(c)]
		if s != nil {
			v += c.value(s)
		}
		ss := sum(c.metric)
		ss.Points = append(ss.Points, otlp.NamedCount{Name: c.reason, Value: v})
	}
	for name, v := range t.overflowTotals(s) {
		ss := sum(MetricOverflow)
		ss.Points = append(ss.Points, otlp.NamedCount{Name: name, Value: v})
	}
	if s != nil {
		for _, g := range selfGauges {
			ss := sum(g.metric)
			for _, p := range g.points(s) {
				name := ""
				if ss.AttrKey != "" {
					v, _ := p.attrs.Value(attribute.Key(ss.AttrKey))
					name = v.Emit()
				}
				ss.Points = append(ss.Points, otlp.NamedCount{Name: name, Value: uint64(max(p.value, 0))})
			}
		}
	}
	res := make([]otlp.SelfSum, len(out))
	for i, ss := range out {
		res[i] = *ss
	}
	return res
}

// overflowTotals merges past runs' and the running run's overflow counts; t.mu is held.
func (t *telemetry) overflowTotals(s *selfSnapshot) map[string]uint64 {
	tot := make(map[string]uint64, len(t.overBase))
	for k, v := range t.overBase {
		tot[k] = v
	}
	if s != nil {
		for _, o := range s.overflow {
			tot[o.Name] += o.Value
		}
	}
	return tot
}

func (t *telemetry) observe(_ context.Context, o metric.Observer) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.latest.Load()
	for i, c := range selfCounts {
		v := t.base[countKey(c)]
		if s != nil {
			v += c.value(s)
		}
		o.ObserveInt64(t.counters[c.metric], int64(v), metric.WithAttributeSet(t.attrs[i]))
	}
	for name, v := range t.overflowTotals(s) {
		o.ObserveInt64(t.counters[MetricOverflow], int64(v), metric.WithAttributes(attribute.String("metric", name)))
	}
	if s != nil {
		for _, g := range selfGauges {
			for _, p := range g.points(s) {
				o.ObserveInt64(t.gauges[g.metric], p.value, metric.WithAttributeSet(p.attrs))
			}
		}
	}
	return nil
}
