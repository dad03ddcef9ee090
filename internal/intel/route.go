package intel

import "strings"

// idPlaceholder replaces a path segment that identifies one resource rather than a route.
const idPlaceholder = "{id}"

// minOpaqueLen is the length from which a segment mixing letters and digits is taken as an
// opaque token (session ids, base64 keys, JWTs) rather than a word like "v2" or "item42".
const minOpaqueLen = 20

// Route turns a request path into its route template: segments that are numbers, UUIDs, hex
// hashes or long opaque tokens become {id}, so /api/users/123 and /api/users/456 are one route.
// The query string, if any, is dropped. Paths that need no change are returned as they are.
func Route(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return "/"
	}
	var b []byte // allocated at the first segment that changes
	for start := 0; start <= len(path); {
		end := strings.IndexByte(path[start:], '/')
		if end < 0 {
			end = len(path)
		} else {
			end += start
		}
		if isIdentifier(path[start:end]) {
			if b == nil {
				b = make([]byte, 0, len(path)+len(idPlaceholder))
				b = append(b, path[:start]...)
			}
			b = append(b, idPlaceholder...)
		} else if b != nil {
			b = append(b, path[start:end]...)
		}
		if end < len(path) && b != nil {
			b = append(b, '/')
		}
		start = end + 1
	}
	if b == nil {
		return path
	}
	return string(b)
}

// isIdentifier reports whether a path segment names one resource.
func isIdentifier(seg string) bool {
	if seg == "" {
		return false
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
			return false // not an id alphabet (e.g. '@', ',', '{')
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
