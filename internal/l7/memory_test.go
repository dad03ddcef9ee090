package l7

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// openRequests opens n client sockets, each with `pending` requests outstanding and half a
// request head carried, on a tracker with the given budget.
func openRequests(tr *Tracker, n, pending int, at time.Time) {
	srv := netip.MustParseAddrPort("127.0.0.41:8080")
	head := "GET /items/%d HTTP/1.1\r\nHost: shop\r\nUser-Agent: " + strings.Repeat("u", 200) + "\r\n\r\n"
	for i := 0; i < n; i++ {
		s := capture.Socket{Cookie: uint64(1000 + i), Transport: capture.TransportTCP, Role: capture.RoleClient,
			Local: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(20000+i%40000)), Remote: srv}
		seq := uint32(1)
		send := func(p string) {
			tr.Data(&capture.DataEvent{Time: at, Socket: s, Direction: capture.DirectionSend, Size: len(p), Payload: []byte(p), Seq: seq, ClientISN: 7, ServerISN: 9})
			seq += uint32(len(p))
		}
		for j := 0; j < pending; j++ {
			send(fmt.Sprintf(head, j))
		}
		send("GET /half-a-head HTTP/1.1\r\nHost: sh") // carried until the rest arrives
		at = at.Add(time.Microsecond)
	}
}

// The budget holds whatever the traffic: sockets are shed, the shed are counted, and their
// outstanding requests come out as unknown instead of vanishing.
func TestStateBudgetSheds(t *testing.T) {
	opts := DefaultOptions()
	opts.MaxStateBytes = 1 << 20
	var unknown int
	tr := NewTracker(opts, func(x *Exchange) {
		if x.Failure == FailureUnknown && x.End == x.Start {
			unknown++
		}
	})
	openRequests(tr, 2000, 8, time.Unix(1_800_000_000, 0))
	c := tr.Counters()
	if c.StateBytes > opts.MaxStateBytes {
		t.Errorf("state %d bytes over the %d budget", c.StateBytes, opts.MaxStateBytes)
	}
	if c.MemoryShed == 0 || c.MemoryShedBytes == 0 || c.Released == 0 || unknown != int(c.Released) {
		t.Errorf("counters %+v, %d unknown exchanges: shedding must be counted and release the requests", c, unknown)
	}
	// Every socket's requests are accounted for: still tracked, or released.
	if got := uint64(c.Connections)*8 + c.Released; got != 2000*8 {
		t.Errorf("%d requests tracked or released, want %d", got, 2000*8)
	}
}

// Healthy twin: under the budget nothing is shed.
func TestStateBudgetUnderLimitShedsNothing(t *testing.T) {
	tr := NewTracker(DefaultOptions(), func(*Exchange) {})
	openRequests(tr, 2000, 8, time.Unix(1_800_000_000, 0))
	if c := tr.Counters(); c.MemoryShed != 0 || c.Released != 0 || c.Connections != 2000 {
		t.Errorf("counters %+v", c)
	}
}

// Of the least recently used sockets, the largest goes first.
func TestStateBudgetShedsOldestLargestFirst(t *testing.T) {
	opts := DefaultOptions()
	at := time.Unix(1_800_000_000, 0)
	probe := NewTracker(opts, func(*Exchange) {})
	openRequests(probe, 1, 8, at)
	big := probe.Counters().StateBytes
	probe = NewTracker(opts, func(*Exchange) {})
	openRequests(probe, 1, 1, at)
	small := probe.Counters().StateBytes

	// Room for one big and a few small sockets: the big one (oldest) must go first.
	opts.MaxStateBytes = big + 4*small
	tr := NewTracker(opts, func(*Exchange) {})
	openRequests(tr, 1, 8, at) // cookie 1000: big, oldest
	srv := netip.MustParseAddrPort("127.0.0.41:8080")
	for i := 1; i < 6; i++ {
		s := capture.Socket{Cookie: uint64(5000 + i), Transport: capture.TransportTCP, Role: capture.RoleClient,
			Local: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(30000+i)), Remote: srv}
		p := "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
		tr.Data(&capture.DataEvent{Time: at.Add(time.Duration(i) * time.Second), Socket: s, Direction: capture.DirectionSend, Size: len(p), Payload: []byte(p), Seq: 1, ClientISN: 7, ServerISN: 9})
	}
	if _, ok := tr.conns[1000]; ok {
		t.Errorf("the oldest, largest socket survived: %+v", tr.Counters())
	}
	if c := tr.Counters(); c.MemoryShed != 1 {
		t.Errorf("shed %d sockets, want only the big one", c.MemoryShed)
	}
}

// The estimate follows the real heap: the Go heap grows by about what the tracker says its
// state holds (within a factor of two either way).
func TestStateEstimateTracksHeap(t *testing.T) {
	var keep []*Tracker
	measure := func(fill func(*Tracker)) (heap, estimate int64) {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		tr := NewTracker(DefaultOptions(), func(*Exchange) {})
		fill(tr)
		runtime.GC()
		runtime.ReadMemStats(&after)
		keep = append(keep, tr)
		return int64(after.HeapAlloc) - int64(before.HeapAlloc), tr.Counters().StateBytes
	}
	at := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name string
		fill func(*Tracker)
	}{
		{"HTTP/1, 8 outstanding requests per socket", func(tr *Tracker) { openRequests(tr, 3000, 8, at) }},
		{"HTTP/1, idle keep-alive sockets", func(tr *Tracker) { openRequests(tr, 3000, 0, at) }},
		{"HTTP/2 recordings", func(tr *Tracker) {
			evs := readEvents(t, "h2load-keepalive.events")
			for i := 0; i < 300; i++ { // 300 copies of the connection, cut before its end
				for _, e := range evs[:len(evs)/2] {
					if d := e.Data; d != nil {
						dd := *d
						dd.Socket.Cookie += uint64(i) << 20
						tr.Data(&dd)
					}
				}
			}
		}},
	} {
		heap, est := measure(tc.fill)
		t.Logf("%s: heap +%d KiB, estimate %d KiB", tc.name, heap>>10, est>>10)
		if est <= 0 || heap <= 0 || float64(est) < 0.5*float64(heap) || float64(est) > 2*float64(heap) {
			t.Errorf("%s: estimate %d bytes for a heap growth of %d", tc.name, est, heap)
		}
	}
	runtime.KeepAlive(keep)
}
