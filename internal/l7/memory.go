package l7

import (
	"time"
	"unsafe"
)

// The tracker's state is bounded per socket (pending requests, carried bytes, HPACK tables,
// streams) and in sockets (MaxConnections), but the product of those caps is gigabytes. A
// global budget bounds the sum: every socket's state is estimated after each event that
// touched it, and when the total exceeds MaxStateBytes the tracker sheds sockets — among the
// least recently used, the largest first — until the total is back under shedTarget of the
// budget. Their outstanding requests come out as FailureUnknown (nobody's error: capture let
// go of them), and the sheds are counted.

// DefaultMaxStateBytes is the default budget: a quarter of a 256 MiB DaemonSet memory limit,
// the rest being the Go runtime, the other stages' bounded tables and the export queues.
const DefaultMaxStateBytes = 64 << 20

const (
	shedTarget  = 0.9 // shed down to this fraction of the budget, so one event does not shed again
	shedWindow  = 32  // sockets examined from the least recently used end per shed
	pendingCost = 640 // an outstanding request or stream: its Exchange, HTTP and strings (header values are capped)
)

var (
	connCost     = int(unsafe.Sizeof(conn{})) + 96 // + its map entry and LRU element
	exchangeCost = int(unsafe.Sizeof(Exchange{}) + unsafe.Sizeof(HTTP{}))
)

// memory estimates the bytes the socket's state holds.
func (c *conn) memory() int {
	n := connCost
	if c.short != nil {
		n += cap(c.short.Payload)
	}
	switch p := c.parser.(type) {
	case *http1Parser:
		n += int(unsafe.Sizeof(*p)) + cap(p.pending)*int(unsafe.Sizeof(http1Pending{})) + len(p.pending)*pendingCost
		for i := range p.dirs {
			n += cap(p.dirs[i].carry)
		}
	case *http2Parser:
		n += int(unsafe.Sizeof(*p)) + len(p.streams)*(pendingCost+int(unsafe.Sizeof(h2Stream{}))+16)
		for i := range p.dirs {
			d := &p.dirs[i]
			n += cap(d.carry) + cap(d.block) + cap(d.fields)*int(unsafe.Sizeof(d.fields[:1][0]))
			if d.hp != nil {
				// RFC 7541 sizes count 32 bytes per entry for overhead, close to Go's strings.
				n += int(d.hp.size) + cap(d.hp.entries)*int(unsafe.Sizeof(d.hp.entries[:1][0]))
			}
		}
	case *dnsParser:
		n += int(unsafe.Sizeof(*p)) + (len(p.pending)+len(p.blind))*(pendingCost+48) + cap(p.order)*int(unsafe.Sizeof(dnsKey{}))
		for i := range p.tcp {
			n += cap(p.tcp[i].carry)
		}
	case *tlsParser:
		n += int(unsafe.Sizeof(*p))
		if p.x != nil {
			n += exchangeCost + pendingCost
		}
	}
	return n
}

// account updates the total after an event touched c, and sheds when it is over budget.
func (t *Tracker) account(c *conn, now time.Time) {
	if c.elem == nil {
		return // removed while handling the event
	}
	m := c.memory()
	t.mem += int64(m - c.mem)
	c.mem = m
	if t.mem > t.opts.MaxStateBytes {
		t.shed(now)
	}
}

// shed evicts sockets until the state is under shedTarget of the budget: of the
// shedWindow least recently used, the largest goes first.
func (t *Tracker) shed(now time.Time) {
	target := int64(float64(t.opts.MaxStateBytes) * shedTarget)
	for t.mem > target && t.lru.Len() > 0 {
		var victim *conn
		e := t.lru.Back()
		for i := 0; i < shedWindow && e != nil; i++ {
			if c := e.Value.(*conn); victim == nil || c.mem > victim.mem {
				victim = c
			}
			e = e.Prev()
		}
		t.counters.MemoryShed++
		t.counters.MemoryShedBytes += uint64(victim.mem)
		t.release(victim, now)
		t.remove(victim)
	}
}

// release ends what a socket still holds that will never be answered here: the tracker is
// letting go of it (evicted or shed), not the connection.
func (t *Tracker) release(c *conn, now time.Time) {
	if c.parser == nil {
		return
	}
	before := t.counters.Exchanges
	c.parser.fail(c, FailureUnknown, now)
	t.counters.Released += t.counters.Exchanges - before
}
