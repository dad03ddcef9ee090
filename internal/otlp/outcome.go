package otlp

import (
	"strconv"

	"github.com/netintel/netintelreceiver/internal/l7"
)

// outcome is how an exchange ended, judged from one side, the way the semantic conventions
// judge it: shared by spans and metrics so a span's status and its metric's error.type agree.
type outcome struct {
	errType string // error.type; empty when the exchange did not fail from this side's view
	message string // span status message, only for failures without a protocol status
}

func (o outcome) failed() bool { return o.errType != "" }

// judge applies the conventions' error rules for the protocol and the observing side:
// HTTP 5xx on both sides and 4xx on the client; gRPC codes by side; a DNS rcode other than
// NOERROR; and any failure (reset, timeout, refused) that left no status at all.
func judge(x *l7.Exchange, side l7.Side) outcome {
	switch {
	case x.GRPC != nil:
		if x.GRPC.Status >= 0 {
			name := grpcCodeName(x.GRPC)
			if side == l7.SideServer {
				if _, bad := grpcServerErrors[name]; bad {
					return outcome{errType: name}
				}
				return outcome{}
			}
			if name != "OK" {
				return outcome{errType: name}
			}
			return outcome{}
		}
		// No trailers: an HTTP-level rejection (a proxy's 503) still says what happened.
		if x.HTTP != nil && x.HTTP.Status >= 400 && x.Failure == l7.FailureNone {
			return outcome{errType: statusText(x.HTTP.Status)}
		}
	case x.HTTP != nil && x.HTTP.Status > 0:
		s := x.HTTP.Status
		if s >= 500 || (s >= 400 && side == l7.SideClient) {
			return outcome{errType: statusText(s)}
		}
		return outcome{}
	case x.DNS != nil && x.DNS.RCode >= 0:
		if x.DNS.RCode != 0 {
			return outcome{errType: rcodeName(x.DNS)}
		}
		return outcome{}
	}
	switch x.Failure {
	case l7.FailureNone, l7.FailureAbandoned, l7.FailureUnknown:
		// A client that hung up before the answer cancelled its own call: no side failed.
		// An outcome capture did not see (lost events) is nobody's failure either.
		return outcome{}
	}
	return outcome{errType: x.Failure.String(), message: failureMessage(x.Failure)}
}

func failureMessage(f l7.Failure) string {
	switch f {
	case l7.FailureReset:
		return "connection reset before the response"
	case l7.FailureClosed:
		return "connection closed before the response"
	case l7.FailureTimeout:
		return "no response before the timeout"
	case l7.FailureRefused:
		return "connection refused"
	}
	return ""
}

func grpcCodeName(g *l7.GRPC) string {
	if g.StatusName != "" {
		return g.StatusName
	}
	if g.Status >= 0 && g.Status < len(grpcCodeNames) {
		return grpcCodeNames[g.Status]
	}
	return "CODE_" + strconv.Itoa(g.Status)
}

func rcodeName(d *l7.DNS) string {
	if d.RCodeName != "" {
		return d.RCodeName
	}
	return "RCODE_" + strconv.Itoa(d.RCode)
}

// statusTexts avoids an allocation per exchange for the status code as error.type.
var statusTexts = func() (t [600]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusText(code int) string {
	if code >= 0 && code < len(statusTexts) {
		return statusTexts[code]
	}
	return strconv.Itoa(code)
}
