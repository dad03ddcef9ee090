package otlp

import (
	semconv138 "go.opentelemetry.io/otel/semconv/v1.38.0"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Semantic-convention attribute keys, from the newest semconv package the module proxy
// serves (v1.43.0). The RPC keys the conventions renamed in 1.39 are also written under
// their old names for backends that still read them (see putRPCAttributes); those come from
// the last package that had them (v1.38.0).
const (
	attrHTTPMethod         = string(semconv.HTTPRequestMethodKey)
	attrHTTPMethodOriginal = string(semconv.HTTPRequestMethodOriginalKey)
	attrHTTPStatus         = string(semconv.HTTPResponseStatusCodeKey)
	attrHTTPRoute          = string(semconv.HTTPRouteKey)
	attrURLPath            = string(semconv.URLPathKey)
	attrURLFull            = string(semconv.URLFullKey)
	attrURLScheme          = string(semconv.URLSchemeKey)
	attrURLTemplate        = string(semconv.URLTemplateKey)
	attrServerAddress      = string(semconv.ServerAddressKey)
	attrServerPort         = string(semconv.ServerPortKey)
	attrClientAddress      = string(semconv.ClientAddressKey)
	attrClientPort         = string(semconv.ClientPortKey)
	attrPeerAddress        = string(semconv.NetworkPeerAddressKey)
	attrPeerPort           = string(semconv.NetworkPeerPortKey)
	attrProtocolName       = string(semconv.NetworkProtocolNameKey)
	attrProtocolVersion    = string(semconv.NetworkProtocolVersionKey)
	attrTransport          = string(semconv.NetworkTransportKey)
	attrUserAgent          = string(semconv.UserAgentOriginalKey)
	attrErrorType          = string(semconv.ErrorTypeKey)

	attrRPCSystemName     = string(semconv.RPCSystemNameKey)
	attrRPCMethod         = string(semconv.RPCMethodKey)
	attrRPCResponseStatus = string(semconv.RPCResponseStatusCodeKey)
	attrRPCSystemOld      = string(semconv138.RPCSystemKey)
	attrRPCServiceOld     = string(semconv138.RPCServiceKey)
	attrRPCGRPCStatusOld  = string(semconv138.RPCGRPCStatusCodeKey)

	attrDNSQuestionName = string(semconv.DNSQuestionNameKey)
	attrDNSAnswers      = string(semconv.DNSAnswersKey)

	// TLS: the server name the client asked for is server.address (tls.client.server_name
	// is deprecated for it).
	attrTLSProtocolVersion = string(semconv.TLSProtocolVersionKey)
	attrTLSNextProtocol    = string(semconv.TLSNextProtocolKey)

	attrServicePeerName = string(semconv.ServicePeerNameKey)
	attrPeerServiceOld  = string(semconv138.PeerServiceKey)

	// attrOverflow is the attribute of a metric's overflow series, from the OTel metrics
	// SDK specification's cardinality limits (not a semantic-convention key).
	attrOverflow = "otel.metric.overflow"
)

// netintel's own attributes, for what the conventions do not cover.
const (
	attrNIPartial = "netintel.http.partial_headers"
	// The conventions have dns.question.name but no key for the query type or the response
	// code (dns.lookup.duration only carries error.type): netintel names them.
	attrNIDNSQuestionType = "netintel.dns.question.type"
	attrNIDNSResponseCode = "netintel.dns.response_code"
	// attrNISpanEnd says what a span's end time is: netintel sees bytes, so an answered
	// exchange ends at the response's FIRST byte (not its last, as an instrumented client
	// would record), a failed one when the failure was observed, and one whose outcome was
	// not observed (capture lost events) has no duration at all.
	attrNISpanEnd = "netintel.span.end"
)

// Values of netintel.span.end.
const (
	spanEndResponseFirstByte = "response_first_byte"
	spanEndFailure           = "failure_observed"
	spanEndNotObserved       = "not_observed"
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
