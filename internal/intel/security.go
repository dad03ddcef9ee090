package intel

import (
	"github.com/netintel/netintelreceiver/internal/lru"

	"hash/maphash"
	"net/netip"
	"strings"
	"time"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// httpNotFound is the status whose distinct paths count towards endpoint enumeration.
const httpNotFound = 404

// maxUACache bounds the memo of user agents already matched (clients repeat theirs).
const maxUACache = 4096

// concernKey is what one security concern is reported once per ScanWindow for.
type concernKey struct {
	typ    ConcernType
	ip     netip.Addr
	source string
}

// scannerKey is a client seen scanning: its address and its name, because on one node many
// clients share 127.0.0.1 and only the scanning one should be set apart.
type scannerKey struct {
	ip     netip.Addr
	client string
}

// markScanner sets a client apart for ScanWindow: its 404s and errors are the scan's, not the
// service's, so they feed neither error patterns, retry storms nor baselines.
func (e *Engine) markScanner(ip netip.Addr, client string, t time.Time) {
	e.scanners.Put(scannerKey{ip, client}, t)
}

func (e *Engine) isScanning(ip netip.Addr, client string, t time.Time) bool {
	if e.scanners.Len() == 0 {
		return false
	}
	last, ok := e.scanners.Peek(scannerKey{ip, client})
	return ok && t.Sub(last) <= e.opts.ScanWindow
}

// scanState counts distinct probes (404 paths, refused ports) from one source in a window.
type scanState struct {
	start    time.Time
	distinct map[uint64]struct{} // capped at the threshold
}

var pathSeed = maphash.MakeSeed()

// concern emits f unless (type, source) was reported in the current scan window.
func (e *Engine) concern(k concernKey, t time.Time, f Finding) bool {
	if last, ok := e.concerns.Get(k); ok && t.Sub(last) < e.opts.ScanWindow {
		e.c.ConcernsSuppressed++
		return false
	}
	e.concerns.Put(k, t)
	e.emit(f)
	return true
}

// checkSecurity looks at an HTTP exchange for scanners and probes. It reports whether a
// finding was emitted.
func (e *Engine) checkSecurity(x *l7.Exchange, id [16]byte, o *outcome, key EdgeKey, client, server identity.Service, t time.Time) bool {
	if x.HTTP == nil {
		return false
	}
	h := x.HTTP
	ip := x.Client.Addr.Addr().Unmap()
	found := false
	base := SecurityConcern{SourceIP: ip, SourceService: client.Name, DestService: server.Name, DestAddr: x.Server.Addr, UserAgent: h.UserAgent}

	if p := e.matchUserAgent(h.UserAgent); p != "" {
		e.markScanner(ip, client.Name, t)
		sc := base
		sc.Type, sc.Count, sc.TargetEndpoint = ConcernSuspiciousUserAgent, 1, o.route
		found = e.concern(concernKey{typ: sc.Type, ip: ip, source: client.Name}, t, Finding{
			Kind: KindSecurityConcern, Time: t, Severity: SeverityMedium, Subject: server, Example: exampleOf(x, id, server), SecurityConcern: &sc,
		}) || found
	}
	if e.matchEndpoint(h.Path) {
		sc := base
		sc.Type, sc.Count, sc.TargetEndpoint = ConcernSuspiciousEndpoint, 1, h.Path
		sev := SeverityMedium
		if h.Status >= 200 && h.Status < 300 {
			sev = SeverityHigh // the probe got an answer: something is exposed
		}
		found = e.concern(concernKey{typ: sc.Type, ip: ip, source: client.Name}, t, Finding{
			Kind: KindSecurityConcern, Time: t, Severity: sev, Subject: server, Example: exampleOf(x, id, server), SecurityConcern: &sc,
		}) || found
	}
	if h.Status == httpNotFound {
		if n, crossed := e.probe(e.clients, ip, maphash.String(pathSeed, h.Path), e.opts.EnumerationThreshold, t); crossed {
			e.markScanner(ip, client.Name, t)
			sc := base
			sc.Type, sc.Count, sc.TargetEndpoint = ConcernEnumeration, uint64(n), h.Path
			found = e.concern(concernKey{typ: sc.Type, ip: ip}, t, Finding{
				Kind: KindSecurityConcern, Time: t, Severity: SeverityHigh, Subject: server, Example: exampleOf(x, id, server), SecurityConcern: &sc,
			}) || found
		}
	}
	return found
}

// portProbe counts a refused or reset port for a source and reports a port scan when the
// source reaches the threshold of distinct ports in the scan window.
func (e *Engine) portProbe(src netip.Addr, dst netip.AddrPort, client, server identity.Service, t time.Time) {
	src = src.Unmap()
	n, crossed := e.probe(e.sources, src, uint64(dst.Port()), e.opts.PortScanThreshold, t)
	if !crossed {
		return
	}
	e.concern(concernKey{typ: ConcernPortScan, ip: src}, t, Finding{
		Kind: KindSecurityConcern, Time: t, Severity: SeverityHigh, Subject: server,
		SecurityConcern: &SecurityConcern{
			Type: ConcernPortScan, SourceIP: src, SourceService: client.Name, DestService: server.Name,
			DestAddr: netip.AddrPortFrom(dst.Addr(), 0), Count: uint64(n),
		},
	})
}

// probe adds a distinct value for src in table and reports the distinct count and whether it
// has just reached threshold. The set stops growing at the threshold: memory per source is
// bounded by it.
func (e *Engine) probe(table *lru.Cache[netip.Addr, *scanState], src netip.Addr, v uint64, threshold int, t time.Time) (int, bool) {
	s, ok := table.Get(src)
	if !ok || t.Sub(s.start) > e.opts.ScanWindow {
		s = &scanState{start: t, distinct: make(map[uint64]struct{})}
		table.Put(src, s)
	}
	if len(s.distinct) >= threshold {
		return len(s.distinct), false
	}
	s.distinct[v] = struct{}{}
	return len(s.distinct), len(s.distinct) == threshold
}

// isPortScanner reports whether src was reported as a port scanner in the current scan window.
func (e *Engine) isPortScanner(src netip.Addr, now time.Time) bool {
	if !src.IsValid() {
		return false
	}
	last, ok := e.concerns.Peek(concernKey{typ: ConcernPortScan, ip: src.Unmap()})
	return ok && now.Sub(last) <= e.opts.ScanWindow
}

func (e *Engine) matchUserAgent(ua string) string {
	if ua == "" || len(e.uaPatterns) == 0 {
		return ""
	}
	if p, ok := e.uaCache[ua]; ok {
		return p
	}
	lower := strings.ToLower(ua)
	match := ""
	for _, p := range e.uaPatterns {
		if strings.Contains(lower, p) {
			match = p
			break
		}
	}
	if len(e.uaCache) >= maxUACache {
		clear(e.uaCache)
	}
	e.uaCache[ua] = match
	return match
}

func (e *Engine) matchEndpoint(path string) bool {
	for _, p := range e.endpointPatterns {
		if len(path) >= len(p) && strings.EqualFold(path[:len(p)], p) {
			return true
		}
	}
	return false
}
