package intel

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Options are the thresholds and bounds of the engine; the receiver maps its YAML config
// onto them. DefaultOptions holds the defaults of DESIGN §6.
type Options struct {
	SlowRequestThreshold   time.Duration // anomaly regardless of baseline above this
	ErrorStatusThreshold   int           // HTTP status at or above which a response is an error
	LatencyDeviationFactor float64       // anomaly when a window quantile > factor × the baseline's ...
	LatencyFloor           time.Duration // ... and exceeds it by more than floor (sub-floor jitter is not news)
	BaselineWarmup         int           // samples before a baseline is trusted
	LatencyAnomalyInterval time.Duration // at most one slow-request anomaly per route per interval

	CascadeWindow   time.Duration // errors on connected edges this close in time are one cascade
	DependencyTTL   time.Duration // an edge silent this long is reported again when it returns
	FlushInterval   time.Duration // window of error patterns, connection failures, retry storms
	HotEdgeDuration time.Duration // an edge with a finding samples more of its spans this long
	// HotEdgeSpansPerSecond is how many healthy spans a second a hot edge keeps (all of them
	// when it carries fewer requests).
	HotEdgeSpansPerSecond float64

	SpanSampling float64 // probability that a healthy exchange becomes a span

	SuspiciousUserAgents []string // case-insensitive substrings
	// SuspiciousEndpoints are case-insensitive paths matched by whole segments from the
	// start ("/admin" matches "/admin/x", not "/administration"); a dotfile ("/.env")
	// matches at any depth.
	SuspiciousEndpoints []string
	// HealthCheckUserAgents: requests whose user agent starts with one of these
	// (case-insensitive) are health probes, never a security concern.
	HealthCheckUserAgents []string
	PortScanThreshold     int // distinct refused/reset ports from one source in ScanWindow
	EnumerationThreshold  int // distinct 404 paths from one client in ScanWindow
	ScanWindow            time.Duration

	// AllowedDependencies, when set, lists the edges (source service, dest service) that may
	// exist; any other is an unauthorized_communication concern. "*" matches any service.
	AllowedDependencies [][2]string
	// Zones and AllowedZoneFlows: a flow between two zones that is not allowed is a
	// segmentation_violation. Endpoints in no zone, and flows inside one zone, are not judged.
	Zones            []Zone
	AllowedZoneFlows [][2]string // (source zone, dest zone); "*" matches any zone
	// InternalNetworks: destinations outside them are external (the audit of external calls,
	// data exfiltration).
	InternalNetworks []netip.Prefix

	ChattyCallsPerRequest float64 // calls to one dependency per served request that are chatty
	ExfiltrationBytes     uint64  // bytes to one external destination in a window that may be exfiltration
	// NewConnectionsPerSecond: a client opening at least this many connections a second to
	// one destination, about one per request, does not reuse its connections.
	NewConnectionsPerSecond float64
	// UnansweredHandshakes: retransmitted or abandoned handshakes towards one listener in a
	// window from which its accept queue is full.
	UnansweredHandshakes int
	// ErrorSpanExemplars is how many error spans each error group keeps per window; its other
	// errors are sampled like healthy exchanges (their counts stay exact).
	ErrorSpanExemplars int
	// ReportAgainAfter: a condition reported once (a chatty pair, a pool exhaustion, a retry
	// storm, a segmentation violation) is reported again only after it was quiet this long.
	ReportAgainAfter time.Duration

	MaxEdges   int // dependency graph edges (and failing edges tracked for cascades)
	MaxRoutes  int // latency baselines, and error/retry groups per window
	MaxClients int // clients and sources tracked for enumeration, port scans and concerns

	RetryStormRate        float64       // failing attempts per second by one client on one route
	RetryStormMinAttempts int           // and at least this many in a window
	RetryGap              time.Duration // an identical call this soon after its failure is a retry

	DedupCapacity int // exchange ids remembered to count the two halves of one exchange once
}

// DefaultOptions returns the defaults of DESIGN §6.
func DefaultOptions() Options {
	return Options{
		SlowRequestThreshold:   time.Second,
		ErrorStatusThreshold:   400,
		LatencyDeviationFactor: 3.0,
		LatencyFloor:           5 * time.Millisecond,
		BaselineWarmup:         20,
		LatencyAnomalyInterval: time.Minute,
		CascadeWindow:          30 * time.Second,
		DependencyTTL:          5 * time.Minute,
		FlushInterval:          10 * time.Second,
		HotEdgeDuration:        time.Minute,
		HotEdgeSpansPerSecond:  10,
		SpanSampling:           0.01,
		SuspiciousUserAgents: []string{
			"sqlmap", "nikto", "masscan", "nmap", "gobuster", "dirbuster", "dirb/", "wfuzz", "ffuf",
			"feroxbuster", "nuclei", "zgrab", "hydra", "acunetix", "w3af", "whatweb", "openvas",
			"metasploit", "arachni", "skipfish", "wpscan", "commix",
		},
		SuspiciousEndpoints: []string{
			"/.env", "/.git", "/.svn", "/.hg", "/.aws", "/.ssh", "/.htpasswd", "/.htaccess", "/.ds_store",
			"/admin", "/wp-admin", "/wp-login.php", "/xmlrpc.php", "/phpmyadmin", "/pma", "/cgi-bin",
			"/etc/passwd", "/server-status", "/config.json", "/backup", "/shell", "/boaform", "/hnap1",
		},
		HealthCheckUserAgents:   DefaultHealthCheckUserAgents(),
		PortScanThreshold:       20,
		EnumerationThreshold:    20,
		ScanWindow:              time.Minute,
		InternalNetworks:        DefaultInternalNetworks(),
		ChattyCallsPerRequest:   20,
		ExfiltrationBytes:       10 << 20,
		NewConnectionsPerSecond: 10,
		UnansweredHandshakes:    3,
		ErrorSpanExemplars:      5,
		ReportAgainAfter:        5 * time.Minute,
		MaxEdges:                10000,
		MaxRoutes:               10000,
		MaxClients:              10000,
		RetryStormRate:          5,
		RetryStormMinAttempts:   10,
		RetryGap:                2 * time.Second,
		DedupCapacity:           65536,
	}
}

// DefaultHealthCheckUserAgents are the user agents of the health checkers of Kubernetes,
// cloud load balancers, Consul and common proxies.
func DefaultHealthCheckUserAgents() []string {
	return []string{
		"kube-probe/", "ELB-HealthChecker/", "GoogleHC/", "Amazon-Route53-Health-Check-Service",
		"Consul Health Check", "Envoy/HC", "HAProxy health check", "Azure Traffic Manager Endpoint Monitor",
		"Blackbox Exporter/",
	}
}

// DefaultInternalNetworks are the private and loopback networks: RFC 1918, 127/8, ULA, ::1.
func DefaultInternalNetworks() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "fc00::/7", "::1/128"} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// withDefaults replaces values that cannot work (zero sizes, zero windows) by the defaults.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	dur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	num := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	dur(&o.SlowRequestThreshold, d.SlowRequestThreshold)
	dur(&o.LatencyAnomalyInterval, d.LatencyAnomalyInterval)
	dur(&o.CascadeWindow, d.CascadeWindow)
	dur(&o.DependencyTTL, d.DependencyTTL)
	dur(&o.FlushInterval, d.FlushInterval)
	dur(&o.HotEdgeDuration, d.HotEdgeDuration)
	dur(&o.ScanWindow, d.ScanWindow)
	if o.LatencyFloor < 0 {
		o.LatencyFloor = 0
	}
	num(&o.ErrorStatusThreshold, d.ErrorStatusThreshold)
	num(&o.BaselineWarmup, d.BaselineWarmup)
	num(&o.PortScanThreshold, d.PortScanThreshold)
	num(&o.EnumerationThreshold, d.EnumerationThreshold)
	num(&o.MaxEdges, d.MaxEdges)
	num(&o.MaxRoutes, d.MaxRoutes)
	num(&o.MaxClients, d.MaxClients)
	num(&o.RetryStormMinAttempts, d.RetryStormMinAttempts)
	num(&o.DedupCapacity, d.DedupCapacity)
	num(&o.UnansweredHandshakes, d.UnansweredHandshakes)
	dur(&o.RetryGap, d.RetryGap)
	dur(&o.ReportAgainAfter, d.ReportAgainAfter)
	if o.ErrorSpanExemplars < 0 {
		o.ErrorSpanExemplars = 0
	}
	if o.ChattyCallsPerRequest <= 0 {
		o.ChattyCallsPerRequest = d.ChattyCallsPerRequest
	}
	if o.ExfiltrationBytes == 0 {
		o.ExfiltrationBytes = d.ExfiltrationBytes
	}
	if o.NewConnectionsPerSecond <= 0 {
		o.NewConnectionsPerSecond = d.NewConnectionsPerSecond
	}
	if o.LatencyDeviationFactor <= 1 {
		o.LatencyDeviationFactor = d.LatencyDeviationFactor
	}
	if o.HotEdgeSpansPerSecond <= 0 {
		o.HotEdgeSpansPerSecond = d.HotEdgeSpansPerSecond
	}
	if o.RetryStormRate <= 0 {
		o.RetryStormRate = d.RetryStormRate
	}
	return o
}

// ParseAllowedDependency parses one `allowed_dependencies` entry, "source -> dest".
// Either side may be "*".
func ParseAllowedDependency(s string) (src, dst string, err error) {
	return parseArrow("allowed dependency", "service names", s)
}

// ParseZoneFlow parses one `allowed_zone_flows` entry, "source zone -> dest zone". Either
// side may be "*".
func ParseZoneFlow(s string) (src, dst string, err error) {
	return parseArrow("allowed zone flow", "zone names", s)
}

func parseArrow(what, names, s string) (src, dst string, err error) {
	a, b, ok := strings.Cut(s, "->")
	if !ok {
		return "", "", fmt.Errorf("%s %q: want \"source -> dest\" (%s, or * for any)", what, s, names)
	}
	src, dst = strings.TrimSpace(a), strings.TrimSpace(b)
	if src == "" || dst == "" || strings.Contains(dst, "->") {
		return "", "", fmt.Errorf("%s %q: want \"source -> dest\" with both names set (use * for any)", what, s)
	}
	return src, dst, nil
}
