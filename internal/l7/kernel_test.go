package l7

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netintel/netintelreceiver/internal/capture"
)

func kernelEvent(role capture.Role) *capture.HTTP1Event {
	t0 := time.Unix(1000, 0)
	local, remote := netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("127.0.0.9:8080")
	if role == capture.RoleServer {
		local, remote = remote, local
	}
	return &capture.HTTP1Event{
		Process:      capture.Process{PID: 42, Comm: "svc"},
		Socket:       capture.Socket{Cookie: 7, Transport: capture.TransportTCP, Local: local, Remote: remote, Role: role},
		RequestTime:  t0,
		ResponseTime: t0.Add(3 * time.Millisecond),
		Request:      []byte("GET /items/17?x=1 HTTP/1.1\r\nHost: shop\r\nUser-Agent: curl/8\r\n\r\n"),
		Response:     []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\n"),
		Status:       503,
		RouteKey:     capture.RouteKey("/items/{id}"),
		Reasons:      capture.HTTP1Error,
		RequestSeq:   101, ResponseSeq: 202, ClientISN: 100, ServerISN: 201,
	}
}

func TestKernelHTTP1BecomesAnExchange(t *testing.T) {
	for _, role := range []capture.Role{capture.RoleClient, capture.RoleServer} {
		var got []*Exchange
		tr := NewTracker(DefaultOptions(), func(x *Exchange) { got = append(got, x) })
		tr.HTTP1(kernelEvent(role))
		require.Len(t, got, 1)
		x := got[0]
		assert.Equal(t, "GET", x.HTTP.Method)
		assert.Equal(t, "/items/17", x.HTTP.Path)
		assert.Equal(t, "x=1", x.HTTP.Query)
		assert.Equal(t, "curl/8", x.HTTP.UserAgent)
		assert.Equal(t, 503, x.HTTP.Status)
		assert.Equal(t, "text/plain", x.HTTP.ContentType)
		assert.Equal(t, 3*time.Millisecond, x.Duration())
		assert.Equal(t, uint32(101), x.RequestSeq)
		assert.Equal(t, capture.RouteKey("/items/{id}"), x.KernelRoute)
		assert.Equal(t, FailureNone, x.Failure)
		assert.Equal(t, netip.MustParseAddrPort("127.0.0.9:8080"), x.Server.Addr)
		if role == capture.RoleServer {
			assert.Equal(t, SideServer, x.Side)
			assert.Equal(t, uint32(42), x.Server.Process.PID)
		} else {
			assert.Equal(t, SideClient, x.Side)
			assert.Equal(t, uint32(42), x.Client.Process.PID)
		}
	}
}

// A request its socket closed unanswered: reset, abandoned by the client, or closed by the
// server, from the socket's state at the close.
func TestKernelUnansweredFailure(t *testing.T) {
	cases := []struct {
		role       capture.Role
		err        int32
		peerClosed bool
		want       Failure
	}{
		{capture.RoleClient, 104, false, FailureReset},
		{capture.RoleClient, 0, false, FailureAbandoned}, // the client closed first
		{capture.RoleClient, 0, true, FailureClosed},     // the server closed first
		{capture.RoleServer, 0, true, FailureAbandoned},  // the client closed first
		{capture.RoleServer, 0, false, FailureClosed},    // the server closed first
	}
	for _, c := range cases {
		ev := kernelEvent(c.role)
		ev.Reasons, ev.Status, ev.Response = capture.HTTP1Unanswered, 0, nil
		ev.SocketError, ev.PeerClosed = c.err, c.peerClosed
		var got *Exchange
		NewTracker(DefaultOptions(), func(x *Exchange) { got = x }).HTTP1(ev)
		require.NotNil(t, got)
		assert.Equal(t, c.want, got.Failure, "%+v", c)
		assert.Equal(t, 0, got.HTTP.Status)
	}
}

func TestKernelAggregateBecomesAnAggregate(t *testing.T) {
	opts := DefaultOptions()
	opts.DurationBounds = []time.Duration{time.Millisecond, 10 * time.Millisecond}
	tr := NewTracker(opts, nil)
	ka := &capture.HTTP1Aggregate{PID: 42, Role: capture.RoleServer, Port: 8080, Peer: netip.MustParseAddr("10.1.2.3"),
		Method: "GET", Status: 200, Version: "1.1", RouteKey: 9, Count: 5, Sum: 20 * time.Millisecond}
	ka.Latency[5], ka.Latency[6] = 2, 3
	ka.Explicit[0], ka.Explicit[1] = 1, 4
	start := time.Unix(10, 0)
	a := tr.Aggregate(ka, start, start.Add(10*time.Second))
	assert.Equal(t, SideServer, a.Side)
	assert.Equal(t, uint32(42), a.Server.Process.PID)
	assert.Equal(t, uint16(8080), a.Server.Addr.Port())
	assert.Equal(t, netip.MustParseAddrPort("10.1.2.3:0"), a.Client.Addr)
	assert.Equal(t, uint64(5), a.Count)
	assert.Equal(t, uint64(5), a.Latency.Count)
	assert.Len(t, a.Latency.Counts, len(capture.LatencyBucketBounds)+1)
	assert.Equal(t, []uint64{1, 4, 0}, a.Explicit.Counts)
	assert.Equal(t, opts.DurationBounds, a.Explicit.Bounds)

	ka.Role, ka.PeerPort = capture.RoleClient, 0
	c := tr.Aggregate(ka, start, start)
	assert.Equal(t, SideClient, c.Side)
	assert.Equal(t, netip.MustParseAddrPort("10.1.2.3:8080"), c.Server.Addr)
	assert.Equal(t, uint32(42), c.Client.Process.PID)
}
