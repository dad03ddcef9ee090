package netintelreceiver

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/metadata"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// countingSource is a capture source with no kernel behind it: it records how often it was
// opened and closed, so the lifecycle can be checked without privileges.
type countingSource struct {
	opened, started, closed *atomic.Int32
	events                  chan capture.Event
	once                    sync.Once
}

func (s *countingSource) Start(context.Context) error  { s.started.Add(1); return nil }
func (s *countingSource) Events() <-chan capture.Event { return s.events }
func (s *countingSource) Counters() capture.Counters   { return capture.Counters{} }
func (s *countingSource) Close() error {
	s.once.Do(func() { s.closed.Add(1); close(s.events) })
	return nil
}

type sourceCounts struct{ opened, started, closed atomic.Int32 }

func withCountingSource(cfg *Config) *sourceCounts {
	c := &sourceCounts{}
	cfg.source = func(*zap.Logger) (capture.Source, error) {
		c.opened.Add(1)
		return &countingSource{opened: &c.opened, started: &c.started, closed: &c.closed, events: make(chan capture.Event)}, nil
	}
	return c
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, metadata.Type, f.Type())
	assert.Equal(t, metadata.LogsStability, f.LogsStability())
	assert.Equal(t, metadata.TracesStability, f.TracesStability())
	assert.Equal(t, metadata.MetricsStability, f.MetricsStability())
	require.NoError(t, componenttest.CheckConfigStruct(f.CreateDefaultConfig()))
	require.NoError(t, f.CreateDefaultConfig().(*Config).Validate())
}

func createAll(t *testing.T, cfg *Config) []receiver.Logs {
	t.Helper()
	f := NewFactory()
	set := receivertest.NewNopSettings(metadata.Type)
	l, err := f.CreateLogs(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	tr, err := f.CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	m, err := f.CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	return []receiver.Logs{l, tr, m}
}

func TestCreateThenShutdownWithoutStart(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	counts := withCountingSource(cfg)
	for _, r := range createAll(t, cfg) {
		require.NoError(t, r.Shutdown(context.Background()))
		require.NoError(t, r.Shutdown(context.Background()))
	}
	assert.Zero(t, counts.opened.Load())
	assert.Empty(t, sessions.m, "the session is forgotten when its receivers are gone")
}

// The three signals of one config share one kernel session, started once and stopped with
// the first receiver to shut down: the collector shuts a pipeline's exporter down after its
// receiver, so only then are all of the session's consumers still there for its last flush
// (a traces exporter shut down before the metrics receiver was sent the last spans, and its
// file writer panicked). A second pipeline can start after the first stopped.
func TestSharedSessionLifecycle(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	counts := withCountingSource(cfg)
	host := componenttest.NewNopHost()
	for round := 1; round <= 2; round++ {
		rs := createAll(t, cfg)
		for _, r := range rs {
			require.NoError(t, r.Start(context.Background(), host))
		}
		assert.Equal(t, int32(round), counts.opened.Load(), "one source per running session")
		require.NoError(t, rs[0].Shutdown(context.Background()))
		assert.Equal(t, int32(round), counts.closed.Load(), "capture stopped with the first receiver")
		require.NoError(t, rs[1].Shutdown(context.Background()))
		require.NoError(t, rs[2].Shutdown(context.Background()))
		require.NoError(t, rs[2].Shutdown(context.Background()))
		assert.Equal(t, int32(round), counts.closed.Load())
	}
	assert.Empty(t, sessions.m)
}

func TestStartFailureIsReported(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.source = func(*zap.Logger) (capture.Source, error) {
		return nil, assert.AnError
	}
	rs := createAll(t, cfg)
	err := rs[0].Start(context.Background(), componenttest.NewNopHost())
	require.ErrorIs(t, err, assert.AnError)
	for _, r := range rs {
		require.NoError(t, r.Shutdown(context.Background()))
	}
}

// With privileges the real kernel session starts and stops twice; in CI (root) it must.
func TestKernelLifecycle(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") == "" {
		t.Skip("kernel lifecycle needs root; CI runs it")
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	host := componenttest.NewNopHost()
	for range 2 {
		rs := createAll(t, cfg)
		for _, r := range rs {
			require.NoError(t, r.Start(context.Background(), host))
		}
		for _, r := range rs {
			require.NoError(t, r.Shutdown(context.Background()))
		}
	}
}
