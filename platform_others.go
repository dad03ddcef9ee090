//go:build !linux

package netintelreceiver

import "errors"

func platformSupported() error {
	return errors.New("net_intel requires Linux: it captures with eBPF programs on kernel tracepoints")
}
