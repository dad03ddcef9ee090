package intel

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
)

// Zone is a named set of endpoints (security.zones).
type Zone struct {
	Name  string
	Match []ZoneMatch
}

// ZoneMatch is one entry of a zone: a network, one listening address, or a service name.
type ZoneMatch struct {
	Prefix   netip.Prefix
	AddrPort netip.AddrPort
	Service  string
}

// ParseZoneMatch parses a `security.zones[].match` entry: a CIDR, an IP, an ip:port, or a
// service name. Anything that looks like an address must be a valid one, so that a typo in
// an address is an error rather than a service name that never matches.
func ParseZoneMatch(s string) (ZoneMatch, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return ZoneMatch{}, fmt.Errorf("empty match: want a CIDR (10.0.0.0/8), an IP, ip:port or a service name")
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return ZoneMatch{Prefix: p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return ZoneMatch{Prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return ZoneMatch{}, fmt.Errorf("%q has port 0: give the port the service listens on, or a CIDR", s)
		}
		return ZoneMatch{AddrPort: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
	}
	if looksLikeAddress(s) {
		return ZoneMatch{}, fmt.Errorf("%q is not a valid CIDR, IP or ip:port (a service name has no '/' or ':' and does not start with a digit)", s)
	}
	return ZoneMatch{Service: s}, nil
}

func looksLikeAddress(s string) bool {
	return strings.ContainsAny(s, "/:[") || (s[0] >= '0' && s[0] <= '9')
}

// segmentation raises segmentation_violation concerns: a flow from one zone to another that
// security.allowed_zone_flows does not allow, from exchanges, kernel batches and opened
// connections alike (any TCP connection is a flow, parsed or not). Endpoints in no zone and
// flows inside a zone are not judged. Each (zones, services) flow is reported once per
// episode.
type segmentation struct {
	e        *Engine
	allowed  map[[2]string]bool
	reported *episodes
}

func newSegmentation(e *Engine) *segmentation {
	s := &segmentation{e: e, allowed: make(map[[2]string]bool), reported: newEpisodes(e.opts.ReportAgainAfter, e.opts.MaxEdges)}
	for _, f := range e.opts.AllowedZoneFlows {
		s.allowed[f] = true
	}
	return s
}

// zoneOf is the first zone (in configured order) that names an endpoint: by its service
// name, its ip:port, or a network holding its address.
func (s *segmentation) zoneOf(svc identity.Service, addr netip.AddrPort) string {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	for _, z := range s.e.opts.Zones {
		for _, m := range z.Match {
			switch {
			case m.Service != "":
				if m.Service == svc.Name {
					return z.Name
				}
			case m.AddrPort.IsValid():
				if m.AddrPort == addr {
					return z.Name
				}
			case m.Prefix.IsValid():
				if addr.Addr().IsValid() && m.Prefix.Contains(addr.Addr()) {
					return z.Name
				}
			}
		}
	}
	return ""
}

func (s *segmentation) allowedFlow(src, dst string) bool {
	return src == dst || s.allowed[[2]string{src, dst}] || s.allowed[[2]string{src, "*"}] ||
		s.allowed[[2]string{"*", dst}] || s.allowed[[2]string{"*", "*"}]
}

// judge reports a flow between two endpoints when it crosses zones it may not.
func (s *segmentation) judge(client identity.Service, caddr netip.AddrPort, server identity.Service, saddr netip.AddrPort, t time.Time, ob *observation) bool {
	if len(s.e.opts.Zones) == 0 {
		return false
	}
	src := s.zoneOf(client, caddr)
	if src == "" {
		return false
	}
	dst := s.zoneOf(server, saddr)
	if dst == "" || s.allowedFlow(src, dst) {
		return false
	}
	if !s.reported.fresh(episodeKey(src, dst, client.Name, server.Name), t) {
		return false
	}
	var ex *ExchangeRef
	if ob != nil {
		ex = ob.example()
	}
	s.e.emit(Finding{
		Kind: KindSecurityConcern, Time: t, Severity: SeverityHigh, Subject: server, Example: ex,
		SecurityConcern: &SecurityConcern{
			Type: ConcernSegmentation, SourceIP: caddr.Addr().Unmap(), SourceService: client.Name,
			DestService: server.Name, DestAddr: saddr, Count: 1, SourceZone: src, DestZone: dst,
		},
	})
	return true
}

func (s *segmentation) exchange(ob *observation) bool {
	return s.judge(ob.client, ob.x.Client.Addr, ob.server, ob.x.Server.Addr, ob.t, ob)
}

func (s *segmentation) aggregate(b *batch) bool {
	return s.judge(b.client, b.a.Client.Addr, b.server, b.a.Server.Addr, b.t, nil)
}

// conn judges an opened connection: a flow even when nothing on it is parsed.
func (s *segmentation) conn(ev *capture.ConnEvent, client, server identity.Service) {
	sk := ev.Socket
	caddr, saddr := sk.Local, sk.Remote
	switch sk.Role {
	case capture.RoleClient:
	case capture.RoleServer:
		caddr, saddr = sk.Remote, sk.Local
	default:
		return
	}
	s.judge(client, caddr, server, saddr, ev.Time, nil)
}
