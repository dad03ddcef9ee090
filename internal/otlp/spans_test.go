package otlp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/intel"
	"github.com/netintel/netintelreceiver/internal/l7"
)

func TestAppendSpansPerExchangeType(t *testing.T) {
	reset := tcpExchange(l7.SideClient, checkoutAddr, 0)
	reset.Protocol = l7.ProtocolHTTP1
	reset.HTTP = &l7.HTTP{Method: "POST", Path: "/api/orders", Version: "1.1", Host: "checkout:8080"}
	reset.Failure = l7.FailureReset

	timeout := tcpExchange(l7.SideServer, checkoutAddr, 0)
	timeout.Protocol = l7.ProtocolHTTP1
	timeout.HTTP = &l7.HTTP{Method: "GET", Path: "/slow", Version: "1.1"}
	timeout.Failure = l7.FailureTimeout

	// A proxy forwards the client's Host to an upstream on another port.
	proxied := httpExchange(l7.SideClient, "1.1", "GET", "/items", 200)
	proxied.HTTP.Host = "frontend.example:8080"
	proxied.Server.Addr = netip.MustParseAddrPort("127.0.0.21:8081")

	abandoned := tcpExchange(l7.SideServer, checkoutAddr, 0)
	abandoned.Protocol = l7.ProtocolHTTP1
	abandoned.HTTP = &l7.HTTP{Method: "GET", Path: "/", Version: "1.1"}
	abandoned.Failure = l7.FailureAbandoned

	external := httpExchange(l7.SideClient, "1.1", "GET", "/v1/charges/ch_3MmlLrLkdIwHu7ix0snN0B15", 200)
	external.Server.Addr = paymentsAddr
	external.HTTP.Host = "payments.example.com"

	tests := []struct {
		name         string
		x            *l7.Exchange
		client       identity.Service
		server       identity.Service
		wantName     string
		wantKind     ptrace.SpanKind
		wantStatus   ptrace.StatusCode
		wantMessage  string
		wantResource string
		want         map[string]any
		absent       []string
	}{
		{
			name: "HTTP/1.1 client 200", x: httpExchange(l7.SideClient, "1.1", "GET", "/api/users/42", 200),
			client: frontend, server: checkout,
			wantName: "GET /api/users/{id}", wantKind: ptrace.SpanKindClient, wantStatus: ptrace.StatusCodeUnset,
			wantResource: "frontend",
			want: map[string]any{
				attrHTTPMethod: "GET", attrURLPath: "/api/users/42", attrURLTemplate: "/api/users/{id}",
				attrURLFull: "http://checkout:8080/api/users/42", attrNISpanEnd: "response_first_byte",
				attrURLScheme: "http", attrHTTPStatus: int64(200), attrServerAddress: "checkout",
				attrServerPort: int64(8080), attrPeerAddress: "127.0.0.20", attrPeerPort: int64(8080),
				attrProtocolName: "http", attrProtocolVersion: "1.1", attrTransport: "tcp",
				attrUserAgent: "curl/8.11.1",
			},
			absent: []string{attrErrorType, attrHTTPRoute, attrClientAddress, attrServicePeerName, attrPeerServiceOld},
		},
		{
			name: "HTTP/1.1 server 503 is an error", x: httpExchange(l7.SideServer, "1.1", "POST", "/api/checkout", 503),
			client: frontend, server: checkout,
			wantName: "POST /api/checkout", wantKind: ptrace.SpanKindServer, wantStatus: ptrace.StatusCodeError,
			wantResource: "checkout",
			want: map[string]any{
				attrHTTPMethod: "POST", attrHTTPRoute: "/api/checkout", attrHTTPStatus: int64(503),
				attrErrorType: "503", attrClientAddress: "127.0.0.10", attrClientPort: int64(41000),
				attrPeerAddress: "127.0.0.10", attrPeerPort: int64(41000), attrServerPort: int64(8080),
			},
			absent: []string{attrURLTemplate, attrServicePeerName},
		},
		{
			name: "HTTP client 404 is an error", x: httpExchange(l7.SideClient, "1.1", "GET", "/missing", 404),
			client: frontend, server: checkout,
			wantName: "GET /missing", wantKind: ptrace.SpanKindClient, wantStatus: ptrace.StatusCodeError,
			wantResource: "frontend", want: map[string]any{attrErrorType: "404", attrHTTPStatus: int64(404)},
		},
		{
			name: "HTTP server 404 is not an error", x: httpExchange(l7.SideServer, "1.1", "GET", "/missing", 404),
			client: frontend, server: checkout,
			wantName: "GET /missing", wantKind: ptrace.SpanKindServer, wantStatus: ptrace.StatusCodeUnset,
			wantResource: "checkout", want: map[string]any{attrHTTPStatus: int64(404)}, absent: []string{attrErrorType},
		},
		{
			name: "HTTP/2 server 200", x: httpExchange(l7.SideServer, "2", "GET", "/", 200),
			client: frontend, server: checkout,
			wantName: "GET /", wantKind: ptrace.SpanKindServer, wantStatus: ptrace.StatusCodeUnset,
			wantResource: "checkout", want: map[string]any{attrProtocolVersion: "2", attrHTTPRoute: "/"},
		},
		{
			name: "invented method folds into _OTHER", x: httpExchange(l7.SideClient, "1.1", "FROB", "/x", 200),
			client: frontend, server: checkout,
			wantName: "HTTP /x", wantKind: ptrace.SpanKindClient, wantResource: "frontend",
			want: map[string]any{attrHTTPMethod: "_OTHER", attrHTTPMethodOriginal: "FROB"},
		},
		{
			name: "client to a remote peer names it", x: external, client: frontend, server: payments,
			wantName: "GET /v1/charges/{id}", wantKind: ptrace.SpanKindClient, wantResource: "frontend",
			want: map[string]any{
				attrServicePeerName: "payments.example.com", attrPeerServiceOld: "payments.example.com",
				attrServerAddress: "payments.example.com", attrServerPort: int64(443),
			},
		},
		{
			name: "gRPC OK client", x: grpcExchange(l7.SideClient, 0, "OK"), client: frontend, server: checkout,
			wantName: "shop.Checkout/PlaceOrder", wantKind: ptrace.SpanKindClient, wantStatus: ptrace.StatusCodeUnset,
			wantResource: "frontend",
			want: map[string]any{
				attrRPCSystemName: "grpc", attrRPCMethod: "shop.Checkout/PlaceOrder", attrRPCResponseStatus: "OK",
				attrRPCSystemOld: "grpc", attrRPCServiceOld: "shop.Checkout", attrRPCGRPCStatusOld: int64(0),
				attrProtocolName: "http", attrUserAgent: "grpc-go/1.70.0",
			},
			absent: []string{attrHTTPMethod, attrURLPath, attrErrorType},
		},
		{
			name: "gRPC NOT_FOUND is an error on the client", x: grpcExchange(l7.SideClient, 5, "NOT_FOUND"),
			client: frontend, server: checkout,
			wantName: "shop.Checkout/PlaceOrder", wantKind: ptrace.SpanKindClient, wantStatus: ptrace.StatusCodeError,
			wantResource: "frontend", want: map[string]any{attrErrorType: "NOT_FOUND", attrRPCGRPCStatusOld: int64(5)},
		},
		{
			name: "gRPC NOT_FOUND is not an error on the server", x: grpcExchange(l7.SideServer, 5, "NOT_FOUND"),
			client: frontend, server: checkout,
			wantName: "shop.Checkout/PlaceOrder", wantKind: ptrace.SpanKindServer, wantStatus: ptrace.StatusCodeUnset,
			wantResource: "checkout", want: map[string]any{attrRPCResponseStatus: "NOT_FOUND"}, absent: []string{attrErrorType},
		},
		{
			name: "gRPC UNAVAILABLE is an error on the server", x: grpcExchange(l7.SideServer, 14, ""),
			client: frontend, server: checkout,
			wantName: "shop.Checkout/PlaceOrder", wantKind: ptrace.SpanKindServer, wantStatus: ptrace.StatusCodeError,
			wantResource: "checkout",
			want:         map[string]any{attrRPCResponseStatus: "UNAVAILABLE", attrErrorType: "UNAVAILABLE", attrRPCGRPCStatusOld: int64(14)},
		},
		{
			name: "DNS NOERROR", x: dnsExchange(l7.SideClient, 0, "NOERROR"), client: frontend, server: resolver,
			wantName: "DNS A", wantKind: ptrace.SpanKindClient, wantStatus: ptrace.StatusCodeUnset, wantResource: "frontend",
			want: map[string]any{
				attrDNSQuestionName: "payments.example.com", attrNIDNSQuestionType: "A", attrNIDNSResponseCode: "NOERROR",
				attrDNSAnswers: []any{"127.0.0.30"}, attrTransport: "udp", attrProtocolName: "dns",
				attrServerAddress: "127.0.0.53", attrServerPort: int64(53), attrServicePeerName: "127.0.0.53:53",
			},
			absent: []string{attrErrorType},
		},
		{
			name: "DNS NXDOMAIN is an error", x: dnsExchange(l7.SideClient, 3, "NXDOMAIN"), client: frontend, server: resolver,
			wantName: "DNS A", wantKind: ptrace.SpanKindClient, wantStatus: ptrace.StatusCodeError, wantResource: "frontend",
			want: map[string]any{attrNIDNSResponseCode: "NXDOMAIN", attrErrorType: "NXDOMAIN"}, absent: []string{attrDNSAnswers},
		},
		{
			name: "DNS served by a local server", x: dnsExchange(l7.SideServer, 0, "NOERROR"),
			client: frontend, server: identity.Service{Name: "dnsmasq", Local: true, Resource: identity.Resource{ServiceName: "dnsmasq", PID: 77}},
			wantName: "DNS A", wantKind: ptrace.SpanKindServer, wantResource: "dnsmasq",
			want: map[string]any{attrClientAddress: "127.0.0.10"},
		},
		{
			name: "reset before the response", x: reset, client: frontend, server: checkout,
			wantName: "POST /api/orders", wantKind: ptrace.SpanKindClient, wantStatus: ptrace.StatusCodeError,
			wantMessage: "connection reset before the response", wantResource: "frontend",
			want: map[string]any{attrErrorType: "connection_reset", attrNISpanEnd: "failure_observed"}, absent: []string{attrHTTPStatus},
		},
		{
			name: "server timeout", x: timeout, client: frontend, server: checkout,
			wantName: "GET /slow", wantKind: ptrace.SpanKindServer, wantStatus: ptrace.StatusCodeError,
			wantMessage: "no response before the timeout", wantResource: "checkout",
			want: map[string]any{attrErrorType: "timeout", attrServerAddress: "127.0.0.20"},
		},
		{
			name: "proxied: server.address and server.port from the same Host header", x: proxied, client: frontend, server: checkout,
			wantName: "GET /items", wantKind: ptrace.SpanKindClient, wantStatus: ptrace.StatusCodeUnset, wantResource: "frontend",
			want: map[string]any{attrServerAddress: "frontend.example", attrServerPort: int64(8080),
				attrPeerAddress: "127.0.0.21", attrPeerPort: int64(8081)},
		},
		{
			name: "client hung up before the response", x: abandoned, client: frontend, server: checkout,
			wantName: "GET /", wantKind: ptrace.SpanKindServer, wantStatus: ptrace.StatusCodeUnset, wantResource: "checkout",
			absent: []string{attrErrorType, attrHTTPStatus},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := ptrace.NewTraces()
			AppendSpans(td, tt.x, tt.client, tt.server, 1)
			require.Equal(t, 1, td.SpanCount())
			rs := td.ResourceSpans().At(0)
			svc, _ := rs.Resource().Attributes().Get(attrServiceName)
			assert.Equal(t, tt.wantResource, svc.Str())
			assert.Equal(t, ScopeName, rs.ScopeSpans().At(0).Scope().Name())
			sp := rs.ScopeSpans().At(0).Spans().At(0)

			assert.Equal(t, tt.wantName, sp.Name())
			assert.Equal(t, tt.wantKind, sp.Kind())
			assert.Equal(t, tt.wantStatus, sp.Status().Code())
			assert.Equal(t, tt.wantMessage, sp.Status().Message())
			assert.Equal(t, pcommon.TraceID(tt.x.TraceID()), sp.TraceID())
			if tt.wantKind == ptrace.SpanKindServer {
				assert.Equal(t, pcommon.SpanID(tt.x.ServerSpanID()), sp.SpanID())
				assert.Equal(t, pcommon.SpanID(tt.x.ClientSpanID()), sp.ParentSpanID())
			} else {
				assert.Equal(t, pcommon.SpanID(tt.x.ClientSpanID()), sp.SpanID())
				assert.True(t, sp.ParentSpanID().IsEmpty(), "a CLIENT span is a root")
			}
			assert.Equal(t, tt.x.Start, sp.StartTimestamp().AsTime())
			assert.Equal(t, tt.x.End, sp.EndTimestamp().AsTime())
			assert.Empty(t, sp.TraceState().AsRaw(), "probability 1 records no threshold")

			got := sp.Attributes().AsRaw()
			for k, v := range tt.want {
				assert.Equal(t, v, got[k], "attribute %s", k)
			}
			for _, k := range tt.absent {
				assert.NotContains(t, got, k)
			}
			for k, v := range got {
				if s, ok := v.(string); ok {
					assert.NotContains(t, s, "token=secret", "query string leaked in %s", k)
				}
			}
		})
	}
}

// Two collectors on two nodes, knowing nothing of each other, each see one end of the same
// request. Their spans must pair: same trace id, the server's parent is the client's span.
func TestClientAndServerSpansPairAcrossBuilders(t *testing.T) {
	clientSide := httpExchange(l7.SideClient, "1.1", "GET", "/api/users/7", 200)
	serverSide := httpExchange(l7.SideServer, "1.1", "GET", "/api/users/7", 200)
	// The server node sees the connection after NAT and its own clock: only the sequence
	// numbers are shared.
	serverSide.Client.Addr = netipAddrPort("10.0.0.1:30000")
	serverSide.Start = serverSide.Start.Add(300 * time.Microsecond)
	serverSide.End = serverSide.End.Add(-200 * time.Microsecond)

	nodeA, nodeB := NewTraceBuilder(Privacy{}), NewTraceBuilder(Privacy{})
	nodeA.Append(clientSide, frontend, identity.Service{Name: "checkout"}, 0.25)
	nodeB.Append(serverSide, identity.Service{Name: "10.0.0.1"}, checkout, 0.25)
	tdA, tdB := nodeA.Traces(), nodeB.Traces()
	require.Equal(t, 1, tdA.SpanCount())
	require.Equal(t, 1, tdB.SpanCount())
	assert.Equal(t, 0, nodeA.Len(), "Traces starts a new batch")

	c := tdA.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	s := tdB.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	assert.Equal(t, ptrace.SpanKindClient, c.Kind())
	assert.Equal(t, ptrace.SpanKindServer, s.Kind())
	assert.Equal(t, c.TraceID(), s.TraceID())
	assert.Equal(t, c.SpanID(), s.ParentSpanID())
	assert.NotEqual(t, c.SpanID(), s.SpanID())
	assert.Equal(t, c.Name(), s.Name())
	// Both sides made the same sampling decision and record the same threshold.
	assert.Equal(t, "ot=th:c", c.TraceState().AsRaw())
	assert.Equal(t, c.TraceState().AsRaw(), s.TraceState().AsRaw())
	assert.Equal(t, uint32(0x301|flagRandom), s.Flags(), "server span: sampled, random, remote parent")

	// A different request on the same keep-alive connection is a different trace.
	next := httpExchange(l7.SideClient, "1.1", "GET", "/api/users/8", 200)
	next.RequestSeq += 120
	nodeA.Append(next, frontend, identity.Service{Name: "checkout"}, 1)
	assert.NotEqual(t, c.TraceID(), nodeA.Traces().ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID())
}

func TestBuilderReusesResourceSpans(t *testing.T) {
	b := NewTraceBuilder(Privacy{})
	td := ptrace.NewTraces()
	for i := 0; i < 3; i++ {
		for _, side := range []l7.Side{l7.SideClient, l7.SideServer} {
			x := httpExchange(side, "1.1", "GET", "/", 200)
			x.RequestSeq += uint32(i * 100)
			b.Append(x, frontend, checkout, 1)
			AppendSpans(td, x, frontend, checkout, 1)
		}
	}
	for _, got := range []ptrace.Traces{b.Traces(), td} {
		require.Equal(t, 6, got.SpanCount())
		require.Equal(t, 2, got.ResourceSpans().Len(), "one ResourceSpans per service")
		for i := 0; i < 2; i++ {
			assert.Equal(t, 3, got.ResourceSpans().At(i).ScopeSpans().At(0).Spans().Len())
		}
		name0, _ := got.ResourceSpans().At(0).Resource().Attributes().Get(attrServiceName)
		assert.Equal(t, "frontend", name0.Str())
		res := got.ResourceSpans().At(0).Resource().Attributes().AsRaw()
		assert.Equal(t, map[string]any{attrServiceName: "frontend", attrProcessPID: int64(4242),
			attrExecutableName: "node", attrContainerID: "c0ffee", attrHostName: "node-a"}, res)
	}
}

func TestSamplingThreshold(t *testing.T) {
	tests := []struct {
		p    float64
		want string
		ok   bool
	}{
		{1, "", false},
		{0, "", false},
		{1.5, "", false},
		{0.5, "8", true},
		{0.25, "c", true},
		{0.125, "e", true},
		{1.0 / 1024, "ffc", true},
		{0.01, "fd70a3d70a3d71", true}, // 2^56 − round(0.01·2^56), all 14 digits
		{0.1, "e6666666666666", true},
	}
	for _, tt := range tests {
		got, ok := SamplingThreshold(tt.p)
		assert.Equal(t, tt.ok, ok, "p=%v", tt.p)
		assert.Equal(t, tt.want, got, "p=%v", tt.p)
		if ok { // the span says what intel decided with
			assert.Equal(t, intel.Decision{Export: true, Probability: tt.p}.TraceState(), "ot=th:"+got)
		}
	}
}

func TestSpanNameNeverCarriesARawPath(t *testing.T) {
	for _, path := range []string{
		"/api/users/12345", "/api/users/8c9d2f5e-0d3a-4c1b-9a8e-2b7f1e6c4d3a/avatar",
		"/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	} {
		x := httpExchange(l7.SideServer, "1.1", "GET", path, 200)
		name := SpanName(x)
		assert.NotContains(t, name, "12345")
		assert.NotContains(t, name, "8c9d2f5e")
		assert.NotContains(t, name, "e3b0c442")
	}
}
