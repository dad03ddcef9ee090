//go:build !linux || !(amd64 || arm64)

package capture

import (
	"errors"

	"go.uber.org/zap"
)

var errUnsupported = errors.New("net_intel: kernel capture needs Linux on amd64 or arm64 (eBPF); use a replay source elsewhere")

// Check reports that kernel capture is not available on this platform.
func Check() error { return errUnsupported }

// NewEBPF fails: kernel capture is Linux-only.
func NewEBPF(_ Options, _ *zap.Logger) (Source, error) { return nil, errUnsupported }
