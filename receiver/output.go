package receiver

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	otelreceiver "go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
)

// Queue depths, in batches. Findings get the deepest queue and are served first: when the
// consumers fall behind, sampled healthy spans are dropped long before any finding is.
const (
	logsQueueBatches    = 1024
	metricsQueueBatches = 16
	tracesQueueBatches  = 64

	// drainTimeout bounds the delivery of what is still queued at shutdown.
	drainTimeout = 5 * time.Second
)

// output hands pdata to the consumers from its own goroutine, so a slow or failing consumer
// never blocks the capture path. Every hand-off is wrapped in ObsReport.
type output struct {
	logger  *zap.Logger
	obs     *receiverhelper.ObsReport
	logs    consumer.Logs
	traces  consumer.Traces
	metrics consumer.Metrics

	logsQ    chan plog.Logs
	tracesQ  chan ptrace.Traces
	metricsQ chan pmetric.Metrics

	droppedFindings atomic.Uint64 // log records dropped because the logs queue was full
	droppedSpans    atomic.Uint64 // spans dropped because the traces queue was full
	droppedMetrics  atomic.Uint64 // metric batches dropped because the metrics queue was full
	consumerErrors  atomic.Uint64 // batches a consumer refused
}

func newOutput(set otelreceiver.Settings, logs consumer.Logs, traces consumer.Traces, metrics consumer.Metrics) (*output, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "ebpf",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &output{
		logger:   set.Logger,
		obs:      obs,
		logs:     logs,
		traces:   traces,
		metrics:  metrics,
		logsQ:    make(chan plog.Logs, logsQueueBatches),
		tracesQ:  make(chan ptrace.Traces, tracesQueueBatches),
		metricsQ: make(chan pmetric.Metrics, metricsQueueBatches),
	}, nil
}

func (o *output) wantsLogs() bool    { return o.logs != nil }
func (o *output) wantsTraces() bool  { return o.traces != nil }
func (o *output) wantsMetrics() bool { return o.metrics != nil }

// The enqueue functions never block.

func (o *output) enqueueLogs(ld plog.Logs) {
	if o.logs == nil || ld.LogRecordCount() == 0 {
		return
	}
	select {
	case o.logsQ <- ld:
	default:
		o.droppedFindings.Add(uint64(ld.LogRecordCount()))
	}
}

func (o *output) enqueueTraces(td ptrace.Traces) {
	if o.traces == nil || td.SpanCount() == 0 {
		return
	}
	select {
	case o.tracesQ <- td:
	default:
		o.droppedSpans.Add(uint64(td.SpanCount()))
	}
}

func (o *output) enqueueMetrics(md pmetric.Metrics) {
	if o.metrics == nil || md.DataPointCount() == 0 {
		return
	}
	select {
	case o.metricsQ <- md:
	default:
		o.droppedMetrics.Add(1)
	}
}

// run serves the queues until ctx is done, findings first, then drains what is queued.
func (o *output) run(ctx context.Context) {
	for {
		// Priority: logs, then metrics, then traces.
		select {
		case ld := <-o.logsQ:
			o.sendLogs(ctx, ld)
			continue
		default:
		}
		select {
		case md := <-o.metricsQ:
			o.sendMetrics(ctx, md)
			continue
		default:
		}
		select {
		case ld := <-o.logsQ:
			o.sendLogs(ctx, ld)
		case md := <-o.metricsQ:
			o.sendMetrics(ctx, md)
		case td := <-o.tracesQ:
			o.sendTraces(ctx, td)
		case <-ctx.Done():
			// Deliver what the last flush queued, within a bound: a stuck consumer must not
			// hold the collector's shutdown forever.
			dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
			o.drain(dctx)
			cancel()
			return
		}
	}
}

// drain delivers what was queued before shutdown, so the last flush is not lost.
func (o *output) drain(ctx context.Context) {
	for ctx.Err() == nil {
		select {
		case ld := <-o.logsQ:
			o.sendLogs(ctx, ld)
		case md := <-o.metricsQ:
			o.sendMetrics(ctx, md)
		case td := <-o.tracesQ:
			o.sendTraces(ctx, td)
		default:
			return
		}
	}
}

func (o *output) sendLogs(parent context.Context, ld plog.Logs) {
	ctx := o.obs.StartLogsOp(parent)
	n := ld.LogRecordCount()
	err := o.logs.ConsumeLogs(ctx, ld)
	o.obs.EndLogsOp(ctx, "ebpf", n, err)
	o.consumed(err, "logs")
}

func (o *output) sendTraces(parent context.Context, td ptrace.Traces) {
	ctx := o.obs.StartTracesOp(parent)
	n := td.SpanCount()
	err := o.traces.ConsumeTraces(ctx, td)
	o.obs.EndTracesOp(ctx, "ebpf", n, err)
	o.consumed(err, "traces")
}

func (o *output) sendMetrics(parent context.Context, md pmetric.Metrics) {
	ctx := o.obs.StartMetricsOp(parent)
	n := md.DataPointCount()
	err := o.metrics.ConsumeMetrics(ctx, md)
	o.obs.EndMetricsOp(ctx, "ebpf", n, err)
	o.consumed(err, "metrics")
}

func (o *output) consumed(err error, signal string) {
	if err != nil {
		o.consumerErrors.Add(1)
		o.logger.Debug("net_intel: consumer refused a batch", zap.String("signal", signal), zap.Error(err))
	}
}
