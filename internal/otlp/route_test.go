package otlp

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRoute(t *testing.T) {
	tests := []struct{ path, want string }{
		{"", "/"},
		{"/", "/"},
		{"/api/users", "/api/users"},
		{"/api/users/42", "/api/users/{id}"},
		{"/api/users/42/orders/7", "/api/users/{id}/orders/{id}"},
		{"/api/users/42?expand=true", "/api/users/{id}"},
		{"/items/8c9d2f5e-0d3a-4c1b-9a8e-2b7f1e6c4d3a", "/items/{id}"},
		{"/commits/3f786850e387550fdab836ed7e6dc881de23001b", "/commits/{id}"},
		{"/v1/charges/ch_3MmlLrLkdIwHu7ix0snN0B15", "/v1/charges/{id}"},
		{"/u/u1234567", "/u/u1234567"}, // a short word with digits is a name
		{"/api/v2/health", "/api/v2/health"},
		{"/static/app.js", "/static/app.js"},
		{"/.env", "/.env"},
		{"/wp-admin/", "/wp-admin/"},
		{"/2024/11/29/post-title", "/{id}/{id}/{id}/post-title"},
		{"http://example.com/a/1", "/a/{id}"},
		{"http://example.com", "/"},
		{"*", "*"},
		{"?a=1", "/"},
		{"/a/b/c/d/e/f/g/h/i/j", "/a/b/c/d/e/f/g/h/…"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Route(tt.path), "Route(%q)", tt.path)
	}
}

func TestRouteIsBounded(t *testing.T) {
	long := "/" + strings.Repeat("segment", 100)
	assert.LessOrEqual(t, len(Route(long)), maxRouteLen+len("…"))
}

func FuzzRoute(f *testing.F) {
	for _, s := range []string{"/api/users/42", "/a//b", "http://x/1", "/" + strings.Repeat("9", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r := Route(path)
		if len(r) > maxRouteLen+len("…") && !strings.Contains(path, "://") {
			t.Fatalf("Route(%q) = %q: longer than the cap", path, r)
		}
		if Route(r) != r && strings.HasPrefix(path, "/") && !strings.ContainsAny(path, "?#") {
			t.Fatalf("Route is not idempotent: %q → %q → %q", path, r, Route(r))
		}
	})
}
