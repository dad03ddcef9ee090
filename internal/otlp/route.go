package otlp

import (
	"github.com/netintel/netintelreceiver/internal/l7"
	"github.com/netintel/netintelreceiver/internal/route"
)

// Route limits: a route is a metric attribute and a span name, so it must stay short whatever
// path a client sends (internal/route enforces them).
const (
	maxRouteSegments = route.MaxSegments
	maxRouteLen      = route.MaxLen
)

// Route is the route template of a request path by the static rules alone (route.Static):
// identifier segments become "{id}", the query string is dropped, an absolute-form target
// keeps only its path, and a route is cut after maxRouteSegments segments or maxRouteLen
// bytes ("…" marks the cut). Exchanges that went through the pipeline carry the learned
// route instead (routeOf).
//
// netintel sees bytes, not the server's router: this is a heuristic, applied alike to span
// names, http.route / url.template and the duration metrics.
func Route(path string) string { return route.Static(path) }

// routeOf is the route of an HTTP exchange: the template the pipeline learned for it
// (l7.HTTP.Route), or the static template of its path when none was set.
func routeOf(h *l7.HTTP) string {
	if h.Route != "" {
		return h.Route
	}
	return Route(h.Path)
}
