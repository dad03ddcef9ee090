//go:build !linux

package intel

import "time"

// processCPU is not measured outside Linux; the benchmark then reports wall time only.
func processCPU() time.Duration { return 0 }
