package otlp

import (
	"strings"
	"unicode/utf8"

	"github.com/netintel/netintelreceiver/internal/intel"
)

// Route limits: a route is a metric attribute and a span name, so it must stay short whatever
// path a client sends.
const (
	maxRouteSegments = 8
	maxRouteLen      = 128
)

// Route is the route template of a request path, as intel.Route makes it (identifier
// segments become "{id}", the query string is dropped) so spans, metrics and findings name
// the same route; on top of that an absolute-form target keeps only its path, and a route
// is cut after maxRouteSegments segments or maxRouteLen bytes ("…" marks the cut).
//
// netintel sees bytes, not the server's router: this is a heuristic, applied alike to span
// names, http.route / url.template and the duration metrics.
func Route(path string) string {
	if i := strings.Index(path, "://"); i >= 0 && !strings.HasPrefix(path, "/") {
		rest := path[i+3:]
		j := strings.IndexAny(rest, "/?#")
		if j < 0 || rest[j] != '/' {
			return "/"
		}
		path = rest[j:]
	} else if path != "" && path != "*" && path[0] != '/' && path[0] != '?' && path[0] != '#' {
		path = "/" + path // not a valid origin-form target; template it like one so it stays bounded
	}
	r := intel.Route(path)
	segs := 0
	for i := 0; i < len(r); i++ {
		if r[i] != '/' {
			continue
		}
		segs++
		if segs > maxRouteSegments {
			r = r[:i] + "/…"
			break
		}
	}
	if len(r) > maxRouteLen {
		// Cut on a rune boundary; any other byte stays as it is, so a route of a route is the
		// same route.
		cut := maxRouteLen
		for back := 0; back < utf8.UTFMax-1 && !utf8.RuneStart(r[cut]); back++ {
			cut--
		}
		if !utf8.RuneStart(r[cut]) {
			cut = maxRouteLen // not UTF-8 at all here: cut on the byte
		}
		r = r[:cut] + "…"
	}
	return r
}
