//go:build linux && (amd64 || arm64)

package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"

	"github.com/netintel/netintelreceiver/bpf"
)

var (
	_ Judge   = (*ebpfSource)(nil)
	_ Stopper = (*ebpfSource)(nil)
)

// StopSocket asks the kernel to stop following the socket with this cookie.
func (s *ebpfSource) StopSocket(cookie uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.k == nil || cookie == 0 {
		return nil
	}
	if err := s.k.maps.Maps[bpf.NetintelMapStopRequests].Put(cookie, uint8(1)); err != nil {
		return fmt.Errorf("net_intel: stop socket %d: %w", cookie, err)
	}
	return nil
}

// SetJudging writes the judging settings into the kernel's runtime settings.
func (s *ebpfSource) SetJudging(j Judging) error {
	if len(j.Bounds) > MaxBounds {
		return fmt.Errorf("net_intel: %d histogram bounds; the kernel keeps at most %d", len(j.Bounds), MaxBounds)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.judging = j
	return s.writeSettingsLocked()
}

// writeSettingsLocked writes s.judging and what the limits and rules imply; s.mu is held.
func (s *ebpfSource) writeSettingsLocked() error {
	if s.k == nil {
		return nil
	}
	j := s.judging
	var v bpf.NetintelSettings
	if j.Aggregate {
		v.Aggregate = 1
	}
	if j.PairLocal {
		v.PairLocal = 1
	}
	v.ErrorStatus = uint16(min(max(j.ErrorStatus, 0), 0xffff))
	v.ErrorRecords = uint16(min(max(j.ErrorRecords, 0), 0xffff))
	v.SlowNs = uint64(j.Slow)
	if j.Slow <= 0 {
		v.SlowNs = ^uint64(0)
	}
	v.SampleThreshold = SampleThreshold(j.SampleProbability)
	for i, b := range j.Bounds {
		v.BoundsNs[i] = uint64(b)
	}
	v.RecoveryNs = uint64(max(j.Recovery, 0))
	if s.minLimit > 0 {
		v.HaveLimits = 1
		v.MinLimitNs = uint64(s.minLimit)
	}
	if s.rules > 0 {
		v.HaveRules = 1
		v.RuleFilter = s.ruleFilter
	}
	if err := s.k.maps.Maps[bpf.NetintelMapRuntimeSettings].Put(uint32(0), &v); err != nil {
		return fmt.Errorf("net_intel: write kernel judging settings: %w", err)
	}
	return nil
}

// SetRouteLimits replaces the kernel's per-route limits.
func (s *ebpfSource) SetRouteLimits(limits []RouteLimit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.k == nil {
		return nil
	}
	m := s.k.maps.Maps[bpf.NetintelMapRouteLimits]
	want := make(map[bpf.NetintelLimitKey]bpf.NetintelRouteLimit, len(limits))
	var smallest time.Duration
	for _, l := range limits {
		if l.Latency <= 0 {
			continue
		}
		want[bpf.NetintelLimitKey{Tgid: l.PID, Route: l.RouteKey}] = bpf.NetintelRouteLimit{LatencyNs: uint64(l.Latency)}
		if smallest == 0 || l.Latency < smallest {
			smallest = l.Latency
		}
	}
	if len(want) > int(m.MaxEntries()) {
		return fmt.Errorf("net_intel: %d route limits; the kernel keeps %d", len(want), m.MaxEntries())
	}
	if err := replaceMap(m, want); err != nil {
		return fmt.Errorf("net_intel: write route limits: %w", err)
	}
	s.minLimit = smallest
	return s.writeSettingsLocked()
}

// SetRouteRules replaces the kernel's route rules.
func (s *ebpfSource) SetRouteRules(rules []RouteRule) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.k == nil {
		return nil
	}
	m := s.k.maps.Maps[bpf.NetintelMapRouteRules]
	want := make(map[bpf.NetintelRuleKey]uint8, len(rules))
	var filter [4]uint64
	for _, r := range rules {
		k := bpf.NetintelRuleKey{Port: r.Port, Prefix: RouteKey(r.Prefix)}
		want[k] = 1
		bit := (k.Prefix ^ uint64(k.Port)) & 255
		filter[bit>>6] |= 1 << (bit & 63)
	}
	if len(want) > int(m.MaxEntries()) {
		return fmt.Errorf("net_intel: %d route rules; the kernel keeps %d", len(want), m.MaxEntries())
	}
	if err := replaceMap(m, want); err != nil {
		return fmt.Errorf("net_intel: write route rules: %w", err)
	}
	s.rules = len(want)
	s.ruleFilter = filter
	return s.writeSettingsLocked()
}

// replaceMap makes m hold exactly want: new and changed entries first, then stale ones deleted,
// so a lookup in between finds the old or the new value, never none.
func replaceMap[K comparable, V any](m *ebpf.Map, want map[K]V) error {
	for k, v := range want {
		if err := m.Put(k, v); err != nil {
			return err
		}
	}
	var k K
	var v V
	var stale []K
	it := m.Iterate()
	for it.Next(&k, &v) {
		if _, ok := want[k]; !ok {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}

// DrainHTTP1 reads and deletes every aggregate, each key in one step
// (BPF_MAP_LOOKUP_AND_DELETE_ELEM). A key's next exchange then finds no aggregate and is sent
// whole as its key's first, so routes, user agents and peers keep reaching user space every
// flush, and nothing is counted twice. An exchange counted by a program that found the key an
// instant before its deletion may be lost: a window of a few instructions.
func (s *ebpfSource) DrainHTTP1(fn func(*HTTP1Aggregate)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.k == nil {
		return nil
	}
	m := s.k.maps.Maps[bpf.NetintelMapAggregates]
	var keys []bpf.NetintelAggKey
	var k bpf.NetintelAggKey
	var cpus []bpf.NetintelAggValue // each CPU's copy of a key's value
	it := m.Iterate()
	for it.Next(&k, &cpus) {
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("net_intel: read HTTP/1 aggregates: %w", err)
	}
	var v bpf.NetintelAggValue
	for _, k := range keys {
		if err := m.LookupAndDelete(&k, &cpus); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			// Kernels without lookup-and-delete on hash maps: read, then delete.
			if err := m.Lookup(&k, &cpus); err != nil {
				continue
			}
			_ = m.Delete(&k)
		}
		sumCPUs(&v, cpus)
		if v.Count == 0 {
			continue // created by a first exchange, which was sent whole
		}
		fn(s.dec.aggregate(&k, &v))
	}
	return nil
}

// sumCPUs adds up the CPUs' copies of one aggregate into v; the key was created, and its
// first exchange sent, on the CPU whose copy has a creation time.
func sumCPUs(v *bpf.NetintelAggValue, cpus []bpf.NetintelAggValue) {
	*v = bpf.NetintelAggValue{}
	for i := range cpus {
		c := &cpus[i]
		v.Count += c.Count
		v.SumNs += c.SumNs
		if c.FirstNs != 0 && (v.FirstNs == 0 || c.FirstNs < v.FirstNs) {
			v.FirstNs = c.FirstNs
		}
		for b, n := range c.Latency {
			v.Latency[b] += n
		}
		for b, n := range c.Explicit {
			v.Explicit[b] += n
		}
	}
}

// aggregateEntries is how many keys the per-CPU aggregates hold: 4096, fewer on a node with so
// many CPUs that 4096 live keys would take more than 64 MiB. A key that finds the table full
// is sent whole instead (netintel.receiver.kernel{item=aggregates_full}).
func aggregateEntries(valueSize, cpus int) uint32 {
	const most, least, budget = 4096, 512, 64 << 20
	n := budget / max(valueSize*cpus, 1)
	return uint32(min(max(n, least), most))
}

func (d *decoder) aggregate(k *bpf.NetintelAggKey, v *bpf.NetintelAggValue) *HTTP1Aggregate {
	a := &HTTP1Aggregate{
		PID:      k.Tgid,
		Role:     Role(k.Role),
		Port:     k.Port,
		PeerPort: k.PeerPort,
		PeerPID:  k.PeerTgid,
		Paired:   k.Paired != 0 && Role(k.Role) == RoleServer,
		Method:   methodName(k.Method),
		Status:   int(k.Status),
		Version:  "1.1",
		RouteKey: k.Route,
		Count:    v.Count,
		Sum:      time.Duration(v.SumNs),
		First:    d.time(v.FirstNs),
	}
	if k.Version == 0 {
		a.Version = "1.0"
	}
	switch k.Family {
	case afInet:
		a.Peer = netip.AddrFrom4([4]byte(k.Peer[:4]))
		a.Local = netip.AddrFrom4([4]byte(k.Local[:4]))
	case afInet6:
		a.Peer = netip.AddrFrom16(k.Peer).Unmap()
		a.Local = netip.AddrFrom16(k.Local).Unmap()
	}
	if a.Role != RoleServer {
		a.Local = netip.Addr{}
	}
	for i, c := range v.Latency {
		a.Latency[i] = uint64(c)
	}
	for i, c := range v.Explicit {
		a.Explicit[i] = uint64(c)
	}
	return a
}
