package route

import (
	"slices"
	"strings"

	"github.com/netintel/netintelreceiver/internal/lru"
)

// Defaults of Options.
const (
	DefaultMaxDistinct = 20
	DefaultMaxNodes    = 10000
)

// A value that carried at least keepShare of a position's requests, and at least keepMinHits
// of them, when the position collapsed stays a literal: "/api" beside a thousand static files
// at the root of one server is still "/api".
const (
	keepShare   = 0.05
	keepMinHits = 8
)

// Options bound a Learner.
type Options struct {
	// MaxDistinct is how many distinct values one path position (under one prefix, of one
	// service) may take before it is an identifier position; DefaultMaxDistinct when zero.
	MaxDistinct int
	// MaxNodes bounds the positions tracked over all services (least recently used first
	// out, counted); DefaultMaxNodes when zero.
	MaxNodes int
}

// Learner learns, per service, which path positions hold identifiers: a position that takes
// more than MaxDistinct distinct values under one prefix collapses into {id}, as Drain
// clusters log lines by their variable tokens. Static rules (IsIdentifier) apply first, so
// numbers and UUIDs never cost a node. Not safe for concurrent use: the pipeline owns it.
type Learner struct {
	maxDistinct int
	nodes       *lru.Cache[nodeKey, *node]
	collapsed   uint64
}

// nodeKey is one path position: the segments before it, as templated, of one service.
type nodeKey struct {
	service, prefix string
}

type node struct {
	values    map[string]uint64 // distinct values seen and their hits, until collapsed
	hits      uint64
	collapsed bool
	keep      []string // literals kept at the collapse, sorted
}

// Counters of a Learner.
type Counters struct {
	Nodes     uint64 // positions tracked now
	Evicted   uint64 // positions forgotten to stay under MaxNodes
	Collapsed uint64 // positions found to hold identifiers, since start
}

// NewLearner returns an empty Learner.
func NewLearner(opts Options) *Learner {
	if opts.MaxDistinct <= 0 {
		opts.MaxDistinct = DefaultMaxDistinct
	}
	if opts.MaxNodes <= 0 {
		opts.MaxNodes = DefaultMaxNodes
	}
	return &Learner{maxDistinct: opts.MaxDistinct, nodes: lru.New[nodeKey, *node](opts.MaxNodes)}
}

// Counters reports the learner's table size and what it evicted and learned.
func (l *Learner) Counters() Counters {
	return Counters{Nodes: uint64(l.nodes.Len()), Evicted: l.nodes.Evicted(), Collapsed: l.collapsed}
}

// Route is the template of a request path to service. With learn, the path's segments are
// counted (callers learn only from requests the server recognised: a scanner's 404s must not
// turn "/" into "/{id}"); without, what was learned is applied and nothing is counted.
func (l *Learner) Route(service, path string, learn bool) string {
	return template(l, service, path, learn)
}

// template builds the route of path segment by segment: each segment is judged by the static
// rules, then by the node of its position (its prefix being the template so far).
func template(l *Learner, service, path string, learn bool) string {
	path = normalize(path)
	if path == "*" || path == "/" {
		return path
	}
	if l == nil && unchanged(path) {
		return path // most paths: no identifier, short enough, nothing to build
	}
	var b strings.Builder
	b.Grow(len(path) + len(Placeholder))
	segs := 0
	for start := 1; start <= len(path); {
		end := strings.IndexByte(path[start:], '/')
		if end < 0 {
			end = len(path)
		} else {
			end += start
		}
		if segs == MaxSegments {
			b.WriteString("/" + cutMark)
			break
		}
		segs++
		seg := path[start:end]
		out := seg
		switch {
		case IsIdentifier(seg):
			out = Placeholder
		case l != nil && seg != "" && seg != Placeholder:
			out = l.judge(nodeKey{service: service, prefix: b.String()}, seg, learn)
		}
		b.WriteByte('/')
		b.WriteString(out)
		start = end + 1
	}
	return bound(b.String())
}

// unchanged reports whether the static rules leave a normalized path as it is.
func unchanged(path string) bool {
	if len(path) > MaxLen {
		return false
	}
	segs := 0
	for start := 1; start <= len(path); {
		end := strings.IndexByte(path[start:], '/')
		if end < 0 {
			end = len(path)
		} else {
			end += start
		}
		if segs++; segs > MaxSegments || IsIdentifier(path[start:end]) {
			return false
		}
		start = end + 1
	}
	return true
}

// judge templates one segment at its position, counting it when learning.
func (l *Learner) judge(k nodeKey, seg string, learn bool) string {
	var n *node
	var ok bool
	if learn {
		if n, ok = l.nodes.Get(k); !ok {
			n = &node{values: make(map[string]uint64)}
			l.nodes.Put(k, n)
		}
	} else if n, ok = l.nodes.Peek(k); !ok {
		return seg
	}
	if n.collapsed {
		if _, kept := slices.BinarySearch(n.keep, seg); kept {
			return seg
		}
		return Placeholder
	}
	if !learn {
		return seg
	}
	n.hits++
	if _, seen := n.values[seg]; seen || len(n.values) < l.maxDistinct {
		n.values[seg]++
		return seg
	}
	// One value too many: the position holds identifiers from now on.
	n.collapsed = true
	l.collapsed++
	for v, hits := range n.values {
		if hits >= keepMinHits && float64(hits) >= keepShare*float64(n.hits) {
			n.keep = append(n.keep, v)
		}
	}
	slices.Sort(n.keep)
	n.values = nil
	return Placeholder
}

// Rule is one learned identifier position: for requests to Service whose segments before
// index Position (0-based) template to Prefix ("" for the first segment, "/users/{id}"
// deeper), the segment at Position is an identifier, unless it is one of Keep. The static
// rules (IsIdentifier) apply everywhere and are not listed.
type Rule struct {
	Service  string
	Prefix   string
	Position int
	Keep     []string // literals that stay as they are
}

// Rules lists what was learned, sorted by service and prefix, so that another stage (the
// kernel's route keys) can template paths as the Learner does.
func (l *Learner) Rules() []Rule {
	var out []Rule
	for k, n := range l.nodes.All() {
		if !n.collapsed {
			continue
		}
		out = append(out, Rule{
			Service: k.service, Prefix: k.prefix, Position: strings.Count(k.prefix, "/"),
			Keep: slices.Clone(n.keep),
		})
	}
	slices.SortFunc(out, func(a, b Rule) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		return strings.Compare(a.Prefix, b.Prefix)
	})
	return out
}
