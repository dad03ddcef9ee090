package receiver

import (
	"context"
	"time"

	otelreceiver "go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// tickInterval is how often findings are collected and pending spans are handed off;
// metrics go out every FlushInterval.
const tickInterval = time.Second

// pipeline drives capture events through the stages, on one goroutine.
type pipeline struct {
	logger   *zap.Logger
	settings Settings
	source   capture.Source
	out      *output
}

func newPipeline(settings Settings, set otelreceiver.Settings, src capture.Source, out *output) *pipeline {
	return &pipeline{logger: set.Logger, settings: settings, source: src, out: out}
}

func (p *pipeline) run(ctx context.Context) {
	tick := time.NewTicker(tickInterval)
	defer tick.Stop()
	events := p.source.Events()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			p.event(ev)
		case now := <-tick.C:
			p.tick(now)
		case <-ctx.Done():
			return
		}
	}
}

func (p *pipeline) event(ev capture.Event) {}

func (p *pipeline) tick(now time.Time) {}
