package intel

import (
	"strings"
	"testing"
)

func TestRoute(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/api/users/123", "/api/users/{id}"},
		{"/api/users/456", "/api/users/{id}"},
		{"/api/users/123/orders/9", "/api/users/{id}/orders/{id}"},
		{"/api/orders/550e8400-e29b-41d4-a716-446655440000", "/api/orders/{id}"},
		{"/blobs/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "/blobs/{id}"},
		{"/commits/3e4f5a6b", "/commits/{id}"},
		{"/s/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjEyM30", "/s/{id}"},
		{"/reports/2024-01-31", "/reports/{id}"},
		{"/api/v2/items", "/api/v2/items"},
		{"/cafe/added", "/cafe/added"},
		{"/item42", "/item42"},
		{"/api/users/123?x=1", "/api/users/{id}"},
		{"", "/"},
		{"/", "/"},
		{"/index.html", "/index.html"},
		{"/static/app.3f1c.js", "/static/app.3f1c.js"},
	}
	for _, tt := range tests {
		if got := Route(tt.in); got != tt.want {
			t.Errorf("Route(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseAllowedDependency(t *testing.T) {
	tests := []struct {
		in, src, dst string
		err          bool
	}{
		{in: "frontend -> checkout", src: "frontend", dst: "checkout"},
		{in: "frontend->*", src: "frontend", dst: "*"},
		{in: "frontend", err: true},
		{in: " -> checkout", err: true},
		{in: "a -> b -> c", err: true},
	}
	for _, tt := range tests {
		src, dst, err := ParseAllowedDependency(tt.in)
		if (err != nil) != tt.err || src != tt.src || dst != tt.dst {
			t.Errorf("ParseAllowedDependency(%q) = %q, %q, %v", tt.in, src, dst, err)
		}
	}
}

// FuzzRoute: any path yields a template that is stable (templating it again changes nothing)
// and keeps no all-digit segment.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{"/api/users/123", "/", "", "//", "/a/550e8400-e29b-41d4-a716-446655440000/b", "/x?y=1", "/%41/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r := Route(path)
		if again := Route(r); again != r {
			t.Fatalf("Route(%q) = %q, but Route(%q) = %q", path, r, r, again)
		}
		for _, seg := range strings.Split(r, "/") {
			if seg != "" && strings.Trim(seg, "0123456789") == "" {
				t.Fatalf("Route(%q) = %q keeps the number %q", path, r, seg)
			}
		}
	})
}
