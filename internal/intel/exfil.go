package intel

import (
	"net/netip"
	"time"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/lru"
)

// The data_exfiltration detector sums the bytes each local service sends to each external
// destination per exfilWindow. A window is reported, at the moment it crosses, when its bytes
// exceed both ExfiltrationBytes and exfilBaselineFactor × the pair's baseline: the bytes of
// its past windows that carried traffic, averaged with exponential decay. A transfer that
// happens every day sets its own baseline after its first report.
const (
	exfilWindow         = time.Minute
	exfilBaselineFactor = 3.0
	exfilBaselineWeight = 0.3 // of each new window in the baseline
)

// Transfer is bytes a local service sent to a destination, observed at Time: a closed
// connection's total (Conn feeds these from capture.ConnClosed), or, from another source, the
// bytes sent since its previous report on a long-lived connection.
type Transfer struct {
	Source   identity.Service
	Dest     identity.Service // named as the client resolved it, its TLS server name, or ip:port
	DestAddr netip.AddrPort
	Bytes    uint64
	Time     time.Time
}

type exfilDetector struct {
	e     *Engine
	dests *lru.Cache[servicePair, *exfilState]
}

type exfilState struct {
	windowStart time.Time
	bytes       uint64
	baseline    float64
	learned     bool // baseline holds at least one window
	reported    bool // this window was reported
}

func newExfilDetector(e *Engine) *exfilDetector {
	return &exfilDetector{e: e, dests: lru.New[servicePair, *exfilState](e.opts.MaxEdges)}
}

// Transfer judges bytes sent to a destination; only external destinations (outside
// security.internal_networks) are judged.
func (e *Engine) Transfer(tr Transfer) {
	if tr.Bytes == 0 || !e.external(tr.DestAddr.Addr()) {
		return
	}
	e.tick(tr.Time)
	e.c.Transfers++
	e.exfil.observe(tr)
}

func (x *exfilDetector) observe(tr Transfer) {
	k := servicePair{tr.Source.Name, tr.Dest.Name}
	st, ok := x.dests.Get(k)
	if !ok {
		st = &exfilState{windowStart: tr.Time}
		x.dests.Put(k, st)
	}
	if tr.Time.Sub(st.windowStart) >= exfilWindow {
		st.roll()
		st.windowStart = tr.Time
	}
	st.bytes += tr.Bytes
	if st.reported || st.bytes <= x.e.opts.ExfiltrationBytes || float64(st.bytes) <= exfilBaselineFactor*st.baseline {
		return
	}
	st.reported = true
	x.e.emit(Finding{
		Kind: KindDataExfiltration, Time: tr.Time, Severity: SeverityHigh, Subject: tr.Source,
		Exfiltration: &DataExfiltration{
			Source: tr.Source.Name, Dest: tr.Dest.Name, DestAddr: netip.AddrPortFrom(tr.DestAddr.Addr().Unmap(), tr.DestAddr.Port()),
			BytesSent: st.bytes, BaselineBytes: uint64(st.baseline), Window: exfilWindow,
		},
	})
}

// roll closes the pair's window into its baseline.
func (st *exfilState) roll() {
	if st.bytes > 0 {
		if st.learned {
			st.baseline = (1-exfilBaselineWeight)*st.baseline + exfilBaselineWeight*float64(st.bytes)
		} else {
			st.baseline, st.learned = float64(st.bytes), true
		}
	}
	st.bytes, st.reported = 0, false
}
