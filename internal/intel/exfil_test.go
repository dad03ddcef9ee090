package intel

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// upload is a closed client connection that sent n bytes.
func upload(e *Engine, from, dest string, n uint64, at time.Duration) {
	ev := connEv(capture.ConnClosed, capture.RoleClient, "10.0.0.1:40000", dest, at)
	ev.BytesSent, ev.BytesReceived = n, 200
	e.Conn(ev, svc(from), remoteSvc(dest))
}

func TestDataExfiltration(t *testing.T) {
	e := testEngine(nil)
	upload(e, "backup-agent", "198.51.100.2:9000", 30<<20, 0)
	fs := kinds(e.Findings(t0.Add(time.Second)), KindDataExfiltration)
	requireLen(t, "30 MB to an external address", fs, 1)
	x := fs[0].Exfiltration
	if x.Source != "backup-agent" || x.Dest != "198.51.100.2:9000" || x.DestAddr != netip.MustParseAddrPort("198.51.100.2:9000") ||
		x.BytesSent != 30<<20 || x.BaselineBytes != 0 || fs[0].Severity != SeverityHigh || fs[0].Subject.Name != "backup-agent" {
		t.Fatalf("exfiltration = %+v", x)
	}
	// The same upload every hour is its own baseline after the first report.
	for h := 1; h <= 5; h++ {
		upload(e, "backup-agent", "198.51.100.2:9000", 30<<20, time.Duration(h)*time.Hour)
	}
	requireLen(t, "recurring upload", kinds(e.Findings(t0.Add(6*time.Hour)), KindDataExfiltration), 0)
	// Ten times that is news again.
	upload(e, "backup-agent", "198.51.100.2:9000", 300<<20, 7*time.Hour)
	fs = kinds(e.Findings(t0.Add(8*time.Hour)), KindDataExfiltration)
	requireLen(t, "tenfold", fs, 1)
	if b := fs[0].Exfiltration.BaselineBytes; b < 29<<20 || b > 31<<20 {
		t.Fatalf("baseline = %d", b)
	}

	// Many small transfers in one window add up.
	m := testEngine(nil)
	for i := 0; i < 12; i++ {
		upload(m, "app", "203.0.113.9:443", 1<<20, time.Duration(i)*time.Second)
	}
	if fs := kinds(m.Findings(t0.Add(time.Minute)), KindDataExfiltration); len(fs) != 1 || fs[0].Exfiltration.BytesSent != 11<<20 {
		t.Fatalf("summed transfers = %+v", fs)
	}

	// Healthy twins: the same 30 MB to an internal address; 5 MB to an external one; the
	// bytes a server sent back to a client.
	h := testEngine(nil)
	upload(h, "backup-agent", "10.1.2.3:9000", 30<<20, 0)
	upload(h, "backup-agent", "[fd00::5]:9000", 30<<20, 0)
	upload(h, "app", "198.51.100.2:443", 5<<20, 0)
	srv := connEv(capture.ConnClosed, capture.RoleServer, "10.0.0.1:443", "198.51.100.7:50000", 0)
	srv.BytesSent = 100 << 20
	h.Conn(srv, remoteSvc("198.51.100.7"), svc("web"))
	requireLen(t, "healthy transfers", kinds(h.Findings(t0.Add(time.Minute)), KindDataExfiltration), 0)
}

// Another byte source (periodic reports of long-lived connections) feeds the same detector.
func TestTransferFromAnotherSource(t *testing.T) {
	e := testEngine(nil)
	for i := 0; i < 6; i++ {
		e.Transfer(Transfer{Source: svc("agent"), Dest: remoteSvc("files.example.net"), DestAddr: netip.MustParseAddrPort("203.0.113.20:443"),
			Bytes: 4 << 20, Time: t0.Add(time.Duration(i) * 5 * time.Second)})
	}
	fs := kinds(e.Findings(t0.Add(time.Minute)), KindDataExfiltration)
	requireLen(t, "periodic reports", fs, 1)
	if x := fs[0].Exfiltration; x.Dest != "files.example.net" || x.BytesSent != 12<<20 {
		t.Fatalf("exfiltration = %+v", x)
	}
}
