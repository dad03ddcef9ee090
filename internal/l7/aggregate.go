package l7

import (
	"time"
)

// Aggregate is a batch of exchanges that were counted, not sent one by one: the kernel judges
// healthy HTTP/1 exchanges in place (DESIGN §2) and hands user space only their totals, keyed
// by the observing socket's owner, the peer, the operation and the status. Everything that
// counts requests (metrics, the service graph, baselines, chatty-call ratios) must accept an
// Aggregate wherever it accepts an Exchange, so that counts stay exact while healthy traffic
// never crosses the ring buffer.
type Aggregate struct {
	Protocol Protocol // ProtocolHTTP1 today
	Side     Side     // which end observed and counted these exchanges
	Client   Endpoint // for Side == SideServer: the client's address with port 0 (clients are counted per address)
	Server   Endpoint

	Method      string // as in HTTP.Method
	KernelRoute uint64 // the kernel's route key (capture.RouteKey)
	Route       string // the route template user space learned for the kernel's route key ("/items/{id}")
	Version     string // "1.0", "1.1"
	Host        string // client side: the Host its requests named (learned from the key's first exchange)
	StatusCode  int

	Start, End time.Time // the drain interval the counts cover
	Count      uint64    // exchanges (== Latency.Count)
	Latency    Histogram // request first byte → response first byte, in the kernel's fine buckets
	// Explicit is the same latency on the metric bounds (Options.DurationBounds), counted
	// exactly per bucket by the kernel; empty without bounds.
	Explicit Histogram

	// Paired: server side, its client is on this node and the kernel left that client's socket
	// quiet (it judges such connections once, on the server's socket); ClientTwin is the
	// client's side of these counts.
	Paired bool
}

// ClientTwin is the client's side of a Paired aggregate: the same exchanges, counted at the
// server's socket. Nil for any other aggregate.
func (a *Aggregate) ClientTwin() *Aggregate {
	if !a.Paired || a.Side != SideServer {
		return nil
	}
	twin := *a
	twin.Side = SideClient
	twin.Paired = false
	return &twin
}

// Histogram is a latency distribution in fixed buckets: Counts[i] counts samples in
// (Bounds[i-1], Bounds[i]] (the first bucket from 0, the last one, len(Bounds), above every
// bound). Bounds are shared and never modified; len(Counts) == len(Bounds)+1.
type Histogram struct {
	Bounds []time.Duration
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}
