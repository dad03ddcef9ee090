package capture

import (
	"hash/fnv"
	"math"
	"time"
)

// Judging is how the kernel judges HTTP/1 exchanges (DESIGN §2): what makes one worth sending.
// The receiver writes it from the intelligence config; it may be rewritten while running.
type Judging struct {
	// Aggregate turns judging on: healthy exchanges are counted, not sent. Off, every HTTP/1
	// exchange is sent (as an HTTP1Event with reason HTTP1Sampled).
	Aggregate bool
	// ErrorStatus is the status from which a response is an error (sent, up to ErrorRecords).
	ErrorStatus int
	// ErrorRecords is how many errors of one aggregate key (owner, peer, method, route,
	// status) the kernel sends whole per drain and CPU; the others are counted in the key's
	// aggregate, so an outage's errors do not cross one by one. An error that is slow, sampled
	// or not parsed whole is sent anyway. 0: every error is sent.
	ErrorRecords int
	// Slow is the latency from which an exchange is sent whatever its route.
	Slow time.Duration
	// SampleProbability is the fraction of healthy exchanges sent anyway, chosen from the
	// request identity (both ends and both nodes choose alike: SampleThreshold).
	SampleProbability float64
	// Bounds are the explicit histogram bounds of HTTP1Aggregate.Explicit (ascending, at most
	// MaxBounds).
	Bounds []time.Duration
	// Recovery is how long after an error the healthy exchanges of the same owner, peer and
	// route are sent (HTTP1Recovery): a retried call's success then reaches user space with its
	// failures. 0: never.
	Recovery time.Duration
	// PairLocal judges a connection whose two ends are both on this node once, on its
	// server's socket: the client's socket goes quiet after its first response (its data calls
	// cost one lookup) and the server's exchanges and aggregates say Paired — they stand for the
	// client's side too. Off, both ends judge, as when the peer is remote.
	PairLocal bool
}

// RandomnessBits is the width of the OTel consistent-sampling randomness: the low 56 bits of
// a trace id.
const RandomnessBits = 56

// SampleThreshold is the OTel probability-sampling threshold of probability p: keep when the
// randomness is at least it. The kernel compares the same number.
func SampleThreshold(p float64) uint64 {
	const max = uint64(1) << RandomnessBits
	if p >= 1 {
		return 0
	}
	if p <= 0 {
		return max
	}
	// Round the kept fraction, not the rejected one: 1-p loses p's low bits in floating point.
	return max - uint64(math.Round(p*float64(max)))
}

// RouteLimit is a latency from which the kernel sends an exchange of one process's route
// individually (intel's baseline × latency_deviation_factor), below Judging.Slow.
type RouteLimit struct {
	PID      uint32
	RouteKey uint64
	Latency  time.Duration
}

// RouteRule tells the kernel that under a templated prefix, on a server port, the next path
// segment is an identifier (a route user space learned).
type RouteRule struct {
	Port   uint16
	Prefix string // the templated prefix up to and including its last '/': "/users/"
}

// Judge is the eBPF source's face towards the stages that steer the kernel: judging settings,
// per-route limits and rules down, aggregates up.
type Judge interface {
	SetJudging(Judging) error
	// SetRouteLimits replaces the kernel's per-route limits.
	SetRouteLimits([]RouteLimit) error
	// SetRouteRules replaces the kernel's route rules.
	SetRouteRules([]RouteRule) error
	// DrainHTTP1 hands every aggregate counted since the last drain to fn, and resets them.
	DrainHTTP1(fn func(*HTTP1Aggregate)) error
}

// Stopper is a source that can stop following one socket: user space gave up on its bytes (an
// l7 parser that cannot follow them, a protocol switched off), so the kernel stops sending them
// at the socket's next read or write. Only sockets whose bytes cross are checked (raw and
// HTTP/2): HTTP/1 judged in the kernel costs user space nothing.
type Stopper interface {
	StopSocket(cookie uint64) error
}

// RouteKey is the kernel's route key of a route template ("/items/{id}"): FNV-1a-64 of its
// bytes, the root for an empty template. bpf/c/http1.h computes the same key from a request
// target, templating identifier segments as it goes.
func RouteKey(template string) uint64 {
	if template == "" {
		template = "/"
	}
	h := fnv.New64a()
	h.Write([]byte(template))
	return h.Sum64()
}

// methodNames are the kernel's HTTP/1 methods (enum http1_method).
var methodNames = [...]string{"", "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE"}

func methodName(m uint8) string {
	if int(m) < len(methodNames) {
		return methodNames[m]
	}
	return ""
}

// The request identity's hash (DESIGN §4): the trace id of a TCP exchange is derived from its
// two ISNs, its request's sequence number and its HTTP/2 stream with splitmix64's finalizer,
// which the kernel computes too (bpf/c/common.h, request_randomness): both decide the sampler
// alike from the same bits.
const (
	traceHiKey    = 0x9e3779b97f4a7c15
	traceLoKey    = 0x6c62272e07bb0142
	clientSpanKey = 0xd6e8feb86659fd93
	serverSpanKey = 0xa0761d6478bd642f
)

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// RequestIdentity is a TCP exchange's 128-bit trace id (hi, lo) and its CLIENT and SERVER span
// ids.
func RequestIdentity(clientISN, serverISN, requestSeq, streamID uint32) (hi, lo, clientSpan, serverSpan uint64) {
	a := uint64(clientISN)<<32 | uint64(serverISN)
	b := uint64(requestSeq)<<32 | uint64(streamID)
	hi = mix64(a ^ traceHiKey ^ mix64(b))
	lo = mix64(b ^ traceLoKey ^ mix64(a))
	clientSpan = mix64(a ^ clientSpanKey ^ mix64(b^traceLoKey))
	serverSpan = mix64(a ^ serverSpanKey ^ mix64(b^traceLoKey))
	return hi, lo, clientSpan, serverSpan
}

// RequestRandomness is the OTel sampling randomness of a TCP request: the low 56 bits of its
// trace id.
func RequestRandomness(clientISN, serverISN, requestSeq, streamID uint32) uint64 {
	_, lo, _, _ := RequestIdentity(clientISN, serverISN, requestSeq, streamID)
	return lo & (1<<RandomnessBits - 1)
}
