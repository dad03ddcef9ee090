package route

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestStatic(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/api/users", "/api/users"},
		{"/api/users/123", "/api/users/{id}"},
		{"/api/users/123/orders/9", "/api/users/{id}/orders/{id}"},
		{"/api/users/123?x=1", "/api/users/{id}"},
		{"/api/orders/550e8400-e29b-41d4-a716-446655440000", "/api/orders/{id}"},
		{"/blobs/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "/blobs/{id}"},
		{"/commits/3e4f5a6b", "/commits/{id}"},
		{"/s/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjEyM30", "/s/{id}"},
		{"/v1/charges/ch_3MmlLrLkdIwHu7ix0snN0B15", "/v1/charges/{id}"},
		{"/reports/2024-01-31", "/reports/{id}"},
		{"/2024/11/29/post-title", "/{id}/{id}/{id}/post-title"},
		{"/users/alice@example.com/avatar", "/users/{id}/avatar"},
		{"/users/alice%40example.com", "/users/{id}"},
		{"/mail/@home", "/mail/@home"}, // no domain: not an address
		{"/api/v2/items", "/api/v2/items"},
		{"/cafe/added", "/cafe/added"},
		{"/item42", "/item42"},
		{"/u/u1234567", "/u/u1234567"}, // a short word with digits is a name
		{"/index.html", "/index.html"},
		{"/static/app.3f1c.js", "/static/app.3f1c.js"},
		{"/.env", "/.env"},
		{"/wp-admin/", "/wp-admin/"},
		{"http://example.com/a/1", "/a/{id}"},
		{"http://example.com", "/"},
		{"*", "*"},
		{"?a=1", "/"},
		{"a/1", "/a/{id}"},
		{"/a/b/c/d/e/f/g/h/i/j", "/a/b/c/d/e/f/g/h/…"},
	}
	for _, tt := range tests {
		if got := Static(tt.in); got != tt.want {
			t.Errorf("Static(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStaticIsBounded(t *testing.T) {
	long := "/" + strings.Repeat("segment", 100)
	if r := Static(long); len(r) > MaxLen+len(cutMark) || !strings.HasSuffix(r, cutMark) {
		t.Fatalf("Static(long) = %q (%d bytes)", r, len(r))
	}
	// A cut never splits a rune.
	r := Static("/" + strings.Repeat("é", 200))
	if !strings.HasSuffix(r, cutMark) || strings.ContainsRune(r, '\uFFFD') || len(r) > MaxLen+len(cutMark) {
		t.Fatalf("Static(é…) = %q", r)
	}
}

// Letter-only identifiers (user names) are learned: after MaxDistinct distinct values at one
// position, the position is {id} for every value, and the positions below it are learned
// under the template.
func TestLearnerCollapsesHighCardinalityPosition(t *testing.T) {
	l := NewLearner(Options{MaxDistinct: 5})
	names := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace"}
	var got []string
	for _, n := range names {
		got = append(got, l.Route("users", "/api/users/"+n+"/orders", true))
	}
	want := []string{
		"/api/users/alice/orders", "/api/users/bob/orders", "/api/users/carol/orders", "/api/users/dave/orders",
		"/api/users/erin/orders", "/api/users/{id}/orders", "/api/users/{id}/orders",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("routes while learning:\n got %q\nwant %q", got, want)
	}
	// Once learned, every value is {id}, also the ones seen before, and also when not learning.
	for _, p := range []string{"/api/users/alice/orders", "/api/users/zed/orders?x=1"} {
		if r := l.Route("users", p, false); r != "/api/users/{id}/orders" {
			t.Errorf("Route(%q) = %q", p, r)
		}
	}
	// Another service learns on its own: its /api/users/alice is still a route.
	if r := l.Route("admin", "/api/users/alice", true); r != "/api/users/alice" {
		t.Errorf("other service: %q", r)
	}
	rules := l.Rules()
	if !reflect.DeepEqual(rules, []Rule{{Service: "users", Prefix: "/api/users", Position: 2}}) {
		t.Fatalf("rules = %+v", rules)
	}
	if c := l.Counters(); c.Collapsed != 1 {
		t.Fatalf("counters = %+v", c)
	}
}

// Healthy twin: a REST API with a handful of resources under one prefix, requested many
// times, keeps every route.
func TestLearnerKeepsRouteLiterals(t *testing.T) {
	l := NewLearner(Options{})
	resources := []string{"users", "orders", "items", "carts", "payments", "invoices", "search", "health"}
	for i := 0; i < 10000; i++ {
		r := resources[i%len(resources)]
		if got := l.Route("shop", "/api/v1/"+r, true); got != "/api/v1/"+r {
			t.Fatalf("request %d: %q became %q", i, r, got)
		}
	}
	if rules := l.Rules(); len(rules) != 0 {
		t.Fatalf("rules = %+v", rules)
	}
}

// A position that collapses keeps the literals that carried its traffic: a static file
// server's many files at the root become {id}, its /api stays.
func TestLearnerKeepsHeavyHitters(t *testing.T) {
	l := NewLearner(Options{MaxDistinct: 10})
	for i := 0; i < 200; i++ {
		l.Route("web", "/api/items", true)
		if i%10 == 0 {
			l.Route("web", fmt.Sprintf("/file-%s.css", word(i)), true)
		}
	}
	if r := l.Route("web", "/api/items", true); r != "/api/items" {
		t.Fatalf("/api/items became %q", r)
	}
	if r := l.Route("web", "/file-new.css", true); r != "/{id}" {
		t.Fatalf("a new file is %q", r)
	}
	rules := l.Rules()
	if len(rules) != 1 || rules[0].Prefix != "" || rules[0].Position != 0 || !reflect.DeepEqual(rules[0].Keep, []string{"api"}) {
		t.Fatalf("rules = %+v", rules)
	}
}

// A scanner's made-up paths are not learned from (the caller passes learn=false for 404s):
// they neither collapse "/" nor take nodes.
func TestLearnerIgnoresWhatItMustNotLearn(t *testing.T) {
	l := NewLearner(Options{MaxDistinct: 5})
	for i := 0; i < 1000; i++ {
		if r := l.Route("web", "/"+word(i), false); r != "/"+word(i) {
			t.Fatalf("unlearned path templated: %q", r)
		}
	}
	if c := l.Counters(); c.Nodes != 0 || c.Collapsed != 0 {
		t.Fatalf("counters = %+v", c)
	}
	if r := l.Route("web", "/api", true); r != "/api" {
		t.Fatalf("/api = %q", r)
	}
}

// Memory is bounded: a million distinct deep paths keep at most MaxNodes positions, the rest
// evicted and counted.
func TestLearnerBounded(t *testing.T) {
	l := NewLearner(Options{MaxNodes: 100, MaxDistinct: 1 << 20})
	for i := 0; i < 100000; i++ {
		l.Route("svc", "/"+word(i)+"/"+word(i+1)+"/x", true)
	}
	c := l.Counters()
	if c.Nodes > 100 || c.Evicted == 0 {
		t.Fatalf("counters = %+v", c)
	}
}

// word spells i in letters, so paths do not collapse by the static rules.
func word(i int) string {
	b := []byte{'w'}
	for ; i > 0; i /= 26 {
		b = append(b, byte('a'+i%26))
	}
	return string(b)
}

// FuzzRoute: any path yields a template that is bounded, stable (templating it again changes
// nothing) and keeps no all-digit segment.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{"/api/users/123", "/", "", "//", "/a/550e8400-e29b-41d4-a716-446655440000/b",
		"/x?y=1", "/%41/1", "http://x/1", "/" + strings.Repeat("9", 300), "/a@b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r := Static(path)
		if len(r) > MaxLen+len(cutMark) {
			t.Fatalf("Static(%q) = %q: longer than the cap", path, r)
		}
		if again := Static(r); again != r && !strings.Contains(r, cutMark) {
			t.Fatalf("Static(%q) = %q, but Static(%q) = %q", path, r, r, again)
		}
		for _, seg := range strings.Split(r, "/") {
			if seg != "" && strings.Trim(seg, "0123456789") == "" {
				t.Fatalf("Static(%q) = %q keeps the number %q", path, r, seg)
			}
		}
	})
}

// FuzzLearner: whatever paths a service sees, its routes stay bounded and keep no number,
// and a route learned for a path is stable once the position collapsed.
func FuzzLearner(f *testing.F) {
	f.Add("/users/alice/orders", "/users/bob", uint8(3))
	f.Add("/", "//x//", uint8(1))
	f.Add("/a/b/c/d/e/f/g/h/i", "/a/1/c", uint8(2))
	f.Fuzz(func(t *testing.T, a, b string, n uint8) {
		l := NewLearner(Options{MaxDistinct: 2, MaxNodes: 64})
		for i := 0; i < int(n%16)+1; i++ {
			for _, p := range []string{a, b, a + "/" + word(i), "/" + word(i) + b} {
				r := l.Route("svc", p, true)
				if len(r) > MaxLen+len(cutMark) {
					t.Fatalf("Route(%q) = %q: longer than the cap", p, r)
				}
				for _, seg := range strings.Split(r, "/") {
					if seg != "" && strings.Trim(seg, "0123456789") == "" {
						t.Fatalf("Route(%q) = %q keeps the number %q", p, r, seg)
					}
				}
			}
		}
		if c := l.Counters(); c.Nodes > 64 {
			t.Fatalf("counters = %+v", c)
		}
	})
}
