package otlp

import (
	"net"
	"strconv"
	"strings"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// Span flags (OTLP): the low byte is the W3C trace-flags byte.
const (
	flagSampled     = 0x01  // W3C sampled
	flagRandom      = 0x02  // W3C random: the trace id's low 56 bits are random (ISN-derived hash)
	flagHasIsRemote = 0x100 // OTLP: the is-remote bit below is meaningful
	flagIsRemote    = 0x200 // OTLP: the parent lives in another process (the client)
)

// PathPolicy is what leaves the node of a request's path (config privacy.url_path).
type PathPolicy uint8

const (
	// PathRaw exports url.path as sent (never the query string): what the semantic
	// conventions require.
	PathRaw PathPolicy = iota
	// PathTemplate exports the route template in url.path (and url.full) instead: a
	// departure from the conventions, for paths that carry ids, emails or tokens.
	PathTemplate
	// PathDrop exports no url.path and no url.full at all (http.route / url.template and the
	// span name still carry the template).
	PathDrop
)

// Privacy says what of an exchange may be exported.
type Privacy struct {
	URLPath PathPolicy
}

// TraceBuilder collects the spans of one batch, one ResourceSpans per resource.
// It is not safe for concurrent use; the receiver keeps one per pipeline goroutine.
type TraceBuilder struct {
	td      ptrace.Traces
	spans   map[identity.Resource]ptrace.SpanSlice
	n       int
	privacy Privacy
}

// NewTraceBuilder returns an empty builder that applies p to every span.
func NewTraceBuilder(p Privacy) *TraceBuilder {
	return &TraceBuilder{td: ptrace.NewTraces(), spans: make(map[identity.Resource]ptrace.SpanSlice), privacy: p}
}

// Append adds the span of the observed side of x (see AppendSpans).
func (b *TraceBuilder) Append(x *l7.Exchange, client, server identity.Service, probability float64) {
	res := resourceOf(observed(x, client, server))
	ss, ok := b.spans[res]
	if !ok {
		ss = newScopeSpans(b.td, res)
		b.spans[res] = ss
	}
	fillSpan(ss.AppendEmpty(), x, client, server, probability, b.privacy)
	b.n++
}

// Len is the number of spans appended since the last Traces.
func (b *TraceBuilder) Len() int { return b.n }

// Traces hands over the batch and starts a new one.
func (b *TraceBuilder) Traces() ptrace.Traces {
	td := b.td
	b.td = ptrace.NewTraces()
	clear(b.spans)
	b.n = 0
	return td
}

// AppendSpans appends to dst the span of the side of x that was observed: a CLIENT span in
// the client's resource for l7.SideClient, a SERVER span in the server's resource for
// l7.SideServer (when both ends are local the tracker yields the two halves as two
// exchanges). An existing ResourceSpans of dst with the same resource is reused.
//
// Call it for the exchanges intel decided to export (intel.Decision.Export), with
// probability = intel.Decision.Probability: below 1 it is recorded as the OTel threshold in
// tracestate ("ot=th:…", the same value as intel.Decision.TraceState) so span-derived counts
// (span_metrics) are corrected downstream. Paths are exported raw (Privacy{}).
func AppendSpans(dst ptrace.Traces, x *l7.Exchange, client, server identity.Service, probability float64) {
	res := resourceOf(observed(x, client, server))
	rss := dst.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		if resourceMatches(rs.Resource().Attributes(), res) && rs.ScopeSpans().Len() > 0 {
			fillSpan(rs.ScopeSpans().At(0).Spans().AppendEmpty(), x, client, server, probability, Privacy{})
			return
		}
	}
	fillSpan(newScopeSpans(dst, res).AppendEmpty(), x, client, server, probability, Privacy{})
}

func observed(x *l7.Exchange, client, server identity.Service) identity.Service {
	if x.Side == l7.SideServer {
		return server
	}
	return client
}

func newScopeSpans(td ptrace.Traces, res identity.Resource) ptrace.SpanSlice {
	rs := td.ResourceSpans().AppendEmpty()
	putResource(rs.Resource().Attributes(), res)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(ScopeName)
	return ss.Spans()
}

func resourceMatches(attrs pcommon.Map, r identity.Resource) bool {
	n := 0
	check := func(k, want string) bool {
		v, ok := attrs.Get(k)
		if want == "" {
			return !ok
		}
		n++
		return ok && v.AsString() == want
	}
	pid := ""
	if r.PID != 0 {
		pid = strconv.FormatUint(uint64(r.PID), 10)
	}
	ok := check(attrServiceName, r.ServiceName) && check(attrProcessPID, pid) &&
		check(attrExecutableName, r.ExecutableName) && check(attrContainerID, r.ContainerID) &&
		check(attrHostName, r.HostName)
	for _, a := range resourceStrings {
		ok = ok && check(a.key, a.get(&r))
	}
	return ok && attrs.Len() == n
}

// SpanName is the span name of an exchange: "{method} {route}" (or "{method}") for HTTP,
// "pkg.Service/Method" for gRPC, "DNS {type}" for DNS — never a raw path.
func SpanName(x *l7.Exchange) string {
	switch {
	case x.GRPC != nil:
		if m := grpcFullMethod(x.GRPC); m != "" {
			return m
		}
		return "grpc"
	case x.HTTP != nil:
		m := normalizeMethod(x.HTTP.Method)
		if m == otherMethod {
			m = "HTTP"
		}
		if x.HTTP.Path == "" {
			return m
		}
		return m + " " + routeOf(x.HTTP)
	case x.DNS != nil:
		if x.DNS.Type == "" {
			return "DNS"
		}
		return "DNS " + x.DNS.Type
	case x.TLS != nil:
		return "TLS handshake"
	}
	return x.Protocol.String()
}

func grpcFullMethod(g *l7.GRPC) string {
	if g.Service == "" && g.Method == "" {
		return ""
	}
	return g.Service + "/" + g.Method
}

func fillSpan(sp ptrace.Span, x *l7.Exchange, client, server identity.Service, probability float64, privacy Privacy) {
	sp.SetTraceID(x.TraceID())
	flags := uint32(flagSampled | flagRandom)
	if x.Side == l7.SideServer {
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetSpanID(x.ServerSpanID())
		sp.SetParentSpanID(x.ClientSpanID())
		flags |= flagHasIsRemote | flagIsRemote
	} else {
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetSpanID(x.ClientSpanID())
		flags |= flagHasIsRemote
	}
	sp.SetFlags(flags)
	if th, ok := SamplingThreshold(probability); ok {
		sp.TraceState().FromRaw("ot=th:" + th)
	}
	sp.SetName(SpanName(x))
	start := pcommon.NewTimestampFromTime(x.Start)
	end := start
	if x.End.After(x.Start) {
		end = pcommon.NewTimestampFromTime(x.End)
	}
	sp.SetStartTimestamp(start)
	sp.SetEndTimestamp(end)

	attrs := sp.Attributes()
	attrs.EnsureCapacity(17)
	putNetworkAttributes(attrs, x, client, server)
	switch {
	case x.Failure == l7.FailureUnknown:
		attrs.PutStr(attrNISpanEnd, spanEndNotObserved)
	case x.Failure != l7.FailureNone:
		attrs.PutStr(attrNISpanEnd, spanEndFailure)
	default:
		attrs.PutStr(attrNISpanEnd, spanEndResponseFirstByte)
	}
	switch {
	case x.GRPC != nil:
		putRPCAttributes(attrs, x.GRPC)
		if x.HTTP != nil && x.HTTP.UserAgent != "" {
			attrs.PutStr(attrUserAgent, x.HTTP.UserAgent)
		}
	case x.HTTP != nil:
		putHTTPAttributes(attrs, x, privacy)
	case x.DNS != nil:
		putDNSAttributes(attrs, x.DNS)
	case x.TLS != nil:
		putTLSAttributes(attrs, x.TLS)
	}

	o := judge(x, x.Side)
	if o.failed() {
		attrs.PutStr(attrErrorType, o.errType)
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage(o.message)
	}
}

// putNetworkAttributes sets where the exchange went and who the peer is. Client spans to a
// peer with no local process name it (service.peer.name, and peer.service for backends on the
// older conventions) so service graphs draw it as a virtual node.
func putNetworkAttributes(attrs pcommon.Map, x *l7.Exchange, client, server identity.Service) {
	if t := x.Transport.String(); t != "unknown" {
		attrs.PutStr(attrTransport, t)
	}
	if name := protocolName(x); name != "" {
		attrs.PutStr(attrProtocolName, name)
	}
	attrs.PutStr(attrServerAddress, serverAddress(x))
	if p := serverPort(x); p != 0 {
		attrs.PutInt(attrServerPort, int64(p))
	}
	if x.Side == l7.SideServer {
		if a := x.Client.Addr.Addr(); a.IsValid() {
			ip := a.Unmap().String()
			attrs.PutStr(attrClientAddress, ip)
			attrs.PutInt(attrClientPort, int64(x.Client.Addr.Port()))
			attrs.PutStr(attrPeerAddress, ip)
			attrs.PutInt(attrPeerPort, int64(x.Client.Addr.Port()))
		}
		if !client.Local && client.Name != "" {
			attrs.PutStr(attrServicePeerName, client.Name)
		}
		return
	}
	if a := x.Server.Addr.Addr(); a.IsValid() {
		attrs.PutStr(attrPeerAddress, a.Unmap().String())
		attrs.PutInt(attrPeerPort, int64(x.Server.Addr.Port()))
	}
	if !server.Local && server.Name != "" {
		attrs.PutStr(attrServicePeerName, server.Name)
		attrs.PutStr(attrPeerServiceOld, server.Name)
	}
}

func protocolName(x *l7.Exchange) string {
	switch {
	case x.GRPC != nil, x.HTTP != nil:
		return "http"
	case x.DNS != nil:
		return "dns"
	case x.TLS != nil:
		return "tls"
	}
	return ""
}

// serverAddress is the name the client addressed (Host / :authority, TLS SNI) when the bytes
// carry it, otherwise the server's IP.
func serverAddress(x *l7.Exchange) string {
	if x.HTTP != nil && x.HTTP.Host != "" {
		return hostOnly(x.HTTP.Host)
	}
	if x.TLS != nil && x.TLS.SNI != "" {
		return x.TLS.SNI
	}
	if a := x.Server.Addr.Addr(); a.IsValid() {
		return a.Unmap().String()
	}
	return ""
}

// serverPort goes with serverAddress: the Host header's port when the address came from a Host
// header that names one (a proxy forwards the client's Host to an upstream on another port:
// address and port must describe the same origin), otherwise the connection's port.
func serverPort(x *l7.Exchange) uint16 {
	if x.HTTP != nil && x.HTTP.Host != "" {
		if _, p, err := net.SplitHostPort(x.HTTP.Host); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil && n != 0 {
				return uint16(n)
			}
		}
	}
	return x.Server.Addr.Port()
}

// hostOnly strips the port from a Host header value ("api:8080", "[::1]:80").
func hostOnly(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		return host[:i]
	}
	return host
}

func putHTTPAttributes(attrs pcommon.Map, x *l7.Exchange, privacy Privacy) {
	h := x.HTTP
	m := normalizeMethod(h.Method)
	attrs.PutStr(attrHTTPMethod, m)
	if m == otherMethod && h.Method != "" {
		attrs.PutStr(attrHTTPMethodOriginal, h.Method)
	}
	if h.Path != "" {
		// url.path is the raw path unless privacy.url_path says otherwise (the query string
		// never leaves, DESIGN §7); the route template goes to http.route on the server and
		// url.template on the client.
		route := routeOf(h)
		path, ok := exportedPath(h.Path, route, privacy.URLPath)
		if ok {
			attrs.PutStr(attrURLPath, path)
		}
		if x.Side == l7.SideServer {
			attrs.PutStr(attrHTTPRoute, route)
		} else {
			attrs.PutStr(attrURLTemplate, route)
			if ok {
				attrs.PutStr(attrURLFull, urlFull(x, path))
			}
		}
	}
	attrs.PutStr(attrURLScheme, "http")
	if h.Version != "" {
		attrs.PutStr(attrProtocolVersion, h.Version)
	}
	if h.Status > 0 {
		attrs.PutInt(attrHTTPStatus, int64(h.Status))
	}
	if h.UserAgent != "" {
		attrs.PutStr(attrUserAgent, h.UserAgent)
	}
	if h.Partial {
		attrs.PutBool(attrNIPartial, true)
	}
}

// putRPCAttributes writes the gRPC call under the current conventions (rpc.system.name,
// rpc.method as the full "pkg.Service/Method", rpc.response.status_code as the code name)
// and keeps the older rpc.system, rpc.service and rpc.grpc.status_code for backends that
// still read them.
//
// The two generations disagree on rpc.method: the old one is the short method ("SayHello")
// read together with rpc.service, the new one the fully-qualified "helloworld.Greeter/SayHello".
// An attribute has one value, so rpc.method carries the new, fully-qualified form: it still
// names the method unambiguously for an old reader, and rpc.service gives it the service.
// exportedPath is what url.path carries under the policy; ok is false when it is dropped.
func exportedPath(raw, route string, policy PathPolicy) (string, bool) {
	switch policy {
	case PathTemplate:
		return route, true
	case PathDrop:
		return "", false
	}
	return raw, true
}

// urlFull is the absolute URL a client requested, without the query string (privacy):
// scheme, the authority the client addressed (Host header, else the server's address and
// port) and the exported path.
func urlFull(x *l7.Exchange, path string) string {
	host := serverAddress(x)
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]" // an IPv6 literal
	}
	port := serverPort(x)
	var b strings.Builder
	b.Grow(len("http://") + len(host) + 6 + len(path))
	b.WriteString("http://")
	b.WriteString(host)
	if port != 0 && port != 80 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(int(port)))
	}
	b.WriteString(path)
	return b.String()
}

func putRPCAttributes(attrs pcommon.Map, g *l7.GRPC) {
	attrs.PutStr(attrRPCSystemName, grpcSystem)
	attrs.PutStr(attrRPCSystemOld, grpcSystem)
	if m := grpcFullMethod(g); m != "" {
		attrs.PutStr(attrRPCMethod, m)
	}
	if g.Service != "" {
		attrs.PutStr(attrRPCServiceOld, g.Service)
	}
	if g.Status >= 0 {
		attrs.PutStr(attrRPCResponseStatus, grpcCodeName(g))
		attrs.PutInt(attrRPCGRPCStatusOld, int64(g.Status))
	}
}

func putDNSAttributes(attrs pcommon.Map, d *l7.DNS) {
	if d.Name != "" {
		attrs.PutStr(attrDNSQuestionName, d.Name)
	}
	if d.Type != "" {
		attrs.PutStr(attrNIDNSQuestionType, d.Type)
	}
	if d.RCode >= 0 {
		attrs.PutStr(attrNIDNSResponseCode, rcodeName(d))
	}
	if len(d.Answers) > 0 {
		s := attrs.PutEmptySlice(attrDNSAnswers)
		s.EnsureCapacity(len(d.Answers))
		for _, a := range d.Answers {
			s.AppendEmpty().SetStr(a.String())
		}
	}
}

// putTLSAttributes writes the handshake's metadata; the server name the client asked for (SNI)
// is already server.address (putNetworkAttributes).
func putTLSAttributes(attrs pcommon.Map, t *l7.TLS) {
	if t.Version != "" {
		attrs.PutStr(attrTLSProtocolVersion, t.Version)
	}
	if len(t.ALPN) == 1 {
		attrs.PutStr(attrTLSNextProtocol, t.ALPN[0])
	}
}

// SamplingThreshold is the OTel probability-sampling threshold for probability p, as the
// "th" value of the "ot" tracestate entry (contrib pkg/sampling: (1-p)·2^56, trailing zeros
// trimmed; https://opentelemetry.io/docs/specs/otel/trace/tracestate-probability-sampling/).
// ok is false when p ≥ 1 (nothing to record) or p is not a probability.
func SamplingThreshold(p float64) (th string, ok bool) {
	if !(p > 0 && p < 1) {
		return "", false
	}
	t, err := sampling.ProbabilityToThreshold(max(p, sampling.MinSamplingProbability))
	if err != nil {
		return "", false
	}
	return t.TValue(), true
}
