package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The load generators: wrk at saturation, and a fixed-rate Go client whose every request is
// accounted for.

// wrkResult is what wrk reported, and what it cost.
type wrkResult struct {
	RPS      float64
	Requests uint64  // completed requests
	Non2xx   uint64  // "Non-2xx or 3xx responses" (absent: 0)
	Errors   string  // "Socket errors: ..." line, if any
	CPU      float64 // wrk's own CPU seconds (rusage)
}

var (
	wrkRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkTotal  = regexp.MustCompile(`(\d+) requests in`)
	wrkNon2xx = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSocket = regexp.MustCompile(`Socket errors:[^\n]*`)
)

// runWrk runs wrk for d against path or, with a script, whatever the script requests; its
// output goes to outPath.
func runWrk(ctx context.Context, o options, d time.Duration, path, script, outPath string) (wrkResult, error) {
	var r wrkResult
	args := []string{"-t", strconv.Itoa(o.wrkThreads), "-c", strconv.Itoa(o.wrkConns), "-d", fmt.Sprintf("%ds", int(d.Seconds()))}
	if script != "" {
		args = append(args, "-s", script)
	}
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", append(args, "http://"+o.addr+path)...)
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(outPath, out, 0o644)
	if err != nil {
		return r, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	m, n := wrkRPS.FindSubmatch(out), wrkTotal.FindSubmatch(out)
	if m == nil || n == nil {
		return r, fmt.Errorf("wrk: no Requests/sec in %s", filepath.Base(outPath))
	}
	r.RPS, _ = strconv.ParseFloat(string(m[1]), 64)
	r.Requests, _ = strconv.ParseUint(string(n[1]), 10, 64)
	if e := wrkNon2xx.FindSubmatch(out); e != nil {
		r.Non2xx, _ = strconv.ParseUint(string(e[1]), 10, 64)
	}
	r.Errors = string(wrkSocket.Find(out))
	r.CPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return r, nil
}

// highCardScript writes the wrk script of the high-cardinality run into dir: each request
// asks for /items/<random id of 100000>.
func highCardScript(dir string) (string, error) {
	path := filepath.Join(dir, "items.lua")
	script := `request = function() return wrk.format("GET", "/items/" .. math.random(1, 100000)) end` + "\n"
	return path, os.WriteFile(path, []byte(script), 0o644)
}

// loadResult is what a fixed-rate run sent and got back.
type loadResult struct {
	Sent      uint64
	OK        uint64 // 2xx
	ServerErr uint64 // 5xx
	Other     uint64 // other statuses
	Failed    uint64 // transport errors: no response
	Elapsed   time.Duration
}

// fixedRate sends rate requests per second for d over conns keep-alive connections: the
// i-th request is due at start + i/rate (open loop: a late worker does not slow the
// schedule). The i-th request asks for path(i). Bounded: it stops at d (plus the in-flight
// requests' timeout).
func fixedRate(ctx context.Context, base string, rate, conns int, d time.Duration, path func(i int) string) loadResult {
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
	var sent, ok, serverErr, other, failed atomic.Uint64
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range due {
				sent.Add(1)
				resp, err := client.Get(base + path(i))
				if err != nil {
					failed.Add(1)
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
	res.Sent, res.OK, res.ServerErr, res.Other, res.Failed = sent.Load(), ok.Load(), serverErr.Load(), other.Load(), failed.Load()
	return res
}

// answered is the requests that got a response.
func (r loadResult) answered() uint64 { return r.OK + r.ServerErr + r.Other }

func (r loadResult) String() string {
	return fmt.Sprintf("sent %d (2xx %d, 5xx %d, other %d, no response %d) in %s", r.Sent, r.OK, r.ServerErr, r.Other, r.Failed, r.Elapsed.Round(time.Millisecond))
}
