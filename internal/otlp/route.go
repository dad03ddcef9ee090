package otlp

import "strings"

// Route limits: a route is a metric attribute and a span name, so it must stay short and
// low-cardinality whatever path a client sends.
const (
	maxRouteSegments = 8
	maxRouteLen      = 128
	idPlaceholder    = "{id}"
)

// Route turns a request path into a low-cardinality template: path segments that look like
// identifiers (numbers, UUIDs, long hex strings, long tokens mixing letters and digits)
// become "{id}", and the route is cut after maxRouteSegments segments. The query string,
// if any, is dropped. "/api/users/42/orders/9f1c…" → "/api/users/{id}/orders/{id}".
//
// netintel sees bytes, not the server's router, so this is a heuristic; it is the same
// rule for span names, http.route and the duration metrics, so they agree.
func Route(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return "/"
	}
	if path[0] != '/' {
		// absolute-form or asterisk-form targets: keep only the path part of an absolute URI
		if i := strings.Index(path, "://"); i >= 0 {
			rest := path[i+3:]
			j := strings.IndexByte(rest, '/')
			if j < 0 {
				return "/"
			}
			path = rest[j:]
		} else if path == "*" { // OPTIONS *
			return path
		} else {
			path = "/" + path // not a valid target; template it like a path so it stays bounded
		}
	}
	if !needsTemplate(path) && len(path) <= maxRouteLen {
		return path
	}
	var b strings.Builder
	b.Grow(len(path))
	segs := 0
	rest := path[1:]
	for {
		seg := rest
		i := strings.IndexByte(rest, '/')
		if i >= 0 {
			seg = rest[:i]
		}
		if segs == maxRouteSegments {
			b.WriteString("/…")
			break
		}
		b.WriteByte('/')
		if isIdentifier(seg) {
			b.WriteString(idPlaceholder)
		} else {
			b.WriteString(seg)
		}
		segs++
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	r := b.String()
	if len(r) > maxRouteLen {
		r = r[:maxRouteLen] + "…"
	}
	return r
}

// needsTemplate is the fast path: most paths have no identifier segment and few segments.
func needsTemplate(path string) bool {
	segs := 0
	start := 1
	for i := 1; i <= len(path); i++ {
		if i == len(path) || path[i] == '/' {
			segs++
			if segs > maxRouteSegments || isIdentifier(path[start:i]) {
				return true
			}
			start = i + 1
		}
	}
	return false
}

// isIdentifier reports whether a path segment is a value rather than a name.
func isIdentifier(seg string) bool {
	if seg == "" {
		return false
	}
	digits, hex, letters, other := 0, 0, 0, 0
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			hex++
		case c >= 'g' && c <= 'z', c >= 'G' && c <= 'Z':
			letters++
		default:
			other++
		}
	}
	n := len(seg)
	switch {
	case digits == n: // 42, 2024
		return true
	case isUUID(seg):
		return true
	case letters == 0 && other == 0 && n >= 16 && digits > 0: // hex digests, object ids
		return true
	case n >= 20 && digits > 0 && digits+hex+letters >= n-2: // opaque tokens
		return true
	case digits > 0 && other == 0 && digits*2 >= n && n >= 6: // mostly digits: "u123456"
		return true
	}
	return false
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
