package intel

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// word spells i in letters, so routes do not collapse into one template.
func word(i int) string {
	b := []byte{'r'}
	for ; i > 0; i /= 26 {
		b = append(b, byte('a'+i%26))
	}
	return string(b)
}

// TestMemoryBounded streams a million distinct clients and routes, with errors, 404s, slow
// requests, refused connects and DNS answers, and checks every table stays at its cap with
// its evictions counted.
func TestMemoryBounded(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 100_000
	}
	const capSize = 1000
	o := DefaultOptions()
	o.MaxEdges, o.MaxRoutes, o.MaxClients, o.DedupCapacity = capSize, capSize, capSize, capSize
	o.AllowedDependencies = [][2]string{{"*", "shop"}}
	// Zones with no allowed flow: every new pair of a client and a server is a violation.
	o.Zones = []Zone{{Name: "clients", Match: []ZoneMatch{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}},
		{Name: "servers", Match: []ZoneMatch{{Prefix: netip.MustParsePrefix("127.0.0.0/8")}}}}
	e := New(o)
	r := identity.New(identity.Options{ProcRoot: t.TempDir(), HostName: "h", MaxAddresses: capSize, MaxProcesses: capSize})

	x := &l7.Exchange{Protocol: l7.ProtocolHTTP1, Side: l7.SideServer, ClientISN: 1, ServerISN: 2, HTTP: &l7.HTTP{Method: "GET"}}
	dns := &l7.Exchange{Protocol: l7.ProtocolDNS, DNS: &l7.DNS{Name: "x.example", Answers: make([]netip.Addr, 1)}}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	findings := 0
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		x.Client.Addr = netip.AddrPortFrom(ip, 40000)
		x.Server.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i % 7)}), 8080)
		x.RequestSeq = uint32(i)
		x.Start, x.End = at, at.Add(time.Duration(1+i%50)*time.Millisecond)
		x.HTTP.Path = "/" + word(i)
		x.HTTP.Status = []int{200, 404, 500, 200}[i%4]
		x.HTTP.UserAgent = fmt.Sprint("agent/", i%10000)
		if i%50 == 0 {
			x.HTTP.UserAgent = "sqlmap/1.8"
		}
		if i%1000 == 999 {
			x.HTTP.Path = "/.env"
		}
		dns.DNS.Answers[0] = ip
		dns.DNS.Name = word(i) + ".example"
		r.Learn(dns)
		e.Exchange(x, r.Client(x), r.Server(x))
		if i%5 == 0 {
			ev := &capture.ConnEvent{Kind: capture.ConnFailed, Time: at, Reason: capture.FailureRefused,
				Socket: capture.Socket{Role: capture.RoleClient, Local: netip.AddrPortFrom(ip, 1), Remote: netip.AddrPortFrom(ip, uint16(i))}}
			c, s := r.ConnEnds(ev)
			e.Conn(ev, c, s)
		}
		if i%5 == 1 {
			// A connection to an external address that opens, stalls a handshake and closes
			// after a large upload.
			ext := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, byte(i >> 16), byte(i >> 8), byte(i)}), 443)
			sock := capture.Socket{Role: capture.RoleClient, Local: netip.AddrPortFrom(ip, 2), Remote: ext}
			for _, k := range []capture.ConnKind{capture.ConnOpened, capture.ConnHandshakeRetransmit, capture.ConnClosed} {
				ev := &capture.ConnEvent{Kind: k, Time: at, Socket: sock, BytesSent: 11 << 20}
				c, s := r.ConnEnds(ev)
				e.Conn(ev, c, s)
			}
		}
		if i%10000 == 0 {
			findings += len(e.Findings(at))
		}
	}
	findings += len(flushAll(e, t0.Add(time.Duration(n)*time.Millisecond)))

	c := e.Counters()
	t.Logf("engine counters: %+v", c)
	t.Logf("resolver counters: %+v", r.Counters())
	caps := map[string]uint64{"edges": c.Edges, "baselines": c.Baselines, "failing edges": c.FailingEdges,
		"clients": c.Clients, "scan sources": c.ScanSources, "concerns": c.Concerns, "scanners": c.Scanners,
		"exfiltration destinations": c.ExfilDestinations, "recent connects": c.RecentConnects}
	for name, v := range caps {
		if v > capSize {
			t.Errorf("%s: %d entries over the cap %d", name, v, capSize)
		}
	}
	if c.Episodes > 4*capSize { // four detectors keep episodes, each table at the cap
		t.Errorf("episodes: %d entries over the cap %d", c.Episodes, 4*capSize)
	}
	evictions := map[string]uint64{"edges": c.EdgesEvicted, "baselines": c.BaselinesEvicted, "failing edges": c.FailingEdgesEvicted,
		"clients": c.ClientsEvicted, "scan sources": c.ScanSourcesEvicted, "concerns": c.ConcernsEvicted, "scanners": c.ScannersEvicted,
		"error groups": c.ErrorGroupsDropped, "retry groups": c.RetryGroupsDropped, "conn failure groups": c.ConnFailureGroupsDropped,
		"dedup": c.DedupForgotten, "findings": c.FindingsDropped,
		"exfiltration destinations": c.ExfilDestinationsEvicted, "episodes": c.EpisodesEvicted,
		"recent connects": c.RecentConnectsEvicted, "pool groups": c.PoolGroupsDropped}
	for name, v := range evictions {
		if v == 0 {
			t.Errorf("%s: nothing evicted or dropped under %d distinct clients and routes", name, n)
		}
	}
	if len(e.errors.groups) != 0 || len(e.connFails.groups) != 0 || len(e.retries.groups) != 0 || len(e.chatty.calls) != 0 ||
		len(e.pool.edges) != 0 || len(e.exemplars.kept) != 0 || len(e.security.uaCache) > maxUACache || e.dedup.len() > capSize {
		t.Errorf("windowed tables not bounded: %d %d %d %d %d %d ua %d dedup %d", len(e.errors.groups), len(e.connFails.groups),
			len(e.retries.groups), len(e.chatty.calls), len(e.pool.edges), len(e.exemplars.kept), len(e.security.uaCache), e.dedup.len())
	}
	rc := r.Counters()
	if rc.DNSNames > capSize || rc.DNSNamesEvicted == 0 {
		t.Errorf("resolver DNS names not bounded: %+v", rc)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap growth after %d exchanges: %d KiB; %d findings", n, growth>>10, findings)
	if growth > 64<<20 {
		t.Errorf("heap grew by %d MiB", growth>>20)
	}
}
