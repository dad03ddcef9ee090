package l7

import (
	"net/url"
	"strconv"
	"strings"
)

// gRPC rides on HTTP/2 (http2.go marks a stream gRPC by its content type); this file holds
// what is specific to it: the call name and the status codes.

var grpcCodeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

// grpcCodeName maps a grpc-status value to its canonical name.
func grpcCodeName(code int) string {
	if code >= 0 && code < len(grpcCodeNames) {
		return grpcCodeNames[code]
	}
	return "CODE_" + strconv.Itoa(code)
}

// splitGRPCPath splits "/pkg.Service/Method" into its service and method.
func splitGRPCPath(path string) (service, method string) {
	p := strings.TrimPrefix(path, "/")
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return p, ""
	}
	return p[:i], p[i+1:]
}

// decodeGRPCMessage undoes the percent-encoding gRPC applies to grpc-message.
func decodeGRPCMessage(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	if s, err := url.PathUnescape(v); err == nil {
		return s
	}
	return v
}
