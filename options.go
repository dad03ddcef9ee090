package netintelreceiver

import (
	"github.com/netintel/netintelreceiver/internal/capture"
	nireceiver "github.com/netintel/netintelreceiver/receiver"
)

// sessionSettings maps the YAML configuration onto the options of each stage.
func sessionSettings(cfg *Config) nireceiver.Settings {
	src := cfg.source
	if src == nil {
		src = newSource(cfg)
	}
	return nireceiver.Settings{
		FlushInterval: cfg.Intelligence.FlushInterval,
		NewSource:     src,
	}
}

var _ = capture.TransportTCP
