package intel

import (
	"hash/maphash"
	"net/netip"
	"strings"
	"time"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/lru"
)

// httpNotFound is the status whose distinct paths count towards endpoint enumeration.
const httpNotFound = 404

// maxUACache bounds the memo of user agents already matched (clients repeat theirs).
const maxUACache = 4096

// securityDetector raises security_concern findings from requests (scanner user agents,
// sensitive endpoints, endpoint enumeration) and from refused ports (port scans). Health
// probes are never a concern. Each concern is reported once per (type, source[, endpoint])
// per scan window, and every concern a request raises is reported, whatever else it raised.
type securityDetector struct {
	e         *Engine
	uas       []string // lower case
	health    []string // lower case prefixes
	endpoints []endpointPattern
	uaCache   map[string]uaVerdict

	clients  *lru.Cache[netip.Addr, *scanState] // 404 paths per client (enumeration)
	sources  *lru.Cache[netip.Addr, *scanState] // refused/reset ports per source (port scan)
	concerns *lru.Cache[concernKey, time.Time]  // last report per (type, source)
	scanners *lru.Cache[scannerKey, time.Time]  // clients seen scanning, when
}

// uaVerdict is what a user agent is: a health checker, a scanner (its pattern), or neither.
type uaVerdict struct {
	health  bool
	scanner string
}

// endpointPattern is a sensitive path by segments; a dotfile pattern matches at any depth.
type endpointPattern struct {
	text    string // as configured, lower case
	prefix  string // its segments joined by "/", with a leading "/": what a path must start with
	anyDeep bool   // a single dotfile segment ("/.env"): matches any segment of the path
}

// concernKey is what one security concern is reported once per ScanWindow for.
type concernKey struct {
	typ      ConcernType
	ip       netip.Addr
	source   string
	endpoint string // the sensitive endpoint pattern, for suspicious_endpoint
}

// scannerKey is a client seen scanning: its address and its name, because on one node many
// clients share 127.0.0.1 and only the scanning one should be set apart.
type scannerKey struct {
	ip     netip.Addr
	client string
}

// scanState counts distinct probes (404 paths, refused ports) from one source in a window.
type scanState struct {
	start    time.Time
	distinct map[uint64]struct{} // capped at the threshold
}

var pathSeed = maphash.MakeSeed()

func newSecurityDetector(e *Engine) *securityDetector {
	s := &securityDetector{
		e:        e,
		uaCache:  make(map[string]uaVerdict),
		clients:  lru.New[netip.Addr, *scanState](e.opts.MaxClients),
		sources:  lru.New[netip.Addr, *scanState](e.opts.MaxClients),
		concerns: lru.New[concernKey, time.Time](e.opts.MaxClients),
		scanners: lru.New[scannerKey, time.Time](e.opts.MaxClients),
	}
	for _, p := range e.opts.SuspiciousUserAgents {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			s.uas = append(s.uas, p)
		}
	}
	for _, p := range e.opts.HealthCheckUserAgents {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			s.health = append(s.health, p)
		}
	}
	for _, p := range e.opts.SuspiciousEndpoints {
		if ep, ok := parseEndpointPattern(p); ok {
			s.endpoints = append(s.endpoints, ep)
		}
	}
	return s
}

func parseEndpointPattern(p string) (endpointPattern, bool) {
	p = strings.ToLower(strings.TrimSpace(p))
	segs := pathSegments(p)
	if len(segs) == 0 {
		return endpointPattern{}, false
	}
	return endpointPattern{text: p, prefix: "/" + strings.Join(segs, "/"), anyDeep: len(segs) == 1 && strings.HasPrefix(segs[0], ".")}, true
}

// pathSegments splits a path into its non-empty segments.
func pathSegments(path string) []string {
	var segs []string
	for _, s := range strings.Split(path, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	return segs
}

// matchEndpoint returns the sensitive pattern a path matches, "" for none: the pattern's
// segments equal the path's first segments ("/admin" matches "/admin" and "/admin/users",
// never "/administration"); a single dotfile segment ("/.env", "/.git") matches at any depth
// ("/app/.env"), where scanners look for it. Every request goes through it: it allocates
// nothing for paths without empty segments.
func (s *securityDetector) matchEndpoint(path string) string {
	if len(s.endpoints) == 0 || path == "" {
		return ""
	}
	if strings.Contains(path, "//") || path[0] != '/' {
		path = "/" + strings.Join(pathSegments(path), "/") // empty segments do not count
	}
	dotted := strings.Contains(path, "/.") // only then can a dotfile pattern match
	for _, p := range s.endpoints {
		if p.anyDeep {
			if dotted && hasSegmentFold(path, p.prefix[1:]) {
				return p.text
			}
			continue
		}
		if len(path) >= len(p.prefix) && strings.EqualFold(path[:len(p.prefix)], p.prefix) &&
			(len(path) == len(p.prefix) || path[len(p.prefix)] == '/') {
			return p.text
		}
	}
	return ""
}

// hasSegmentFold reports whether one segment of path equals seg, ignoring case.
func hasSegmentFold(path, seg string) bool {
	for start := 0; start < len(path); {
		end := strings.IndexByte(path[start:], '/')
		if end < 0 {
			end = len(path)
		} else {
			end += start
		}
		if end-start == len(seg) && strings.EqualFold(path[start:end], seg) {
			return true
		}
		start = end + 1
	}
	return false
}

func (s *securityDetector) userAgent(ua string) uaVerdict {
	if ua == "" {
		return uaVerdict{}
	}
	if v, ok := s.uaCache[ua]; ok {
		return v
	}
	lower := strings.ToLower(ua)
	var v uaVerdict
	for _, p := range s.health {
		if strings.HasPrefix(lower, p) {
			v.health = true
			break
		}
	}
	if !v.health {
		for _, p := range s.uas {
			if strings.Contains(lower, p) {
				v.scanner = p
				break
			}
		}
	}
	if len(s.uaCache) >= maxUACache {
		clear(s.uaCache)
	}
	s.uaCache[ua] = v
	return v
}

// markScanner sets a client apart for ScanWindow: its 404s and errors are the scan's, not the
// service's, so they feed neither error patterns, retry storms nor baselines.
func (s *securityDetector) markScanner(ip netip.Addr, client string, t time.Time) {
	s.scanners.Put(scannerKey{ip, client}, t)
}

func (s *securityDetector) isScanning(ip netip.Addr, client string, t time.Time) bool {
	if s.scanners.Len() == 0 {
		return false
	}
	last, ok := s.scanners.Peek(scannerKey{ip, client})
	return ok && t.Sub(last) <= s.e.opts.ScanWindow
}

// concern emits f unless k was reported in the current scan window.
func (s *securityDetector) concern(k concernKey, t time.Time, f Finding) bool {
	if last, ok := s.concerns.Get(k); ok && t.Sub(last) < s.e.opts.ScanWindow {
		s.e.c.ConcernsSuppressed++
		return false
	}
	s.concerns.Put(k, t)
	s.e.emit(f)
	return true
}

// exchange looks at an HTTP exchange for scanners and probes. It reports whether a finding
// was emitted.
func (s *securityDetector) exchange(ob *observation) bool {
	x := ob.x
	if x.HTTP == nil {
		return false
	}
	h := x.HTTP
	ip := ob.clientIP
	t := ob.t
	v := s.userAgent(h.UserAgent)
	if v.health {
		s.e.c.HealthProbes++
		return false
	}
	found := false
	base := SecurityConcern{SourceIP: ip, SourceService: ob.client.Name, DestService: ob.server.Name, DestAddr: x.Server.Addr, UserAgent: h.UserAgent}
	report := func(k concernKey, sev Severity, sc SecurityConcern) {
		if s.concern(k, t, Finding{Kind: KindSecurityConcern, Time: t, Severity: sev, Subject: ob.server, Example: ob.example(), SecurityConcern: &sc}) {
			found = true
		}
	}
	if v.scanner != "" {
		s.markScanner(ip, ob.client.Name, t)
		sc := base
		sc.Type, sc.Count, sc.TargetEndpoint = ConcernSuspiciousUserAgent, 1, ob.out.route
		report(concernKey{typ: sc.Type, ip: ip, source: ob.client.Name}, SeverityMedium, sc)
	}
	if p := s.matchEndpoint(h.Path); p != "" {
		sc := base
		sc.Type, sc.Count, sc.TargetEndpoint = ConcernSuspiciousEndpoint, 1, h.Path
		sev := SeverityMedium
		if h.Status >= 200 && h.Status < 300 {
			sev = SeverityHigh // the probe got an answer: something is exposed
		}
		report(concernKey{typ: sc.Type, ip: ip, source: ob.client.Name, endpoint: p}, sev, sc)
	}
	if h.Status == httpNotFound {
		if n, crossed := s.probe(s.clients, ip, maphash.String(pathSeed, h.Path), s.e.opts.EnumerationThreshold, t); crossed {
			s.markScanner(ip, ob.client.Name, t)
			sc := base
			sc.Type, sc.Count, sc.TargetEndpoint = ConcernEnumeration, uint64(n), h.Path
			report(concernKey{typ: sc.Type, ip: ip}, SeverityHigh, sc)
		}
	}
	return found
}

// portProbe counts a refused or reset port for a source and reports a port scan when the
// source reaches the threshold of distinct ports in the scan window.
func (s *securityDetector) portProbe(src netip.Addr, dst netip.AddrPort, client, server identity.Service, t time.Time) {
	src = src.Unmap()
	n, crossed := s.probe(s.sources, src, uint64(dst.Port()), s.e.opts.PortScanThreshold, t)
	if !crossed {
		return
	}
	s.concern(concernKey{typ: ConcernPortScan, ip: src}, t, Finding{
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
func (s *securityDetector) probe(table *lru.Cache[netip.Addr, *scanState], src netip.Addr, v uint64, threshold int, t time.Time) (int, bool) {
	st, ok := table.Get(src)
	if !ok || t.Sub(st.start) > s.e.opts.ScanWindow {
		st = &scanState{start: t, distinct: make(map[uint64]struct{})}
		table.Put(src, st)
	}
	if len(st.distinct) >= threshold {
		return len(st.distinct), false
	}
	st.distinct[v] = struct{}{}
	return len(st.distinct), len(st.distinct) == threshold
}

// isPortScanner reports whether src was reported as a port scanner in the current scan window.
func (s *securityDetector) isPortScanner(src netip.Addr, now time.Time) bool {
	if !src.IsValid() {
		return false
	}
	last, ok := s.concerns.Peek(concernKey{typ: ConcernPortScan, ip: src.Unmap()})
	return ok && now.Sub(last) <= s.e.opts.ScanWindow
}
