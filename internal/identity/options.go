package identity

import (
	"fmt"
	"net/netip"
	"strings"
)

// Defaults for the caches when Options leaves a size at zero.
const (
	DefaultMaxProcesses = 4096
	DefaultMaxAddresses = 65536
	// DefaultMaxCgroups bounds the cgroup and container tables: well above the pods of a
	// node (110 by default in Kubernetes), each with a few containers.
	DefaultMaxCgroups = 4096
	// maxCgroupDirs bounds one walk of the cgroup hierarchy.
	maxCgroupDirs = 32768
)

// StaticService maps an address to a service name (config `services`). Exactly one of Prefix
// and AddrPort is set.
type StaticService struct {
	Name     string
	Prefix   netip.Prefix   // a network: every address in it, any port
	AddrPort netip.AddrPort // one listening address
}

// Options configure a Resolver. The receiver maps its YAML config onto it.
type Options struct {
	Services []StaticService
	HostName string // host.name; os.Hostname() when empty
	// HostRoot is where the node's root filesystem is seen: "/" (the default) when the
	// collector runs on the node, "/host" in the DaemonSet, which mounts there the host
	// paths naming reads: /proc, /sys/fs/cgroup and the container runtimes' state.
	HostRoot string
	// DockerDataRoot is dockerd's --data-root on the node, under HostRoot
	// (DefaultDockerDataRoot when empty).
	DockerDataRoot string

	// The paths below default to their place under HostRoot; tests point them at fake trees.
	ProcRoot        string   // <HostRoot>/proc
	CgroupRoot      string   // <HostRoot>/sys/fs/cgroup
	ContainerdState []string // dirs of <namespace>/<id>/config.json (containerd's runc shim bundles)
	CRIOState       []string // dirs of <id>/userdata/config.json

	// MaxProcesses bounds the per-pid process cache.
	MaxProcesses int
	// MaxAddresses bounds each address table: listening addresses, local client sockets,
	// DNS-observed names and TLS server names.
	MaxAddresses int
	// MaxCgroups bounds the per-cgroup table and the per-container table.
	MaxCgroups int
}

// ParseMatch parses the address side of a static service mapping: "ip:port", a CIDR, or a
// bare IP (taken as /32 or /128). The returned StaticService has no Name.
func ParseMatch(s string) (StaticService, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return StaticService{}, fmt.Errorf("empty address: want ip:port, a CIDR (10.0.0.0/8) or an IP")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return StaticService{}, fmt.Errorf("%q is not a valid CIDR: %v", s, err)
		}
		return StaticService{Prefix: p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return StaticService{Prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return StaticService{}, fmt.Errorf("%q is neither ip:port ([::1]:8080 for IPv6), a CIDR nor an IP: %v", s, err)
	}
	if ap.Port() == 0 {
		return StaticService{}, fmt.Errorf("%q has port 0: give the port the service listens on, or a CIDR", s)
	}
	return StaticService{AddrPort: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// staticMap answers "which configured service owns this address": an exact ip:port first,
// then the longest matching prefix.
type staticMap struct {
	exact    map[netip.AddrPort]string
	prefixes []StaticService // longest first
}

func newStaticMap(services []StaticService) staticMap {
	m := staticMap{exact: make(map[netip.AddrPort]string)}
	for _, s := range services {
		switch {
		case s.AddrPort.IsValid():
			ap := netip.AddrPortFrom(s.AddrPort.Addr().Unmap(), s.AddrPort.Port())
			if _, dup := m.exact[ap]; !dup {
				m.exact[ap] = s.Name
			}
		case s.Prefix.IsValid():
			m.prefixes = append(m.prefixes, StaticService{Name: s.Name, Prefix: s.Prefix.Masked()})
		}
	}
	// Stable insertion sort by prefix length, longest first: the most specific mapping wins
	// and, among equals, the first configured one.
	for i := 1; i < len(m.prefixes); i++ {
		for j := i; j > 0 && m.prefixes[j].Prefix.Bits() > m.prefixes[j-1].Prefix.Bits(); j-- {
			m.prefixes[j], m.prefixes[j-1] = m.prefixes[j-1], m.prefixes[j]
		}
	}
	return m
}

func (m *staticMap) empty() bool { return len(m.exact) == 0 && len(m.prefixes) == 0 }

func (m *staticMap) exactName(ap netip.AddrPort) (string, bool) {
	if len(m.exact) == 0 {
		return "", false
	}
	n, ok := m.exact[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())]
	return n, ok
}

func (m *staticMap) prefixName(a netip.Addr) (string, bool) {
	a = a.Unmap()
	for _, p := range m.prefixes {
		if p.Prefix.Contains(a) {
			return p.Name, true
		}
	}
	return "", false
}

func (m *staticMap) lookup(ap netip.AddrPort) (string, bool) {
	if n, ok := m.exactName(ap); ok {
		return n, true
	}
	return m.prefixName(ap.Addr())
}
