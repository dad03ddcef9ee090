package otlp

// Semantic-convention attribute keys (semconv 1.37+ names; the older RPC keys are kept
// alongside for backends that still read them, see rpcAttributes).
const (
	attrHTTPMethod         = "http.request.method"
	attrHTTPMethodOriginal = "http.request.method_original"
	attrHTTPStatus         = "http.response.status_code"
	attrHTTPRoute          = "http.route"
	attrURLPath            = "url.path"
	attrURLScheme          = "url.scheme"
	attrURLTemplate        = "url.template"
	attrServerAddress      = "server.address"
	attrServerPort         = "server.port"
	attrClientAddress      = "client.address"
	attrClientPort         = "client.port"
	attrPeerAddress        = "network.peer.address"
	attrPeerPort           = "network.peer.port"
	attrProtocolName       = "network.protocol.name"
	attrProtocolVersion    = "network.protocol.version"
	attrTransport          = "network.transport"
	attrUserAgent          = "user_agent.original"
	attrErrorType          = "error.type"

	attrRPCSystemName     = "rpc.system.name"
	attrRPCMethod         = "rpc.method"
	attrRPCResponseStatus = "rpc.response.status_code"
	attrRPCSystemOld      = "rpc.system"
	attrRPCServiceOld     = "rpc.service"
	attrRPCGRPCStatusOld  = "rpc.grpc.status_code"

	attrDNSQuestionName = "dns.question.name"
	attrDNSQuestionType = "dns.question.type"
	attrDNSResponseCode = "dns.response_code"
	attrDNSAnswers      = "dns.answers"

	attrTLSServerName      = "tls.client.server_name"
	attrTLSProtocolVersion = "tls.protocol.version"
	attrTLSNextProtocol    = "tls.next_protocol"

	attrServicePeerName = "service.peer.name"
	attrPeerServiceOld  = "peer.service"

	attrOverflow = "otel.metric.overflow"
)

// netintel's own attributes, for what the conventions do not cover.
const (
	attrNIPartial = "netintel.http.partial_headers"
)

const grpcSystem = "grpc"

// knownMethods are the HTTP methods the conventions list; anything else is "_OTHER" so a
// client cannot blow up cardinality with invented methods.
var knownMethods = map[string]struct{}{
	"GET": {}, "HEAD": {}, "POST": {}, "PUT": {}, "DELETE": {}, "CONNECT": {},
	"OPTIONS": {}, "TRACE": {}, "PATCH": {}, "QUERY": {},
}

const otherMethod = "_OTHER"

func normalizeMethod(m string) string {
	if _, ok := knownMethods[m]; ok {
		return m
	}
	return otherMethod
}

// grpcServerErrors are the gRPC codes the conventions treat as server-side errors; on the
// client every code but OK is an error.
var grpcServerErrors = map[string]struct{}{
	"UNKNOWN": {}, "DEADLINE_EXCEEDED": {}, "UNIMPLEMENTED": {}, "INTERNAL": {},
	"UNAVAILABLE": {}, "DATA_LOSS": {},
}

// grpcCodeNames maps grpc-status values to their canonical names, for exchanges whose
// parser only filled the number.
var grpcCodeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}
