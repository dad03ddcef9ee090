//go:build !linux

package netintelreceiver

import (
	"go.uber.org/zap"

	"github.com/netintel/netintelreceiver/internal/capture"
)

func newSource(*Config) func(*zap.Logger) (capture.Source, error) {
	return func(*zap.Logger) (capture.Source, error) { return nil, platformSupported() }
}
