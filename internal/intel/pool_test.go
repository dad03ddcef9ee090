package intel

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
)

func remoteSvc(name string) identity.Service {
	return identity.Service{Name: name, Resource: identity.Resource{ServiceName: name}}
}

func connEv(kind capture.ConnKind, role capture.Role, local, remote string, at time.Duration) *capture.ConnEvent {
	return &capture.ConnEvent{Kind: kind, Time: t0.Add(at), Socket: capture.Socket{
		Transport: capture.TransportTCP, Role: role, Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote)}}
}

// requestsOnNewConnections: n requests at rate per second from hey to pool, each on a new
// connection (accepted by the local server) or, with reuse, on the first few.
func requestsOnNewConnections(e *Engine, s *stream, n int, perSecond float64, reuse bool) {
	for i := 0; i < n; i++ {
		at := time.Duration(float64(i) / perSecond * float64(time.Second))
		client := fmt.Sprintf("127.0.0.1:%d", 30000+i)
		if reuse {
			client = fmt.Sprintf("127.0.0.1:%d", 30000+i%4)
		}
		if !reuse || i < 4 {
			e.Conn(connEv(capture.ConnOpened, capture.RoleClient, client, "127.0.0.2:8080", at), svc("hey"), svc("pool"))
			e.Conn(connEv(capture.ConnOpened, capture.RoleServer, "127.0.0.2:8080", client, at), svc("hey"), svc("pool"))
		}
		x := s.http(client, "127.0.0.2:8080", "GET", "/", 200, t0.Add(at+time.Millisecond), time.Millisecond)
		e.Exchange(x, svc("hey"), svc("pool"))
	}
}

func pools(fs []Finding, reason PoolReason) []Finding {
	var out []Finding
	for _, f := range kinds(fs, KindConnectionPoolExhaustion) {
		if f.PoolExhaustion.Reason == reason {
			out = append(out, f)
		}
	}
	return out
}

func TestNoConnectionReuse(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	var s stream
	requestsOnNewConnections(e, &s, 300, 30, false)
	fs := pools(e.Findings(t0.Add(10*time.Second)), PoolNoReuse)
	requireLen(t, "a connection per request", fs, 1)
	p := fs[0].PoolExhaustion
	// Both ends are local: each connection counted once (at the accepting side).
	if p.Connections != 300 || p.Requests != 300 || p.RatePerSec != 30 || p.Edge != (EdgeKey{Source: "hey", Dest: "pool", Protocol: "tcp", Port: 8080}) ||
		fs[0].Subject.Name != "hey" || fs[0].Severity != SeverityMedium {
		t.Fatalf("pool = %+v", p)
	}
	// Healthy twins: keep-alive at the same rate; a connection per request at a low rate
	// (a health probe every second).
	for _, tc := range []struct {
		name  string
		rate  float64
		reuse bool
	}{{"keep-alive", 300, true}, {"probes", 1, false}} {
		h := testEngine(nil)
		h.Findings(t0)
		requestsOnNewConnections(h, &s, 10*int(tc.rate), tc.rate, tc.reuse)
		requireLen(t, tc.name, kinds(h.Findings(t0.Add(10*time.Second)), KindConnectionPoolExhaustion), 0)
	}
}

// A listener that stopped accepting: two connects completed into its queue, the rest
// retransmitted their SYN and gave up.
func TestAcceptQueueFull(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	stuck := remoteSvc("stuck") // no accept was ever seen: not known as a local process
	for i := 0; i < 2; i++ {
		e.Conn(connEv(capture.ConnOpened, capture.RoleClient, fmt.Sprintf("127.0.0.1:%d", 31000+i), "127.0.15.70:8080", time.Duration(i)*time.Millisecond), svc("curl"), stuck)
	}
	for i := 2; i < 6; i++ {
		local := fmt.Sprintf("127.0.0.1:%d", 31000+i)
		e.Conn(connEv(capture.ConnHandshakeRetransmit, capture.RoleClient, local, "127.0.15.70:8080", time.Second), svc("curl"), stuck)
		failed := connEv(capture.ConnFailed, capture.RoleClient, local, "127.0.15.70:8080", 2*time.Second)
		failed.Reason = capture.FailureOther // closed in SYN_SENT by its caller: no errno
		e.Conn(failed, svc("curl"), stuck)
	}
	fs := e.Findings(t0.Add(10 * time.Second))
	ps := pools(fs, PoolAcceptQueueFull)
	requireLen(t, "accept queue full", ps, 1)
	if p := ps[0].PoolExhaustion; p.Unanswered != 8 || p.Connections != 2 || p.Edge.Dest != "stuck" || p.Edge.Port != 8080 || ps[0].Severity != SeverityHigh {
		t.Fatalf("pool = %+v", p)
	}
	requireLen(t, "its connects are not also connection failures", kinds(fs, KindConnectionFailure), 0)

	// Healthy twin: a host that answers nothing is down (connection_failure), not full.
	h := testEngine(nil)
	h.Findings(t0)
	for i := 0; i < 6; i++ {
		failed := connEv(capture.ConnFailed, capture.RoleClient, fmt.Sprintf("10.0.0.1:%d", 32000+i), "10.9.9.9:5432", time.Duration(i)*time.Second)
		failed.Reason, failed.Errno = capture.FailureTimedOut, 110
		h.Conn(failed, svc("orders"), remoteSvc("10.9.9.9:5432"))
	}
	fs = h.Findings(t0.Add(10 * time.Second))
	requireLen(t, "dead host", kinds(fs, KindConnectionPoolExhaustion), 0)
	if cf := kinds(fs, KindConnectionFailure); len(cf) != 1 || cf[0].ConnectionFailure.Reason != "timed_out" || cf[0].ConnectionFailure.Count != 6 {
		t.Fatalf("connection failures = %+v", cf)
	}

	// The listener's own SYN-ACK retransmits prove it alive: a full queue seen from the server.
	srv := testEngine(nil)
	srv.Findings(t0)
	for i := 0; i < 3; i++ {
		srv.Conn(connEv(capture.ConnHandshakeRetransmit, capture.RoleServer, "10.0.0.5:8080", fmt.Sprintf("10.0.0.7:%d", 33000+i), time.Second),
			remoteSvc("10.0.0.7"), remoteSvc("api"))
	}
	requireLen(t, "SYN-ACK retransmits", pools(srv.Findings(t0.Add(10*time.Second)), PoolAcceptQueueFull), 1)
}

func TestEphemeralPortsExhausted(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	for i := 0; i < 3; i++ {
		failed := connEv(capture.ConnFailed, capture.RoleClient, "10.0.0.1:0", "10.0.0.9:5432", time.Duration(i)*time.Millisecond)
		failed.Reason, failed.Errno = capture.FailureAddrNotAvail, 99
		e.Conn(failed, svc("batch"), remoteSvc("db"))
	}
	fs := e.Findings(t0.Add(10 * time.Second))
	ps := pools(fs, PoolEphemeralPortsExhausted)
	requireLen(t, "EADDRNOTAVAIL", ps, 1)
	if p := ps[0].PoolExhaustion; p.Failures != 3 || p.Edge.Source != "batch" || p.Edge.Dest != "db" || p.Edge.Port != 5432 {
		t.Fatalf("pool = %+v", p)
	}
	requireLen(t, "no connection_failure for it", kinds(fs, KindConnectionFailure), 0)
	// Healthy twin: refused connects are connection failures, not a pool out of ports.
	h := testEngine(nil)
	h.Findings(t0)
	failed := connEv(capture.ConnFailed, capture.RoleClient, "10.0.0.1:40000", "10.0.0.9:5432", 0)
	failed.Reason, failed.Errno = capture.FailureRefused, 111
	h.Conn(failed, svc("batch"), remoteSvc("db"))
	fs = h.Findings(t0.Add(10 * time.Second))
	requireLen(t, "refused", kinds(fs, KindConnectionPoolExhaustion), 0)
	requireLen(t, "refused is a failure", kinds(fs, KindConnectionFailure), 1)
}

// The abandoned connects of a full accept queue that come a window after its report are
// still its story, not connection failures.
func TestAcceptQueueFullExplainsLaterTimeouts(t *testing.T) {
	e := testEngine(nil)
	e.Findings(t0)
	stuck := remoteSvc("stuck")
	e.Conn(connEv(capture.ConnOpened, capture.RoleClient, "127.0.0.1:31000", "127.0.15.70:8080", 0), svc("curl"), stuck)
	for i := 0; i < 4; i++ {
		e.Conn(connEv(capture.ConnHandshakeRetransmit, capture.RoleClient, fmt.Sprintf("127.0.0.1:%d", 31001+i), "127.0.15.70:8080", time.Second), svc("curl"), stuck)
	}
	requireLen(t, "first window", pools(e.Findings(t0.Add(10*time.Second)), PoolAcceptQueueFull), 1)
	for i := 0; i < 2; i++ {
		failed := connEv(capture.ConnFailed, capture.RoleClient, fmt.Sprintf("127.0.0.1:%d", 31001+i), "127.0.15.70:8080", 11*time.Second)
		failed.Reason = capture.FailureOther
		e.Conn(failed, svc("curl"), stuck)
	}
	fs := e.Findings(t0.Add(20 * time.Second))
	requireLen(t, "later timeouts", kinds(fs, KindConnectionFailure), 0)
	requireLen(t, "same episode", kinds(fs, KindConnectionPoolExhaustion), 0)
}
