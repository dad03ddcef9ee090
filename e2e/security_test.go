//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	shopWebAddr  = "127.0.0.61:8085"
	scanTarget   = "127.0.0.60" // nothing listens here: every probed port is refused
	scannerIP    = "127.0.0.1"  // the kernel's source address for loopback destinations
	scanPorts    = "1-300"
	wordlistFile = "wordlist.txt"
)

func TestSecurity(t *testing.T) {
	s := newScenario(t)
	s.nginx("shopweb", shopWebAddr, `
        location = /item.php { return 200 "item 1\n"; }
        location / { return 404; }`)
	s.startCollector(receiverConfig{
		Services: map[string]string{shopWebAddr: "shopweb"},
		// One window spans the whole scenario: each concern once per (type, source service).
		Security: map[string]any{"scan_window": "5m", "enumeration_threshold": 20, "port_scan_threshold": 20},
	})

	// sqlmap: one URL, boolean-based tests only, no retries, bounded in time.
	out, err := s.run(90*time.Second, "sqlmap", "-u", "http://"+shopWebAddr+"/item.php?id=1",
		"--batch", "--level", "1", "--risk", "1", "--technique=B", "--timeout", "2", "--retries", "0",
		"--output-dir", s.path("sqlmap"), "--disable-coloring")
	t.Logf("sqlmap: %v (%d bytes of output)", err, len(out))
	// gobuster: 40 words, every one a 404 (they include /admin, /.env, /.git, /wp-admin).
	out, err = s.run(60*time.Second, "gobuster", "dir", "-u", "http://"+shopWebAddr+"/",
		"-w", filepath.Join(repoRoot, "e2e", "testdata", wordlistFile), "-t", "4", "-q", "--no-error", "--timeout", "2s")
	t.Logf("gobuster: %v %s", err, clip(out, 500))
	// nmap: a TCP connect scan of 300 ports on an address with no listener.
	s.mustRun(120*time.Second, "nmap", "-sT", "-Pn", "-n", "--max-retries", "0", "-p", scanPorts, scanTarget)

	types := []string{"suspicious_user_agent", "suspicious_endpoint", "endpoint_enumeration", "port_scan"}
	expect := fmt.Sprintf("security_concern events of types %v, each with source %s", types, scannerIP)
	s.eventually(90*time.Second, expect+"; the user agents of both sqlmap and gobuster flagged", func(o *output) (bool, string) {
		for _, ty := range types {
			if len(o.events(evSecurity, attrs{aConcernType: ty, aSourceIP: scannerIP})) == 0 {
				return false, o.dumpEvents(evSecurity)
			}
		}
		// Every sensitive endpoint gobuster requested is its own concern, whatever else its
		// requests raised (its user agent was already one).
		for _, ep := range []string{"/.env", "/.git", "/admin", "/wp-admin"} {
			if len(o.events(evSecurity, attrs{aConcernType: "suspicious_endpoint", "netintel.target_endpoint": ep})) == 0 {
				return false, "  no suspicious_endpoint for " + ep + "\n" + o.dumpEvents(evSecurity)
			}
		}
		for _, scanner := range []string{"sqlmap", "gobuster"} {
			seen := false
			for _, r := range o.events(evSecurity, attrs{aConcernType: "suspicious_user_agent"}) {
				ua, _ := attrAny(r.Attrs, "netintel.user_agent", "user_agent.original")
				seen = seen || strings.Contains(ua, scanner)
			}
			if !seen {
				return false, o.dumpEvents(evSecurity)
			}
		}
		return true, ""
	})
	time.Sleep(6 * time.Second) // two more flushes: duplicates would show up
	s.eventually(5*time.Second, "each concern once in the window for each (type, source service), a suspicious endpoint once per endpoint", func(o *output) (bool, string) {
		var found strings.Builder
		ok := true
		per := map[string]int{}
		for _, r := range o.events(evSecurity, nil) {
			ty, _ := attrAny(r.Attrs, aConcernType)
			src, _ := attrAny(r.Attrs, aSource)
			if ty == "suspicious_endpoint" {
				ep, _ := attrAny(r.Attrs, "netintel.target_endpoint")
				ty += " " + ep
			}
			per[ty+" from "+src]++
		}
		for k, n := range per {
			fmt.Fprintf(&found, "  %s: %d\n", k, n)
			ok = ok && n == 1
		}
		if !ok {
			found.WriteString(o.dumpEvents(evSecurity))
		}
		return ok, found.String()
	})
}
