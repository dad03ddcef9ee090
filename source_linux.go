package netintelreceiver

import (
	"go.uber.org/zap"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// newSource opens the eBPF source after the feature checks, whose error names what is
// missing (BTF, a capability, tracefs, a tracepoint) and how to fix it.
func newSource(cfg *Config) func(*zap.Logger) (capture.Source, error) {
	opts := captureOptions(cfg)
	return func(logger *zap.Logger) (capture.Source, error) {
		if err := capture.Check(); err != nil {
			return nil, err
		}
		return capture.NewEBPF(opts, logger)
	}
}
