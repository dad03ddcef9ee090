package intel

import (
	"fmt"
	"strings"
	"time"
)

// Options are the thresholds and bounds of the engine; the receiver maps its YAML config
// onto them. DefaultOptions holds the defaults of DESIGN §6.
type Options struct {
	SlowRequestThreshold   time.Duration // anomaly regardless of baseline above this
	ErrorStatusThreshold   int           // HTTP status at or above which a response is an error
	LatencyDeviationFactor float64       // anomaly when latency > factor × baseline ...
	LatencyFloor           time.Duration // ... and latency > floor (sub-floor jitter is not news)
	BaselineWarmup         int           // samples before a baseline is trusted
	LatencyAnomalyInterval time.Duration // at most one latency anomaly per route per interval

	CascadeWindow   time.Duration // errors on connected edges this close in time are one cascade
	DependencyTTL   time.Duration // an edge silent this long is reported again when it returns
	FlushInterval   time.Duration // window of error patterns, connection failures, retry storms
	HotEdgeDuration time.Duration // an edge with a finding samples more of its spans this long
	// HotEdgeSpansPerSecond is how many healthy spans a second a hot edge keeps (all of them
	// when it carries fewer requests).
	HotEdgeSpansPerSecond float64

	SpanSampling float64 // probability that a healthy exchange becomes a span

	SuspiciousUserAgents []string // case-insensitive substrings
	SuspiciousEndpoints  []string // case-insensitive path prefixes
	PortScanThreshold    int      // distinct refused/reset ports from one source in ScanWindow
	EnumerationThreshold int      // distinct 404 paths from one client in ScanWindow
	ScanWindow           time.Duration

	// AllowedDependencies, when set, lists the edges (source service, dest service) that may
	// exist; any other is an unauthorized_communication concern. "*" matches any service.
	AllowedDependencies [][2]string

	MaxEdges   int // dependency graph edges (and failing edges tracked for cascades)
	MaxRoutes  int // latency baselines, and error/retry groups per window
	MaxClients int // clients and sources tracked for enumeration, port scans and concerns

	RetryStormRate        float64 // failing attempts per second by one client on one route
	RetryStormMinAttempts int     // and at least this many in a window

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
		PortScanThreshold:     20,
		EnumerationThreshold:  20,
		ScanWindow:            time.Minute,
		MaxEdges:              10000,
		MaxRoutes:             10000,
		MaxClients:            10000,
		RetryStormRate:        5,
		RetryStormMinAttempts: 10,
		DedupCapacity:         65536,
	}
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
	a, b, ok := strings.Cut(s, "->")
	if !ok {
		return "", "", fmt.Errorf("allowed dependency %q: want \"source -> dest\" (service names, or * for any)", s)
	}
	src, dst = strings.TrimSpace(a), strings.TrimSpace(b)
	if src == "" || dst == "" || strings.Contains(dst, "->") {
		return "", "", fmt.Errorf("allowed dependency %q: want \"source -> dest\" with both names set (use * for any)", s)
	}
	return src, dst, nil
}
