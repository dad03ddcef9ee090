package l7

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// HTTP/1 judged in the kernel arrives whole: one HTTP1Event carries an exchange's request and
// response heads, so nothing is paired here; and the healthy exchanges the kernel only counted
// arrive as aggregates.

// HTTP1 turns one kernel-judged HTTP/1 exchange into an Exchange.
func (t *Tracker) HTTP1(ev *capture.HTTP1Event) {
	if ev == nil || len(ev.Request) == 0 {
		return
	}
	req := parseHTTP1Head(headOf(ev.Request))
	if !req.request {
		t.parseFailure(ProtocolHTTP1)
		return
	}
	role := ev.Socket.Role
	reqDir := requestDirection(role)
	if reqDir == 0 {
		return // the kernel judges only sockets whose side it knows
	}
	x := &Exchange{
		Protocol:    ProtocolHTTP1,
		Transport:   capture.TransportTCP,
		Cookie:      ev.Socket.Cookie,
		Start:       ev.RequestTime,
		End:         ev.ResponseTime,
		ClientISN:   ev.ClientISN,
		ServerISN:   ev.ServerISN,
		RequestSeq:  ev.RequestSeq,
		KernelRoute: ev.RouteKey,
		Sent:        ev.Reasons,
		Paired:      ev.Paired,
	}
	local := Endpoint{Addr: ev.Socket.Local, Process: ev.Process}
	peer := Endpoint{Addr: ev.Socket.Remote}
	if reqDir == capture.DirectionSend {
		x.Side, x.Client, x.Server = SideClient, local, peer
	} else {
		x.Side, x.Client, x.Server = SideServer, peer, local
	}
	x.HTTP = req.requestHTTP()
	x.HTTP.Partial = x.HTTP.Partial || ev.Reasons&capture.HTTP1Partial != 0
	if len(ev.Response) > 0 {
		resp := parseHTTP1Head(headOf(ev.Response))
		x.HTTP.Status = resp.status
		x.HTTP.Reason = resp.reason
		if resp.contentType != "" {
			x.HTTP.ContentType = resp.contentType
		}
		x.HTTP.Partial = x.HTTP.Partial || resp.partial
	}
	if x.HTTP.Status == 0 {
		x.HTTP.Status = ev.Status
	}
	if ev.Reasons&capture.HTTP1Unanswered != 0 {
		x.Failure = unansweredFailure(ev, x.Side)
	}
	c := &conn{t: t, sock: ev.Socket, proc: ev.Process}
	c.emit(x)
}

// errnoECONNRESET is the socket error of a connection reset by its peer.
const errnoECONNRESET = 104

// unansweredFailure says how a request ended that its socket's process closed unanswered: reset
// by the peer, abandoned by the client (it closed first, as a load generator stopping or a
// caller timing out does), or closed by the server.
func unansweredFailure(ev *capture.HTTP1Event, side Side) Failure {
	if ev.SocketError == errnoECONNRESET {
		return FailureReset
	}
	clientClosedFirst := side == SideClient && !ev.PeerClosed || side == SideServer && ev.PeerClosed
	if clientClosedFirst {
		return FailureAbandoned
	}
	return FailureClosed
}

// headOf returns the head of a message (up to its empty line), marking nothing: parseHTTP1Head
// takes a head that may be cut anywhere.
func headOf(b []byte) []byte {
	if i := bytes.Index(b, crlfcrlf); i >= 0 {
		return b[:i]
	}
	return b
}

// Aggregate turns one kernel aggregate into an Aggregate. Its Route is empty: the pipeline
// names the kernel's route key from the exchanges it has seen (the key's first is always sent).
func (t *Tracker) Aggregate(a *capture.HTTP1Aggregate, start, end time.Time) *Aggregate {
	out := &Aggregate{
		Protocol:    ProtocolHTTP1,
		Method:      a.Method,
		Version:     a.Version,
		StatusCode:  a.Status,
		KernelRoute: a.RouteKey,
		Start:       start,
		End:         end,
		Count:       a.Count,
	}
	self := Endpoint{Process: capture.Process{PID: a.PID}}
	if a.Role == capture.RoleServer {
		out.Side = SideServer
		self.Addr = netip.AddrPortFrom(a.Local, a.Port)
		out.Server = self
		out.Client = Endpoint{Addr: netip.AddrPortFrom(a.Peer, a.PeerPort), Process: capture.Process{PID: a.PeerPID}}
		out.Paired = a.Paired
	} else {
		out.Side = SideClient
		out.Client = self
		out.Server = Endpoint{Addr: netip.AddrPortFrom(a.Peer, a.Port)}
	}
	out.Latency = Histogram{Bounds: capture.LatencyBucketBounds, Counts: a.Latency[:], Count: a.Count, Sum: a.Sum}
	if n := len(t.opts.DurationBounds); n > 0 {
		out.Explicit = Histogram{Bounds: t.opts.DurationBounds, Counts: a.Explicit[:n+1], Count: a.Count, Sum: a.Sum}
	}
	return out
}
