package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what a fixed-rate run sent and got back.
type loadResult struct {
	Sent      uint64
	OK        uint64 // 2xx
	ServerErr uint64 // 5xx
	Other     uint64 // other statuses and transport errors
	Elapsed   time.Duration
}

// fixedRate sends rate requests per second for d over conns keep-alive connections: the
// i-th request is due at start + i/rate (open loop: a late worker does not slow the
// schedule). Every errEvery-th request goes to errPath instead of okPath (0: never).
// Bounded: it stops at d (plus the in-flight requests' timeout).
func fixedRate(ctx context.Context, base string, rate, conns int, d time.Duration, okPath, errPath string, errEvery int) loadResult {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	total := int(float64(rate) * d.Seconds())
	due := make(chan int, conns)
	var res loadResult
	var sent, ok, serverErr, other atomic.Uint64
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range due {
				path := okPath
				if errEvery > 0 && i%errEvery == errEvery-1 {
					path = errPath
				}
				sent.Add(1)
				resp, err := client.Get(base + path)
				if err != nil {
					other.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode >= 200 && resp.StatusCode < 300:
					ok.Add(1)
				case resp.StatusCode >= 500:
					serverErr.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	interval := time.Second / time.Duration(rate)
schedule:
	for i := 0; i < total; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				break schedule
			}
		}
		select {
		case due <- i:
		case <-ctx.Done():
			break schedule
		}
	}
	close(due)
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Sent, res.OK, res.ServerErr, res.Other = sent.Load(), ok.Load(), serverErr.Load(), other.Load()
	return res
}

func (r loadResult) String() string {
	return fmt.Sprintf("sent %d (2xx %d, 5xx %d, other %d) in %s", r.Sent, r.OK, r.ServerErr, r.Other, r.Elapsed.Round(time.Millisecond))
}
