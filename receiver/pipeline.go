package receiver

import (
	"context"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/intel"
	"github.com/netintel/netintelreceiver/internal/l7"
	"github.com/netintel/netintelreceiver/internal/lru"
	"github.com/netintel/netintelreceiver/internal/otlp"
	"github.com/netintel/netintelreceiver/internal/route"
)

const (
	// tickInterval is how often findings are collected and pending spans handed off;
	// metrics go out every FlushInterval.
	tickInterval = time.Second
	// maxSpansPerBatch hands a batch off early when traffic is heavy.
	maxSpansPerBatch = 1024
)

// pipeline drives capture events through the stages, all on one goroutine, so no stage
// needs locks: capture → l7 → identity → intel → otlp → output.
type pipeline struct {
	logger   *zap.Logger
	settings Settings
	source   capture.Source
	out      *output

	tracker *l7.Tracker
	names   *identity.Resolver
	routes  *route.Learner
	intel   *intel.Engine
	metrics *otlp.Metrics
	spans   *otlp.TraceBuilder
	self    *telemetry
	steer   *steering
	// halves remembers, bounded, the first half seen of recent requests (by identity), so the
	// other half tells where a dialled virtual address really went (identity.LearnVirtual).
	halves *lru.Cache[requestID, halfSeen]

	nextMetrics time.Time
}

func newPipeline(settings Settings, logger *zap.Logger, src capture.Source, out *output, self *telemetry) *pipeline {
	p := &pipeline{
		self:     self,
		logger:   logger,
		settings: settings,
		source:   src,
		out:      out,
		names:    identity.New(settings.Identity),
		routes:   route.NewLearner(settings.Routes),
		intel:    intel.New(settings.Intel),
		metrics:  otlp.NewMetrics(settings.Metrics),
		spans:    otlp.NewTraceBuilder(otlp.Privacy{URLPath: settings.URLPath}),
	}
	p.tracker = l7.NewTracker(settings.L7, p.exchange)
	if st, ok := src.(capture.Stopper); ok {
		// A socket l7 gave up on costs nothing more: the kernel stops sending its bytes.
		p.tracker.SetStop(func(s capture.Socket) {
			if err := st.StopSocket(s.Cookie); err != nil {
				logger.Debug("net_intel: stop socket", zap.Error(err))
			}
		})
	}
	p.steer = newSteering(src)
	p.halves = lru.New[requestID, halfSeen](maxHalves)
	if src := p.names.Sources(); src.Proc == "" {
		logger.Warn("net_intel: no processes readable under the proc root: local services are named by their kernel comm only (check naming.host_root and the /proc mount)")
	} else {
		logger.Info("net_intel naming", zap.String("proc", src.Proc), zap.String("cgroup_v2", src.CgroupV2), zap.Strings("runtime_state", src.RuntimeState))
	}
	return p
}

func (p *pipeline) run(ctx context.Context) {
	tick := time.NewTicker(tickInterval)
	defer tick.Stop()
	p.nextMetrics = time.Now().Add(p.settings.FlushInterval)
	events := p.source.Events()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				p.flush(time.Now(), true)
				return
			}
			p.event(ev)
		case now := <-tick.C:
			p.flush(now, false)
		case <-ctx.Done():
			p.flush(time.Now(), true)
			return
		}
	}
}

func (p *pipeline) event(ev capture.Event) {
	switch {
	case ev.Conn != nil:
		c := ev.Conn
		var client, server identity.Service
		closed := c.Kind == capture.ConnClosed
		if closed {
			// Named before the resolver forgets a process that has exited: a short-lived
			// client's close (an upload's total) keeps the name it had.
			client, server = p.names.ConnEnds(c)
		}
		p.names.Conn(c)
		p.tracker.Conn(c) // failures of outstanding requests come out through p.exchange
		if !closed {
			client, server = p.names.ConnEnds(c)
		}
		p.intel.Conn(c, client, server)
		p.metrics.Conn(c, client, server)
	case ev.Data != nil:
		p.names.Data(ev.Data)
		p.tracker.Data(ev.Data)
	case ev.HTTP1 != nil:
		// The owner of a socket first seen here (one that predates the capture).
		p.names.Data(&capture.DataEvent{Process: ev.HTTP1.Process, Socket: ev.HTTP1.Socket})
		p.tracker.HTTP1(ev.HTTP1)
	}
}

// exchange is the tracker's emit: every exchange is named, given its route, judged and
// measured; the ones the sampler keeps become spans.
func (p *pipeline) exchange(x *l7.Exchange) {
	p.names.Learn(x)
	client, server := p.names.Client(x), p.names.Server(x)
	if h := x.HTTP; h != nil && h.Route == "" && x.GRPC == nil {
		h.Route = p.routes.Route(server.Name, h.Path, learnRoute(x))
	}
	p.steer.learn(x, server)
	p.pairHalves(x, server)
	p.judge(x, client, server)
	// Both ends here, judged once by the kernel on the server's socket: the client's side is
	// this one's twin (DESIGN §2), measured and exported as if its quiet socket had sent it.
	if twin := x.ClientTwin(); twin != nil {
		p.steer.learn(twin, server)
		p.judge(twin, client, server)
	}
}

// judge runs one named exchange through intel and the metrics, and keeps its span when intel
// exports it.
func (p *pipeline) judge(x *l7.Exchange, client, server identity.Service) {
	d := p.intel.Exchange(x, client, server)
	p.metrics.Exchange(x, client, server)
	if d.Export && p.out.wantsTraces() {
		p.spans.Append(x, client, server, d.Probability)
		if p.spans.Len() >= maxSpansPerBatch {
			p.out.enqueueTraces(p.spans.Traces())
		}
	}
}

// learnRoute: routes are learned only from requests the server recognised — answered, and
// not with a 4xx (a scanner's made-up paths, a client's typos) — so that what a client
// invents never turns a server's routes into "{id}".
func learnRoute(x *l7.Exchange) bool {
	st := x.HTTP.Status
	return x.Failure == l7.FailureNone && st > 0 && (st < 400 || st >= 500)
}

// flush hands off what is due: findings and spans every tick; metrics, and the kernel's
// aggregates, every FlushInterval (and everything at the end). The aggregates are drained
// before the intel window closes, so that the window holds what the kernel counted in it as
// it holds the exchanges sent meanwhile; the metrics follow the window.
func (p *pipeline) flush(now time.Time, final bool) {
	p.tracker.Tick(now)
	due := final || !now.Before(p.nextMetrics) || p.intel.WindowDue(now)
	if due {
		p.drainKernel(now)
	}
	findings := p.intel.Findings
	if final {
		findings = p.intel.Last
	}
	if findings := findings(now); len(findings) > 0 {
		p.out.enqueueLogs(otlp.LogsWith(findings, otlp.Privacy{URLPath: p.settings.URLPath}))
	}
	if p.spans.Len() > 0 {
		p.out.enqueueTraces(p.spans.Traces())
	}
	p.self.publish(p.snapshot())
	if due {
		p.nextMetrics = now.Add(p.settings.FlushInterval)
		if p.out.wantsMetrics() {
			var self []otlp.SelfSum
			if p.settings.PipelineSelfMetrics {
				self = p.self.sums()
			}
			p.out.enqueueMetrics(p.metrics.Emit(now, self))
		}
	}
}

// drainKernel takes what the kernel counted since the last drain into the stages that count,
// and pushes down what they learned: route limits and identifier rules.
func (p *pipeline) drainKernel(now time.Time) {
	err := p.steer.drain(p.tracker, now, func(a *l7.Aggregate) {
		client, server := p.names.AggregateEnds(a)
		p.intel.Aggregate(a, client, server)
		p.metrics.Aggregate(a, client, server)
		if twin := a.ClientTwin(); twin != nil {
			twin.Host = p.steer.host(twin.Server.Addr)
			p.intel.Aggregate(twin, client, server)
			p.metrics.Aggregate(twin, client, server)
		}
	})
	if err != nil {
		p.logger.Warn("net_intel: kernel aggregates not drained", zap.Error(err))
	}
	// Sockets that closed and processes that exited named the aggregates just drained: now
	// they can go.
	p.names.Settle()
	if err := p.steer.push(p.intel.LatencyThresholds(), p.routes.Rules()); err != nil {
		p.logger.Warn("net_intel: route limits or rules not written to the kernel", zap.Error(err))
	}
}

// requestID is a TCP request's identity (DESIGN §4).
type requestID struct{ clientISN, serverISN, seq, stream uint32 }

// halfSeen is one half of a request: the server address it named, and the server's process
// when it is the SERVER half.
type halfSeen struct {
	side   l7.Side
	server netip.AddrPort
	pid    uint32
}

const maxHalves = 4096

// pairHalves teaches identity where a virtual address a local client dialled really went: the
// CLIENT half of a request names the dialled address (a ClusterIP), its SERVER half the local
// server that answered.
func (p *pipeline) pairHalves(x *l7.Exchange, server identity.Service) {
	if x.ClientISN == 0 && x.ServerISN == 0 {
		return
	}
	id := requestID{x.ClientISN, x.ServerISN, x.RequestSeq, x.StreamID}
	this := halfSeen{side: x.Side, server: x.Server.Addr}
	if x.Side == l7.SideServer {
		if !server.Local {
			return
		}
		this.pid = x.Server.Process.PID
	} else if server.Local {
		return // a client half whose server is known needs nothing
	}
	other, ok := p.halves.Peek(id)
	if !ok || other.side == this.side {
		p.halves.Put(id, this)
		return
	}
	p.halves.Remove(id)
	client, srv := this, other
	if this.side == l7.SideServer {
		client, srv = other, this
	}
	p.names.LearnVirtual(client.server, srv.server, srv.pid)
}

// snapshot gathers every stage's running totals: drops, evictions, truncations.
func (p *pipeline) snapshot() *selfSnapshot {
	return &selfSnapshot{
		capture:  p.source.Counters(),
		l7:       p.tracker.Counters(),
		intel:    p.intel.Counters(),
		identity: p.names.Counters(),
		routes:   p.routes.Counters(),
		steering: p.steer.counters,
		output: outputCounters{
			logs:    p.out.droppedFindings.Load(),
			spans:   p.out.droppedSpans.Load(),
			metrics: p.out.droppedMetrics.Load(),
			refused: p.out.consumerErrors.Load(),
		},
		overflow: p.metrics.Overflowed(),
	}
}
