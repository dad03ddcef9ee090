package intel

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

func zones(t *testing.T, spec map[string][]string, order ...string) []Zone {
	t.Helper()
	var out []Zone
	for _, name := range order {
		z := Zone{Name: name}
		for _, m := range spec[name] {
			zm, err := ParseZoneMatch(m)
			if err != nil {
				t.Fatal(err)
			}
			z.Match = append(z.Match, zm)
		}
		out = append(out, z)
	}
	return out
}

func segmentationEngine(t *testing.T) *Engine {
	return testEngine(func(o *Options) {
		o.Zones = zones(t, map[string][]string{
			"web": {"web", "10.1.0.0/16"},
			"app": {"127.0.15.81:8080", "orders"},
			"db":  {"127.0.15.82"},
		}, "web", "app", "db")
		o.AllowedZoneFlows = [][2]string{{"web", "app"}, {"app", "db"}}
	})
}

func (s *stream) between(e *Engine, from, client, to, server string, at time.Duration) {
	x := s.http(client, server, "GET", "/", 200, t0.Add(at), time.Millisecond)
	e.Exchange(x, svc(from), svc(to))
}

func TestSegmentationViolation(t *testing.T) {
	e := segmentationEngine(t)
	var s stream
	// web → app and app → db are allowed; web → db is not, named by service and address.
	s.between(e, "web", "127.0.0.1:40000", "catalog", "127.0.15.81:8080", 0)
	s.between(e, "orders", "127.0.0.1:40001", "ledger", "127.0.15.82:5432", 0)
	s.between(e, "web", "127.0.0.1:40002", "ledger", "127.0.15.82:5432", time.Second)
	s.between(e, "web", "127.0.0.1:40003", "ledger", "127.0.15.82:5432", 2*time.Second)
	fs := concerns(e.Findings(t0.Add(10*time.Second)), ConcernSegmentation)
	requireLen(t, "web -> db", fs, 1)
	c := fs[0].SecurityConcern
	if c.SourceZone != "web" || c.DestZone != "db" || c.SourceService != "web" || c.DestService != "ledger" ||
		c.DestAddr != netip.MustParseAddrPort("127.0.15.82:5432") || fs[0].Severity != SeverityHigh || fs[0].Example == nil {
		t.Fatalf("concern = %+v", c)
	}
	// A TCP connection nobody parsed is a flow too: a remote client of zone web (by CIDR)
	// connecting to the database.
	e.Conn(connEv(capture.ConnOpened, capture.RoleServer, "127.0.15.82:5432", "10.1.4.4:50000", 20*time.Second), remoteSvc("10.1.4.4"), svc("ledger"))
	fs = concerns(e.Findings(t0.Add(30*time.Second)), ConcernSegmentation)
	requireLen(t, "raw connection", fs, 1)
	if c := fs[0].SecurityConcern; c.SourceZone != "web" || c.SourceIP != netip.MustParseAddr("10.1.4.4") || fs[0].Example != nil {
		t.Fatalf("connection concern = %+v", c)
	}

	// Healthy twins: allowed flows, flows inside one zone, and endpoints in no zone.
	h := segmentationEngine(t)
	s.between(h, "web", "127.0.0.1:40000", "catalog", "127.0.15.81:8080", 0)
	s.between(h, "orders", "127.0.0.1:40001", "ledger", "127.0.15.82:5432", 0)
	s.between(h, "web", "127.0.0.1:40002", "web", "10.1.0.9:80", 0)
	s.between(h, "curl", "127.0.0.1:40003", "ledger", "127.0.15.82:5432", 0)
	s.between(h, "web", "127.0.0.1:40004", "search", "127.0.15.99:80", 0)
	requireLen(t, "allowed flows", kinds(h.Findings(t0.Add(time.Minute)), KindSecurityConcern), 0)
}

func TestParseZoneMatch(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ZoneMatch
		err  bool
	}{
		{in: "10.0.0.0/8", want: ZoneMatch{Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
		{in: "10.1.2.3/16", want: ZoneMatch{Prefix: netip.MustParsePrefix("10.1.0.0/16")}},
		{in: "192.168.1.7", want: ZoneMatch{Prefix: netip.MustParsePrefix("192.168.1.7/32")}},
		{in: "[::1]:8080", want: ZoneMatch{AddrPort: netip.MustParseAddrPort("[::1]:8080")}},
		{in: "127.0.15.81:8080", want: ZoneMatch{AddrPort: netip.MustParseAddrPort("127.0.15.81:8080")}},
		{in: " checkout ", want: ZoneMatch{Service: "checkout"}},
		{in: "clients of web", want: ZoneMatch{Service: "clients of web"}},
		{in: "10.0.0.300", err: true},
		{in: "10.0.0.0/33", err: true},
		{in: "10.0.0.1:0", err: true},
		{in: "db:5432", err: true},
		{in: "", err: true},
	} {
		got, err := ParseZoneMatch(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParseZoneMatch(%q) = %+v, %v", tc.in, got, err)
		}
	}
	if src, dst, err := ParseZoneFlow("web -> app"); err != nil || src != "web" || dst != "app" {
		t.Errorf("ParseZoneFlow = %q %q %v", src, dst, err)
	}
	if _, _, err := ParseZoneFlow("web app"); err == nil {
		t.Error("ParseZoneFlow accepted a flow without ->")
	}
}
