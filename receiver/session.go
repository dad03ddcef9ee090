// Package receiver runs the net_intel receiver: one kernel session shared by the logs, traces
// and metrics receivers of a configuration, its pipeline through the stages, and the hand-off
// of pdata to the consumers.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	otelreceiver "go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/intel"
	"github.com/netintel/netintelreceiver/internal/l7"
	"github.com/netintel/netintelreceiver/internal/otlp"
	"github.com/netintel/netintelreceiver/internal/route"
)

// Settings is everything a session needs, already mapped from the YAML config.
type Settings struct {
	L7            l7.Options
	Identity      identity.Options
	Intel         intel.Options
	Routes        route.Options
	Metrics       otlp.MetricsOptions
	FlushInterval time.Duration
	// URLPath is what spans and findings carry of request paths (privacy.url_path).
	URLPath otlp.PathPolicy
	// PipelineSelfMetrics also sends the receiver's own metrics (netintel.receiver.*) down
	// the metrics pipeline; they always go to the collector's internal telemetry.
	PipelineSelfMetrics bool

	// NewSource opens the capture source: the eBPF source on Linux; tests inject a replay.
	NewSource func(*zap.Logger) (capture.Source, error)
}

// Session is the running kernel session of one configuration. The logs, traces and metrics
// receivers created for that configuration each hold a reference; capture starts with the
// first Start and stops when the last holder shuts down.
type Session struct {
	set      otelreceiver.Settings
	settings Settings
	self     *telemetry

	mu      sync.Mutex
	logs    consumer.Logs
	traces  consumer.Traces
	metrics consumer.Metrics
	refs    int
	run     *run // nil while stopped
}

// run is one start-to-stop lifetime of the session.
type run struct {
	cancel    context.CancelFunc // the pipeline's: it flushes all it has, then returns
	cancelOut context.CancelFunc // the output's: it delivers what is queued, then returns
	source    capture.Source
	pipeDone  chan struct{}
	outDone   chan struct{}
	// unregister removes the run's callbacks from the collector's own telemetry.
	unregister func() error
}

// NewSession creates a stopped session.
func NewSession(set otelreceiver.Settings, settings Settings) *Session {
	return &Session{set: set, settings: settings, self: newTelemetry(set.MeterProvider, otlp.ScopeName)}
}

// SetLogs, SetTraces and SetMetrics attach the consumers; call them before Start.
func (s *Session) SetLogs(c consumer.Logs) { s.mu.Lock(); s.logs = c; s.mu.Unlock() }

func (s *Session) SetTraces(c consumer.Traces) { s.mu.Lock(); s.traces = c; s.mu.Unlock() }

func (s *Session) SetMetrics(c consumer.Metrics) { s.mu.Lock(); s.metrics = c; s.mu.Unlock() }

// acquire starts capture on the first reference.
func (s *Session) acquire(ctx context.Context, host component.Host) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs > 0 {
		s.refs++
		return nil
	}
	r, err := s.start(ctx)
	if err != nil {
		componentstatus.ReportStatus(host, componentstatus.NewPermanentErrorEvent(err))
		return err
	}
	if states := capabilitiesOf(r.source); states != nil {
		reportCapabilities(host, states)
	}
	s.run = r
	s.refs = 1
	return nil
}

// release stops capture at the first receiver's Shutdown, not the last's: the collector shuts
// each pipeline's exporters down after its receivers, so when the first of ours goes, every
// consumer of the session is still up and takes the last flush; one that went after it would
// be sent to shut down. Receivers are shut down only together (the collector stopping, or
// reloading its whole configuration), so nothing is lost by stopping early.
func (s *Session) release(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs == 0 {
		return nil
	}
	s.refs = 0
	r := s.run
	s.run = nil
	err := r.stop(ctx)
	s.self.stop()
	return err
}

func (s *Session) start(ctx context.Context) (*run, error) {
	if s.settings.NewSource == nil {
		return nil, errors.New("net_intel: no capture source for this platform")
	}
	src, err := s.settings.NewSource(s.set.Logger)
	if err != nil {
		return nil, err
	}
	// The run outlives Start's context: it gets its own.
	runCtx, cancel := context.WithCancel(context.Background())
	if err := src.Start(ctx); err != nil {
		cancel()
		_ = src.Close()
		return nil, err
	}
	out, err := newOutput(s.set, s.logs, s.traces, s.metrics)
	if err != nil {
		cancel()
		_ = src.Close()
		return nil, fmt.Errorf("net_intel: %w", err)
	}
	if err := s.self.start(); err != nil {
		cancel()
		_ = src.Close()
		return nil, fmt.Errorf("net_intel: internal telemetry: %w", err)
	}
	settings := s.settings
	settings.Metrics.Start = time.Now()
	if settings.Metrics.Host.ServiceName == "" {
		// Host-level metrics (service graph, TCP, the receiver's own) belong to the collector.
		settings.Metrics.Host.ServiceName = s.set.BuildInfo.Command
	}
	p := newPipeline(settings, s.set.Logger, src, out, s.self)
	outCtx, cancelOut := context.WithCancel(context.Background())
	r := &run{cancel: cancel, cancelOut: cancelOut, source: src, pipeDone: make(chan struct{}), outDone: make(chan struct{})}
	if states := capabilitiesOf(src); states != nil && s.set.MeterProvider != nil {
		unregister, err := capabilityGauge(s.set.MeterProvider, func() []capture.CapabilityState { return states })
		if err != nil {
			s.set.Logger.Warn("net_intel: capability gauge not registered", zap.Error(err))
		} else {
			r.unregister = unregister
		}
	}
	go func() { defer close(r.outDone); out.run(outCtx) }()
	go func() { defer close(r.pipeDone); p.run(runCtx) }()
	s.set.Logger.Info("net_intel capture started")
	return r, nil
}

// stop shuts the run down in the data's order, so that the last flush loses nothing: the
// capture ends and delivers what it holds; the pipeline takes it all, drains the kernel's
// aggregates and flushes; the output delivers what the flush queued; only then are the kernel
// objects freed. Within ctx: past it, the rest is cut short and the error says so.
func (r *run) stop(ctx context.Context) error {
	var errs []error
	if st, ok := r.source.(capture.Ender); ok {
		st.Stop() // the pipeline ends when the events do
	} else {
		r.cancel()
	}
	select {
	case <-r.pipeDone:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("net_intel: shutdown: the last flush cut short: %w", ctx.Err()))
	}
	r.cancel()
	r.cancelOut()
	errs = append(errs, r.source.Close())
	if r.unregister != nil {
		errs = append(errs, r.unregister())
	}
	select {
	case <-r.outDone:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("net_intel: shutdown: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// Receiver is one signal's face of a shared session.
type Receiver struct {
	session *Session
	mu      sync.Mutex
	started bool
	closed  bool
	// onClose runs once, at the receiver's first Shutdown, so the factory can forget the
	// session when its last receiver is gone.
	onClose func()
}

// NewReceiver returns a receiver holding a reference to session while started.
func NewReceiver(session *Session, onClose func()) *Receiver {
	return &Receiver{session: session, onClose: onClose}
}

// Start implements component.Component.
func (r *Receiver) Start(ctx context.Context, host component.Host) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return nil
	}
	if err := r.session.acquire(ctx, host); err != nil {
		return err
	}
	r.started = true
	return nil
}

// Shutdown implements component.Component; safe without Start and when called twice.
func (r *Receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	if r.started {
		r.started = false
		err = r.session.release(ctx)
	}
	if !r.closed {
		r.closed = true
		if r.onClose != nil {
			r.onClose()
		}
	}
	return err
}
