package netintelreceiver

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	nireceiver "github.com/netintel/netintelreceiver/receiver"
)

// sessions holds the running session of each configuration, so the logs, traces and metrics
// receivers created for one config share one kernel session (as otlpreceiver shares its server).
var sessions = &sessionMap{m: map[*Config]*sessionEntry{}}

type sessionMap struct {
	mu sync.Mutex
	m  map[*Config]*sessionEntry
}

type sessionEntry struct {
	session   *nireceiver.Session
	receivers int
}

// get returns the config's session and a receiver that holds it; the entry is forgotten when
// the last receiver created for it shuts down, so a later pipeline starts a fresh session.
func (sm *sessionMap) get(set receiver.Settings, cfg *Config, attach func(*nireceiver.Session)) (*nireceiver.Receiver, error) {
	if err := platformSupported(); err != nil {
		return nil, err
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	e, ok := sm.m[cfg]
	if !ok {
		e = &sessionEntry{session: nireceiver.NewSession(set, sessionSettings(cfg))}
		sm.m[cfg] = e
	}
	attach(e.session)
	e.receivers++
	return nireceiver.NewReceiver(e.session, func() {
		sm.mu.Lock()
		defer sm.mu.Unlock()
		e.receivers--
		if e.receivers == 0 && sm.m[cfg] == e {
			delete(sm.m, cfg)
		}
	}), nil
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return sessions.get(set, cfg.(*Config), func(s *nireceiver.Session) { s.SetLogs(next) })
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	return sessions.get(set, cfg.(*Config), func(s *nireceiver.Session) { s.SetTraces(next) })
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	return sessions.get(set, cfg.(*Config), func(s *nireceiver.Session) { s.SetMetrics(next) })
}
