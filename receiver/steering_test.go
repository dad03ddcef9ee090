package receiver

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/intel"
	"github.com/netintel/netintelreceiver/internal/l7"
	"github.com/netintel/netintelreceiver/internal/route"
)

// fakeJudge records what steering writes and hands out the aggregates it holds.
type fakeJudge struct {
	capture.Source
	limits []capture.RouteLimit
	rules  []capture.RouteRule
	writes int
	aggs   []*capture.HTTP1Aggregate
}

func (f *fakeJudge) SetJudging(capture.Judging) error { return nil }
func (f *fakeJudge) SetRouteLimits(l []capture.RouteLimit) error {
	f.limits, f.writes = l, f.writes+1
	return nil
}
func (f *fakeJudge) SetRouteRules(r []capture.RouteRule) error {
	f.rules, f.writes = r, f.writes+1
	return nil
}
func (f *fakeJudge) DrainHTTP1(fn func(*capture.HTTP1Aggregate)) error {
	for _, a := range f.aggs {
		fn(a)
	}
	f.aggs = nil
	return nil
}

func judgedExchange(route string, key uint64) *l7.Exchange {
	return &l7.Exchange{Protocol: l7.ProtocolHTTP1, Side: l7.SideServer, KernelRoute: key,
		Server: l7.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.9:8080"), Process: capture.Process{PID: 10}},
		HTTP:   &l7.HTTP{Method: "GET", Path: "/users/x", Route: route, Host: "shop"}}
}

// What the exchanges that crossed tell about the kernel's keys names the aggregates, and intel's
// limits and the learner's rules reach the kernel by pid, route key and port — written again only
// when they change.
func TestSteeringNamesAggregatesAndPushesDown(t *testing.T) {
	j := &fakeJudge{}
	s := newSteering(j)
	shop := identity.Service{Name: "shop", Local: true}
	key := capture.RouteKey("/users/{id}")
	s.learn(judgedExchange("/users/{id}", key), shop)

	j.aggs = []*capture.HTTP1Aggregate{{PID: 10, Role: capture.RoleServer, Port: 8080, Peer: netip.MustParseAddr("127.0.0.1"), PeerPort: 4000, Method: "GET", Status: 200, RouteKey: key, Count: 3},
		{PID: 10, Role: capture.RoleServer, Port: 8080, Peer: netip.MustParseAddr("127.0.0.1"), PeerPort: 4000, Method: "GET", Status: 200, RouteKey: 99, Count: 1}}
	var got []*l7.Aggregate
	tr := l7.NewTracker(l7.DefaultOptions(), nil)
	require.NoError(t, s.drain(tr, time.Unix(10, 0), func(a *l7.Aggregate) { got = append(got, a) }))
	require.Len(t, got, 2)
	assert.Equal(t, "/users/{id}", got[0].Route)
	assert.Equal(t, unknownRoute, got[1].Route, "a key whose first exchange was not seen is counted as unknown, not guessed")

	th := []intel.RouteThreshold{{Dest: "shop", Method: "GET", Route: "/users/{id}", Threshold: 30 * time.Millisecond}, {Dest: "elsewhere", Route: "/x", Threshold: time.Millisecond}}
	rules := []route.Rule{{Service: "shop", Prefix: "/users", Position: 1}, {Service: "shop", Prefix: "/files/", Position: 1, Keep: []string{"api"}}}
	require.NoError(t, s.push(th, rules))
	assert.Equal(t, []capture.RouteLimit{{PID: 10, RouteKey: key, Latency: 30 * time.Millisecond}}, j.limits)
	assert.Equal(t, []capture.RouteRule{{Port: 8080, Prefix: "/users/"}}, j.rules, "a rule keeping literals stays in user space")
	writes := j.writes
	require.NoError(t, s.push(th, rules))
	assert.Equal(t, writes, j.writes, "unchanged limits and rules are not written again")
}
