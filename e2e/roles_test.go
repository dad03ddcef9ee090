//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The noisy-world scenario runs this test binary again in several roles, each a process of
// its own (so each is a service of its own, named by the address it listens on or by
// OTEL_SERVICE_NAME): servers with the shape of real ones, and the clients that misbehave.
const (
	roleShop        = "shop"         // lognormal latency, 1% random 503s, health and user routes
	roleAuth        = "auth"         // /token fails the first attempts of every call
	roleRetryClient = "retry-client" // retries every failing call until it succeeds
	roleOrders      = "orders"       // calls its stock service many times per request (N+1)
	roleStuck       = "stuck"        // a listener with a tiny backlog that never accepts
	roleSink        = "sink"         // the external host: reads with splice, answers with sendfile
)

// worldRoles are the roles TestMain dispatches to.
var worldRoles = map[string]func(){
	roleShop:        runShop,
	roleAuth:        runAuth,
	roleRetryClient: runRetryClient,
	roleOrders:      runOrders,
	roleStuck:       runStuck,
	roleSink:        runSink,
}

func env(key string) string { return os.Getenv("WORLD_" + key) }

func envInt(key string, def int) int {
	if n, err := strconv.Atoi(env(key)); err == nil {
		return n
	}
	return def
}

func serve(h http.Handler) {
	srv := &http.Server{Addr: env("ADDR"), Handler: h, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// shopLatencySigma makes p99 ≈ 8× the median (z(0.99) = 2.326), the healthy route.
var shopLatencySigma = math.Log(8) / 2.326

// runShop is a service with the shape of a real one: /api/items/{id} answers after a
// lognormal delay (median 5 ms, p99 ≈ 40 ms) and 1% of its answers are random 503s;
// /api/users/{name} and /actuator/health answer at once.
func runShop() {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 15))
	mux := http.NewServeMux()
	mux.HandleFunc("/api/items/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := time.Duration(float64(5*time.Millisecond) * math.Exp(shopLatencySigma*rng.NormFloat64()))
		fail := rng.Float64() < 0.01
		mu.Unlock()
		time.Sleep(min(d, 500*time.Millisecond))
		if fail {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "item")
	})
	mux.HandleFunc("/api/users/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "user") })
	mux.HandleFunc("/actuator/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"status":"UP"}`) })
	serve(mux)
}

// runAuth fails the first WORLD_FAILURES attempts of each call (identified by its query)
// with 503, then answers 200.
func runAuth() {
	failures := envInt("FAILURES", 3)
	var mu sync.Mutex
	attempts := map[string]int{}
	serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts[r.URL.RawQuery]++
		n := attempts[r.URL.RawQuery]
		mu.Unlock()
		if n <= failures {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "token")
	}))
}

// runRetryClient makes WORLD_CALLS logical calls to WORLD_TARGET, WORLD_RATE a second, each
// retried after 20 ms until it succeeds (at most 6 attempts), over one keep-alive pool.
func runRetryClient() {
	target, calls, rate := env("TARGET"), envInt("CALLS", 50), envInt("RATE", 10)
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for c := 1; c <= calls; c++ {
		<-tick.C
		for attempt := 1; attempt <= 6; attempt++ {
			resp, err := client.Get(fmt.Sprintf("http://%s/token?call=%d", target, c))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// runOrders answers /orders/{id} after fetching WORLD_FANOUT items one by one from
// WORLD_STOCK: the N+1 pattern.
func runOrders() {
	stock, fanout := env("STOCK"), envInt("FANOUT", 25)
	client := &http.Client{Timeout: 2 * time.Second}
	serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < fanout; i++ {
			resp, err := client.Get(fmt.Sprintf("http://%s/item/%d", stock, i))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		fmt.Fprintln(w, "order")
	}))
}

// listenRaw binds and listens with a chosen backlog (net.Listen takes somaxconn).
func listenRaw(addr string, backlog int) int {
	ap := netip.MustParseAddrPort(addr)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		panic(err)
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		panic(err)
	}
	if err := syscall.Listen(fd, backlog); err != nil {
		panic(err)
	}
	return fd
}

// runStuck listens with a backlog of 1 and never accepts: two handshakes complete into the
// queue, every later SYN is dropped by the kernel and goes unanswered.
func runStuck() {
	listenRaw(env("ADDR"), 1)
	fmt.Println("listening, never accepting")
	select {}
}

// runSink is the external host, run inside the test's network namespace. It reads with
// splice(2) and answers with sendfile(2), so that its own sockets carry no read or write the
// collector parses: seen from the node, it is a remote peer (the test's stand-in for a
// machine elsewhere). WORLD_MODE http answers after the first bytes (a GET); raw reads until
// the client half-closes (an upload).
func runSink() {
	fd := listenRaw(env("ADDR"), 16)
	http := env("MODE") == "http"
	resp, err := os.CreateTemp("", "sink-response")
	if err != nil {
		panic(err)
	}
	_, _ = resp.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
	null, err := os.OpenFile("/dev/null", os.O_WRONLY, 0)
	if err != nil {
		panic(err)
	}
	var pipe [2]int
	if err := syscall.Pipe(pipe[:]); err != nil {
		panic(err)
	}
	for {
		c, _, err := syscall.Accept4(fd, 0)
		if err != nil {
			continue
		}
		total := 0
		for {
			n, err := syscall.Splice(c, nil, pipe[1], nil, 1<<20, 0)
			if n <= 0 || err != nil {
				break
			}
			_, _ = syscall.Splice(pipe[0], nil, int(null.Fd()), nil, int(n), 0)
			total += int(n)
			if http {
				break
			}
		}
		var off int64
		_, _ = syscall.Sendfile(c, int(resp.Fd()), &off, 1024)
		_ = syscall.Close(c)
		fmt.Println("received", total, "bytes")
	}
}

// startRole runs this test binary as a role (its settings as key, value pairs), optionally
// inside a network namespace, and waits for addr (when set) to accept connections.
func (s *scenario) startRole(name, role, netns, addr string, kv ...string) {
	s.t.Helper()
	self, err := os.Executable()
	if err != nil {
		s.t.Fatal(err)
	}
	argv := []string{self}
	if netns != "" {
		argv = append([]string{"ip", "netns", "exec", netns}, argv...)
	}
	env := []string{roleEnv + "=" + role}
	for i := 0; i+1 < len(kv); i += 2 {
		env = append(env, "WORLD_"+strings.ToUpper(kv[i])+"="+kv[i+1])
	}
	s.startProcessEnv(name, env, argv...)
	if addr != "" {
		s.waitTCP(addr)
	}
}
