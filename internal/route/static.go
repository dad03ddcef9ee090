// Package route turns request paths into route templates ("/users/{id}"): identifier segments
// become a placeholder, by static rules (numbers, UUIDs, hashes, long tokens, e-mail
// addresses) and by what a Learner learns from traffic (a path position of one service that
// takes many distinct values). A route is a metric attribute and a span name, so it is also
// bounded in segments and length whatever path a client sends.
package route

import (
	"strings"
	"unicode/utf8"
)

// Placeholder replaces a path segment that identifies one resource rather than a route.
const Placeholder = "{id}"

// Bounds of a route, whatever the path.
const (
	MaxSegments = 8   // segments kept; the rest become one "…" segment
	MaxLen      = 128 // bytes kept (cut on a rune boundary, "…" marks the cut)
	cutMark     = "…"
)

// minOpaqueLen is the length from which a segment mixing letters and digits is taken as an
// opaque token (session ids, base64 keys, JWTs) rather than a word like "v2" or "item42".
const minOpaqueLen = 20

// Static is the route template of a path by the static rules alone: what every stage uses
// when no Learner has seen the service.
func Static(path string) string { return template(nil, "", path, false) }

// normalize reduces a request target to its path: an absolute-form target keeps only its
// path, the query string and fragment are dropped, and a target that does not start with "/"
// is templated as if it did, so that it stays bounded. "*" (OPTIONS) stays "*".
func normalize(path string) string {
	if i := strings.Index(path, "://"); i >= 0 && !strings.HasPrefix(path, "/") {
		rest := path[i+3:]
		j := strings.IndexAny(rest, "/?#")
		if j < 0 || rest[j] != '/' {
			return "/"
		}
		path = rest[j:]
	} else if path != "" && path != "*" && path[0] != '/' && path[0] != '?' && path[0] != '#' {
		path = "/" + path
	}
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return "/"
	}
	return path
}

// bound cuts a route after MaxLen bytes, on a rune boundary when the route is UTF-8, so that
// a route of a route is the same route.
func bound(r string) string {
	if len(r) <= MaxLen {
		return r
	}
	cut := MaxLen
	for back := 0; back < utf8.UTFMax-1 && !utf8.RuneStart(r[cut]); back++ {
		cut--
	}
	if !utf8.RuneStart(r[cut]) {
		cut = MaxLen // not UTF-8 at all here: cut on the byte
	}
	return r[:cut] + cutMark
}

// IsIdentifier reports whether a path segment names one resource by its shape alone: a
// number or date, a hex hash, a UUID, an e-mail address, or a long token mixing letters and
// digits. Words ("orders", "v2", "item42", "cafe") are not identifiers by shape; a Learner
// finds the ones that are by their number of distinct values.
func IsIdentifier(seg string) bool {
	if seg == "" {
		return false
	}
	if isEmail(seg) {
		return true
	}
	var digits, hexLetters, letters, other int
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'):
			hexLetters++
		case (c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z'):
			letters++
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '=' || c == '~' || c == '+' || c == '%':
			other++
		default:
			return false // not an id alphabet (e.g. ',', '{')
		}
	}
	if digits == 0 {
		return false // words, including hex-only words like "cafe" or "added"
	}
	if letters == 0 && hexLetters == 0 {
		return true // 123, 2024-01-31, 1.5
	}
	if letters == 0 && other == 0 && len(seg) >= 8 {
		return true // hex hash: 9f86d081884c7d65
	}
	if isUUID(seg) {
		return true
	}
	return len(seg) >= minOpaqueLen
}

// isEmail: local@domain.tld, also percent-encoded (%40), which clients send in paths.
func isEmail(seg string) bool {
	at, n := strings.IndexByte(seg, '@'), 1
	if at < 0 {
		if at = strings.Index(seg, "%40"); at < 0 {
			return false
		}
		n = 3
	}
	domain := seg[at+n:]
	dot := strings.LastIndexByte(domain, '.')
	return at > 0 && dot > 0 && dot < len(domain)-1
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
			return false
		}
	}
	return true
}
