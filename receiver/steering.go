package receiver

import (
	"net/netip"
	"strings"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/intel"
	"github.com/netintel/netintelreceiver/internal/l7"
	"github.com/netintel/netintelreceiver/internal/route"
)

// steering is the pipeline's side of the kernel's judging (DESIGN §2): what user space learns
// flows down — the latency above which a route's exchange must still cross (intel's baselines),
// and which path segments are identifiers (the route learner) — and the aggregates of what the
// kernel only counted flow up each flush, named like the exchanges they stand for.
type steering struct {
	judge capture.Judge

	// What the kernel's keys mean, learned from the exchanges that crossed (every key's first
	// exchange crosses, each flush).
	routes   map[uint64]string         // kernel route key → route template
	hosts    map[netip.AddrPort]string // server address a client dialled → the Host it named
	services map[string]*serviceAtNode // server service → its pids and ports here

	lastDrain time.Time
	limits    []capture.RouteLimit
	rules     []capture.RouteRule

	counters steeringCounters
}

// steeringCounters: what the kernel counted that user space could not fully name.
type steeringCounters struct {
	full    uint64 // entries refused by a full table (routes, hosts, services, pids)
	unknown uint64 // exchanges of aggregates whose route key no exchange named: counted as /{unknown}
}

// serviceAtNode is where a local server service runs: its processes and ports.
type serviceAtNode struct {
	pids   map[uint32]bool
	ports  map[uint16]bool
	routes map[string][]uint64 // route template → the kernel keys that name it
}

// Bounds of steering's tables: beyond them, new entries are refused and counted (an aggregate
// of a key never named is counted under /{unknown}, one of a server never named without Host).
const (
	maxSteeringRoutes   = 16384
	maxSteeringServices = 1024
	maxServicePIDs      = 64
)

func newSteering(src capture.Source) *steering {
	j, _ := src.(capture.Judge)
	return &steering{judge: j, routes: map[uint64]string{}, hosts: map[netip.AddrPort]string{}, services: map[string]*serviceAtNode{}}
}

// learn notes what a kernel-judged exchange tells about the kernel's keys.
func (s *steering) learn(x *l7.Exchange, server identity.Service) {
	if s.judge == nil || x.KernelRoute == 0 || x.HTTP == nil {
		return
	}
	if _, ok := s.routes[x.KernelRoute]; !ok && len(s.routes) >= maxSteeringRoutes {
		s.counters.full++
		return
	}
	s.routes[x.KernelRoute] = x.HTTP.Route
	if x.Side == l7.SideClient && x.HTTP.Host != "" {
		if _, ok := s.hosts[x.Server.Addr]; ok || len(s.hosts) < maxSteeringRoutes {
			s.hosts[x.Server.Addr] = x.HTTP.Host
		} else {
			s.counters.full++
		}
	}
	if x.Side != l7.SideServer || !server.Local {
		return
	}
	at := s.services[server.Name]
	if at == nil {
		if len(s.services) >= maxSteeringServices {
			s.counters.full++
			return
		}
		at = &serviceAtNode{pids: map[uint32]bool{}, ports: map[uint16]bool{}, routes: map[string][]uint64{}}
		s.services[server.Name] = at
	}
	if pid := x.Server.Process.PID; pid != 0 && !at.pids[pid] {
		if len(at.pids) < maxServicePIDs {
			at.pids[pid] = true
		} else {
			s.counters.full++
		}
	}
	at.ports[x.Server.Addr.Port()] = true
	keys := at.routes[x.HTTP.Route]
	for _, k := range keys {
		if k == x.KernelRoute {
			return
		}
	}
	at.routes[x.HTTP.Route] = append(keys, x.KernelRoute)
}

// host is the Host the client-side exchanges to a server address named ("" when none did).
func (s *steering) host(server netip.AddrPort) string { return s.hosts[server] }

// route names a kernel route key ("" when no exchange of it was seen).
func (s *steering) route(key uint64) string { return s.routes[key] }

// drain hands every kernel aggregate to fn as an l7.Aggregate with its route.
func (s *steering) drain(t *l7.Tracker, now time.Time, fn func(*l7.Aggregate)) error {
	if s.judge == nil {
		return nil
	}
	start := s.lastDrain
	if start.IsZero() {
		start = now
	}
	s.lastDrain = now
	return s.judge.DrainHTTP1(func(ka *capture.HTTP1Aggregate) {
		a := t.Aggregate(ka, start, now)
		a.Route = s.route(ka.RouteKey)
		if a.Route == "" {
			a.Route = unknownRoute
			s.counters.unknown += a.Count
		}
		if a.Side == l7.SideClient {
			a.Host = s.host(a.Server.Addr)
		}
		fn(a)
	})
}

// unknownRoute names the exchanges of a kernel route key whose first exchange user space never
// saw (its record was lost): counted, not guessed.
const unknownRoute = "/{unknown}"

// push writes intel's route limits and the learner's identifier rules into the kernel, when
// they changed.
func (s *steering) push(thresholds []intel.RouteThreshold, rules []route.Rule) error {
	if s.judge == nil {
		return nil
	}
	var limits []capture.RouteLimit
	for _, th := range thresholds {
		at := s.services[th.Dest]
		if at == nil {
			continue
		}
		for _, key := range at.routes[th.Route] {
			for pid := range at.pids {
				limits = append(limits, capture.RouteLimit{PID: pid, RouteKey: key, Latency: th.Threshold})
			}
		}
	}
	var kr []capture.RouteRule
	for _, r := range rules {
		at := s.services[r.Service]
		// A rule that keeps some literals would make the kernel merge what user space keeps
		// apart: only whole-position rules go down.
		if at == nil || len(r.Keep) > 0 {
			continue
		}
		prefix := r.Prefix
		if !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		for port := range at.ports {
			kr = append(kr, capture.RouteRule{Port: port, Prefix: prefix})
		}
	}
	var err error
	if !sameLimits(limits, s.limits) {
		if err = s.judge.SetRouteLimits(limits); err == nil {
			s.limits = limits
		}
	}
	if !sameRules(kr, s.rules) {
		if rerr := s.judge.SetRouteRules(kr); rerr == nil {
			s.rules = kr
		} else if err == nil {
			err = rerr
		}
	}
	return err
}

func sameLimits(a, b []capture.RouteLimit) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[capture.RouteLimit]bool, len(b))
	for _, l := range b {
		seen[l] = true
	}
	for _, l := range a {
		if !seen[l] {
			return false
		}
	}
	return true
}

func sameRules(a, b []capture.RouteRule) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[capture.RouteRule]bool, len(b))
	for _, r := range b {
		seen[r] = true
	}
	for _, r := range a {
		if !seen[r] {
			return false
		}
	}
	return true
}
