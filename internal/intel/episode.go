package intel

import (
	"time"

	"github.com/netintel/netintelreceiver/internal/lru"
)

// episodes remembers when a condition (a chatty pair, a pool running dry, a retry storm, a
// forbidden flow) was last seen, so that it is reported once while it lasts and again only
// after it was quiet for ReportAgainAfter: every event stays actionable.
type episodes struct {
	quiet time.Duration
	seen  *lru.Cache[string, time.Time]
}

func newEpisodes(quiet time.Duration, capacity int) *episodes {
	return &episodes{quiet: quiet, seen: lru.New[string, time.Time](capacity)}
}

// episodeKey joins the parts of an episode's identity.
func episodeKey(parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
		b = append(b, 0)
	}
	return string(b)
}

// fresh records that the condition k holds at t and reports whether it starts an episode.
func (ep *episodes) fresh(k string, t time.Time) bool {
	last, ok := ep.seen.Get(k)
	if !ok || t.Sub(last) > ep.quiet {
		ep.seen.Put(k, t)
		return true
	}
	if t.After(last) {
		ep.seen.Put(k, t)
	}
	return false
}
